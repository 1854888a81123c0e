//! The seam between analysis and decoding: a [`Decoder`] turns access units into small luma
//! pictures. The real one is GStreamer's (`nvr-media`'s [`LumaDecoder`]); tests use fakes
//! (one that fails, one that panics) to show a broken decoder never touches recording.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nvr_core::VideoParams;
use nvr_media::{LumaDecoder, LumaImage, MediaError, shrink_factor};

use crate::settings::ANALYSIS_HEIGHT;

/// A decoder of one stream for analysis.
pub trait Decoder: Send {
    /// Queues an access unit; [`MediaError::Backlogged`] when the decoder is behind (the unit
    /// was not taken). Never blocks.
    fn push(&mut self, data: Bytes, pts_90k: i64, is_key: bool) -> Result<(), MediaError>;

    /// The next decoded picture within `wait`: its timestamp and, when `want` says so for that
    /// timestamp, its shrunk luma. `Ok(None)` when none is ready (or all are drained).
    fn pull(
        &mut self,
        wait: Duration,
        want: &mut dyn FnMut(i64) -> bool,
    ) -> Result<Option<(i64, Option<LumaImage>)>, MediaError>;

    /// Ends the input (the remaining pictures still come out of `pull`).
    fn finish(&mut self) -> Result<(), MediaError>;

    /// The input has ended and every picture came out.
    fn is_drained(&self) -> bool;
}

/// Makes decoders: `(parameters, name)`, the name identifying the camera in thread names.
pub type DecoderFactory =
    Arc<dyn Fn(&VideoParams, &str) -> Result<Box<dyn Decoder>, MediaError> + Send + Sync>;

/// GStreamer's decoders (the ones Debian ships: avdec_h264 / avdec_h265).
pub fn gstreamer_decoders() -> DecoderFactory {
    Arc::new(|params: &VideoParams, name: &str| {
        let inner = LumaDecoder::new(params, name)?;
        let factor = shrink_factor(u32::from(params.height), ANALYSIS_HEIGHT);
        Ok(Box::new(GstDecoder { inner, factor }) as Box<dyn Decoder>)
    })
}

struct GstDecoder {
    inner: LumaDecoder,
    factor: u32,
}

impl Decoder for GstDecoder {
    fn push(&mut self, data: Bytes, pts_90k: i64, is_key: bool) -> Result<(), MediaError> {
        self.inner.push(data, pts_90k, is_key)
    }

    fn pull(
        &mut self,
        wait: Duration,
        want: &mut dyn FnMut(i64) -> bool,
    ) -> Result<Option<(i64, Option<LumaImage>)>, MediaError> {
        let Some(p) = self.inner.pull(wait)? else {
            return Ok(None);
        };
        let luma = if want(p.pts_90k) {
            Some(p.shrunk_luma(self.factor)?)
        } else {
            None
        };
        Ok(Some((p.pts_90k, luma)))
    }

    fn finish(&mut self) -> Result<(), MediaError> {
        self.inner.finish()
    }

    fn is_drained(&self) -> bool {
        self.inner.is_drained()
    }
}
