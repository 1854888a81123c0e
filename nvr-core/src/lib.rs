//! Domain types shared by every crate of the recorder: time, clocks, ids, streams, frames,
//! camera URLs, configuration and error kinds. This crate performs no I/O and must never import
//! another crate of the workspace.

pub mod account;
pub mod audio;
pub mod camera_url;
pub mod clock;
pub mod config;
pub mod error;
pub mod frame;
pub mod ids;
pub mod role;
pub mod stream;
pub mod time;
pub mod wall;

pub use account::{
    AccountRuleError, check_password_policy, loggable_username, validate_new_username,
    validate_username,
};
pub use camera_url::{CameraUrl, CameraUrlError, HostKind, validate_camera_name};
pub use clock::{Clock, SimulatedClock, SystemClock};
pub use error::ErrorKind;
pub use frame::{VideoCodec, VideoFrame, VideoParams};
pub use ids::{CameraId, SegmentId, UserId};
pub use role::Role;
pub use stream::{Stream, StreamKey};
pub use time::{Duration90k, Time90k, TimeParseError};
