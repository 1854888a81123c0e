//! Parsing and checking the `start`/`end` query parameters of time-range routes.

use nvr_core::{Duration90k, Time90k};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};

/// The longest range one request may cover: a day, the timeline's widest view. Longer ranges
/// would make single responses (an MP4 of days) unreasonably large.
pub const MAX_RANGE_SECS: i64 = 24 * 3600;

/// Raw query parameters.
#[derive(Debug, Deserialize)]
pub struct RangeQuery {
    pub start: Option<String>,
    pub end: Option<String>,
}

/// A checked range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub start: Time90k,
    pub end: Time90k,
}

impl RangeQuery {
    /// Parses both bounds (RFC 3339) and checks 0 < end - start <= 24 h.
    pub fn parse(&self) -> ApiResult<TimeRange> {
        let get = |name: &str, v: &Option<String>| -> ApiResult<Time90k> {
            let s = v
                .as_deref()
                .ok_or_else(|| ApiError::bad_request(format!("missing query parameter {name}")))?;
            Time90k::parse_rfc3339(s).map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
        };
        let start = get("start", &self.start)?;
        let end = get("end", &self.end)?;
        if end <= start {
            return Err(ApiError::bad_request(format!(
                "empty time range: end {end} is not after start {start}"
            )));
        }
        if end - start > Duration90k::from_secs(MAX_RANGE_SECS) {
            return Err(ApiError::bad_request(format!(
                "time range of {} is longer than the 24 h limit",
                end - start
            )));
        }
        Ok(TimeRange { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any query strings: a clear error or a valid range, never a panic.
        #[test]
        fn arbitrary_queries_never_panic(start in proptest::option::of(".{0,40}"), end in proptest::option::of(".{0,40}")) {
            if let Ok(r) = (RangeQuery { start, end }).parse() {
                prop_assert!(r.start < r.end);
                prop_assert!((r.end - r.start).0 <= MAX_RANGE_SECS * 90_000);
            }
        }

        #[test]
        fn rfc3339_like_queries_never_panic(y in 0i32..10_000, mo in 0u8..14, d in 0u8..33, h in 0u8..26, off in "[+-][0-9]{2}:[0-9]{2}|Z") {
            let s = format!("{y:04}-{mo:02}-{d:02}T{h:02}:00:00{off}");
            let _ = (RangeQuery { start: Some(s.clone()), end: Some(s) }).parse();
        }
    }

    fn q(s: &str, e: &str) -> RangeQuery {
        RangeQuery {
            start: Some(s.into()),
            end: Some(e.into()),
        }
    }

    #[test]
    fn ranges() {
        assert!(
            q("2026-11-29T00:00:00Z", "2026-11-29T01:00:00Z")
                .parse()
                .is_ok()
        );
        assert!(
            q("2026-11-29T00:00:00Z", "2026-11-30T00:00:00Z")
                .parse()
                .is_ok()
        );
        for (s, e) in [
            ("2026-11-29T00:00:00Z", "2026-11-29T00:00:00Z"),
            ("2026-11-29T01:00:00Z", "2026-11-29T00:00:00Z"),
            ("2026-11-29T00:00:00Z", "2026-11-30T00:00:00.001Z"),
            ("yesterday", "2026-11-29T00:00:00Z"),
            ("2026-11-29", "2026-11-30"),
        ] {
            assert!(q(s, e).parse().is_err(), "{s} {e}");
        }
        assert!(
            RangeQuery {
                start: None,
                end: None
            }
            .parse()
            .is_err()
        );
    }
}
