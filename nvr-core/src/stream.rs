//! The video streams a camera offers: its main stream (full resolution: recording, a single
//! camera, full screen) and an optional low-resolution sub-stream (grid tiles, fast playback,
//! thumbnails), and [`StreamKey`], which names one stream of one camera: what a writer, a
//! live hub, a hash chain and a retention policy belong to.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::CameraId;

/// One of a camera's streams. Stored as its [`Stream::index`] (0 main, 1 sub), named by
/// [`Stream::as_str`] in the API (`stream=main|sub`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The camera's full-resolution stream; a camera without a sub-stream has only this one.
    #[default]
    Main,
    /// The camera's low-resolution stream, if configured.
    Sub,
}

impl Stream {
    /// Every stream, main first.
    pub const ALL: [Stream; 2] = [Stream::Main, Stream::Sub];

    /// The number stored in the index (`segments.stream`, `streams.stream`).
    pub fn index(self) -> i64 {
        match self {
            Stream::Main => 0,
            Stream::Sub => 1,
        }
    }

    /// The stream stored as `index`, if any.
    pub fn from_index(index: i64) -> Option<Stream> {
        match index {
            0 => Some(Stream::Main),
            1 => Some(Stream::Sub),
            _ => None,
        }
    }

    /// `main` or `sub`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Main => "main",
            Stream::Sub => "sub",
        }
    }

    /// Parses `main` or `sub` (the API's `stream=` values); anything else is `None`.
    pub fn parse(s: &str) -> Option<Stream> {
        match s {
            "main" => Some(Stream::Main),
            "sub" => Some(Stream::Sub),
            _ => None,
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stream of one camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamKey {
    pub camera: CameraId,
    pub stream: Stream,
}

impl StreamKey {
    pub fn new(camera: CameraId, stream: Stream) -> Self {
        StreamKey { camera, stream }
    }
}

/// `3` for camera 3's main stream, `3/sub` for its sub-stream (log fields and messages).
impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stream {
            Stream::Main => write!(f, "{}", self.camera),
            Stream::Sub => write!(f, "{}/sub", self.camera),
        }
    }
}

impl CameraId {
    /// This camera's stream `stream`.
    pub fn stream(self, stream: Stream) -> StreamKey {
        StreamKey::new(self, stream)
    }

    /// This camera's main stream.
    pub fn main(self) -> StreamKey {
        StreamKey::new(self, Stream::Main)
    }

    /// This camera's sub-stream.
    pub fn sub(self) -> StreamKey {
        StreamKey::new(self, Stream::Sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_indexes_round_trip() {
        for s in Stream::ALL {
            assert_eq!(Stream::parse(s.as_str()), Some(s));
            assert_eq!(Stream::from_index(s.index()), Some(s));
        }
        assert_eq!(Stream::parse("Main"), None);
        assert_eq!(Stream::parse(""), None);
        assert_eq!(Stream::from_index(2), None);
        assert_eq!(CameraId(3).main().to_string(), "3");
        assert_eq!(CameraId(3).sub().to_string(), "3/sub");
    }
}
