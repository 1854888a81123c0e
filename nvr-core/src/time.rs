//! Time in the recorder's one unit: ticks of 90 kHz, the RTP clock rate of H.264/H.265 video.
//!
//! Every stored time is an integer count of 1/90,000 s; the API speaks RFC 3339. Keeping one
//! integer unit avoids rounding when frame durations (which come from RTP timestamps) are summed.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

/// Ticks per second of every stored time and duration.
pub const TICKS_PER_SEC: i64 = 90_000;

/// A point in wall-clock time: 90 kHz ticks since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time90k(pub i64);

/// A signed span of time in 90 kHz ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration90k(pub i64);

/// Why a time string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time {input:?}: {reason} (expected RFC 3339, e.g. 2026-11-29T13:45:00Z)")]
pub struct TimeParseError {
    input: String,
    reason: String,
}

impl Time90k {
    /// The earliest time the recorder accepts from users (1970-01-01).
    pub const MIN: Time90k = Time90k(0);

    pub fn from_unix_secs(secs: i64) -> Self {
        Time90k(secs.saturating_mul(TICKS_PER_SEC))
    }

    /// Whole seconds since the Unix epoch, rounded toward negative infinity.
    pub fn unix_secs(self) -> i64 {
        self.0.div_euclid(TICKS_PER_SEC)
    }

    pub fn from_system_time(t: std::time::SystemTime) -> Self {
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Time90k(duration_to_90k(d)),
            Err(e) => Time90k(-duration_to_90k(e.duration())),
        }
    }

    /// Parses an RFC 3339 timestamp (any UTC offset); sub-tick precision is truncated.
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimeParseError> {
        let ts: jiff::Timestamp = s.parse().map_err(|e: jiff::Error| TimeParseError {
            input: s.to_owned(),
            reason: e.to_string(),
        })?;
        // 1 tick = 100,000/9 ns; compute in i128 to avoid overflow.
        let ticks = ts.as_nanosecond() * 9 / 100_000;
        Ok(Time90k(ticks as i64))
    }

    /// Formats as RFC 3339 in UTC with millisecond precision, e.g. `2026-11-29T13:45:00.033Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 100_000 / 9;
        match jiff::Timestamp::from_nanosecond(nanos) {
            Ok(ts) => format!("{ts:.3}"),
            Err(_) => format!("<out of range: {} ticks>", self.0),
        }
    }

    /// The UTC calendar day this time falls on, as `YYYY-MM-DD`.
    pub fn utc_day(self) -> String {
        let secs = self.unix_secs();
        match jiff::Timestamp::from_second(secs) {
            Ok(ts) => ts.strftime("%Y-%m-%d").to_string(),
            Err(_) => "out-of-range".to_owned(),
        }
    }
}

fn duration_to_90k(d: std::time::Duration) -> i64 {
    let ticks = d.as_nanos() * 9 / 100_000;
    i64::try_from(ticks).unwrap_or(i64::MAX)
}

impl Duration90k {
    pub const ZERO: Duration90k = Duration90k(0);

    pub fn from_secs(secs: i64) -> Self {
        Duration90k(secs.saturating_mul(TICKS_PER_SEC))
    }

    pub fn from_millis(ms: i64) -> Self {
        Duration90k(ms.saturating_mul(90))
    }

    pub fn from_std(d: std::time::Duration) -> Self {
        Duration90k(duration_to_90k(d))
    }

    /// The duration as floating-point seconds (for display and rates only).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / TICKS_PER_SEC as f64
    }

    pub fn to_std(self) -> std::time::Duration {
        let nanos = u64::try_from(self.0.max(0)).unwrap_or(0) * 100_000 / 9;
        std::time::Duration::from_nanos(nanos)
    }
}

impl fmt::Display for Time90k {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Display for Duration90k {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}

impl Add<Duration90k> for Time90k {
    type Output = Time90k;
    fn add(self, rhs: Duration90k) -> Time90k {
        Time90k(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign<Duration90k> for Time90k {
    fn add_assign(&mut self, rhs: Duration90k) {
        *self = *self + rhs;
    }
}

impl Sub<Duration90k> for Time90k {
    type Output = Time90k;
    fn sub(self, rhs: Duration90k) -> Time90k {
        Time90k(self.0.saturating_sub(rhs.0))
    }
}

impl Sub<Time90k> for Time90k {
    type Output = Duration90k;
    fn sub(self, rhs: Time90k) -> Duration90k {
        Duration90k(self.0.saturating_sub(rhs.0))
    }
}

impl Add for Duration90k {
    type Output = Duration90k;
    fn add(self, rhs: Duration90k) -> Duration90k {
        Duration90k(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Duration90k {
    fn add_assign(&mut self, rhs: Duration90k) {
        *self = *self + rhs;
    }
}

impl Sub for Duration90k {
    type Output = Duration90k;
    fn sub(self, rhs: Duration90k) -> Duration90k {
        Duration90k(self.0.saturating_sub(rhs.0))
    }
}

impl SubAssign for Duration90k {
    fn sub_assign(&mut self, rhs: Duration90k) {
        *self = *self - rhs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc3339_round_trip_known_value() {
        let t = Time90k::parse_rfc3339("2026-11-29T13:45:00.5Z").expect("parse");
        assert_eq!(t.0, (1_795_959_900 * 90_000) + 45_000);
        assert_eq!(t.to_rfc3339(), "2026-11-29T13:45:00.500Z");
        assert_eq!(t.utc_day(), "2026-11-29");
    }

    #[test]
    fn offsets_are_honoured() {
        let a = Time90k::parse_rfc3339("2026-11-29T14:45:00+01:00").expect("parse");
        let b = Time90k::parse_rfc3339("2026-11-29T13:45:00Z").expect("parse");
        assert_eq!(a, b);
    }

    #[test]
    fn garbage_is_refused_with_the_input_named() {
        let e = Time90k::parse_rfc3339("yesterday").expect_err("must fail");
        assert!(e.to_string().contains("yesterday"), "{e}");
        assert!(Time90k::parse_rfc3339("2026-13-01T00:00:00Z").is_err());
        assert!(Time90k::parse_rfc3339("").is_err());
    }

    proptest! {
        #[test]
        fn millisecond_times_round_trip(ms in 0i64..4_102_444_800_000) {
            let t = Time90k(ms * 90);
            prop_assert_eq!(Time90k::parse_rfc3339(&t.to_rfc3339()).expect("parse"), t);
        }
    }
}
