//! Typed row ids, so a camera id can never be passed where a segment id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// A camera in the index: a main stream and optionally a sub-stream (see `stream.rs`).
    CameraId
);
id_type!(
    /// A segment: one encrypted file of about a minute of one camera's video.
    SegmentId
);
id_type!(
    /// A user account of the web UI and API.
    UserId
);
