//! The recorder's clock as the kernel sees it at export time, for the manifest: whether it is
//! synchronised (by NTP, chrony, PTP or whatever disciplines it) and how far off it may be.
//! Read with `adjtimex(2)` in read-only mode (modes 0): no network, no daemon, no privilege.
//!
//! Cameras' clocks: ingest compares the wall time in each RTCP sender report of a stream with
//! the recorder's clock when it arrives, and keeps the latest offset with the stream (once a
//! minute, `streams.clock_offset_90k`); the manifest states it with when it was measured. A
//! camera that sends no reports, or one whose clock was never set, has none: then its offset
//! is stated as unknown, with that reason.

use serde_json::{Value, json};

/// `adjtimex` return value when the clock is not synchronised (TIME_ERROR, `<sys/timex.h>`).
const TIME_ERROR: i32 = 5;
/// `timex.status` bits (`<sys/timex.h>`): STA_UNSYNC (clock unsynchronised), STA_NANO
/// (`offset` in nanoseconds rather than microseconds).
const STA_UNSYNC: i32 = 0x0040;
const STA_NANO: i32 = 0x2000;
/// The kernel's ceiling for maxerror (NTP_PHASE_LIMIT << 5 in us, 16 s): it says "unknown".
const MAXERROR_UNKNOWN_US: i64 = 16_000_000;

/// What `adjtimex` said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelClock {
    pub state: i32,
    pub status: i32,
    pub offset: i64,
    pub max_error_us: i64,
    pub est_error_us: i64,
}

/// The manifest's `recorder_clock`: `synchronized` true or false (null when the kernel could
/// not be asked), the estimated and maximum error in microseconds when known, and the offset
/// the kernel is still correcting, in nanoseconds.
pub fn recorder_clock_json(k: Option<KernelClock>) -> Value {
    let Some(k) = k else {
        return json!({"synchronized": Value::Null, "source": "adjtimex",
                      "note": "the kernel's clock state could not be read"});
    };
    let synchronized = k.state != TIME_ERROR && k.status & STA_UNSYNC == 0;
    let offset_ns = if k.status & STA_NANO != 0 {
        k.offset
    } else {
        k.offset.saturating_mul(1000)
    };
    let known = |us: i64| (synchronized && us < MAXERROR_UNKNOWN_US).then_some(us);
    json!({
        "synchronized": synchronized,
        "source": "adjtimex",
        "estimated_error_us": known(k.est_error_us),
        "max_error_us": known(k.max_error_us),
        "offset_being_corrected_ns": synchronized.then_some(offset_ns),
    })
}

/// Asks the kernel (read only).
pub fn kernel_clock() -> Option<KernelClock> {
    // SAFETY: adjtimex with modes 0 only reads the kernel's clock state into the struct we
    // own; an all-zero `timex` is a valid value of that plain C struct.
    #[allow(unsafe_code)]
    let (state, tx) = unsafe {
        let mut tx: libc::timex = std::mem::zeroed();
        tx.modes = 0;
        (libc::adjtimex(&mut tx), tx)
    };
    (state >= 0).then_some(KernelClock {
        state,
        status: tx.status,
        offset: tx.offset,
        max_error_us: tx.maxerror,
        est_error_us: tx.esterror,
    })
}

/// A stream's camera clock offset for the manifest: `observed` is (camera minus recorder,
/// when measured), both 90 kHz, or `None` when none was ever observed.
pub fn camera_clock_json(observed: Option<(i64, i64)>) -> Value {
    match observed {
        Some((offset_90k, measured_90k)) => json!({
            "offset_ms": offset_90k as f64 / 90.0,
            "measured_at": nvr_core::Time90k(measured_90k).to_rfc3339(),
            "source": "rtcp_sender_report",
            "note": "the camera's clock minus the recorder's, from the wall time in the \
                     camera's latest RTCP sender report against the recorder's clock when it \
                     arrived (includes the network's delay); positive: the camera is ahead. \
                     Times in this bundle are the recorder's (see recorder_clock)",
        }),
        None => json!({
            "offset_ms": Value::Null,
            "source": Value::Null,
            "note": "not measured: the camera sent no RTCP sender report with a wall time the \
                     recorder kept; times in this bundle are the recorder's (see recorder_clock)",
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_camera_clock_is_stated_with_its_time_or_as_unknown() {
        let seen = camera_clock_json(Some((-4_500, 1_796_601_600 * 90_000)));
        assert_eq!(seen["offset_ms"], -50.0);
        assert_eq!(seen["measured_at"], "2026-12-07T00:00:00.000Z");
        assert_eq!(seen["source"], "rtcp_sender_report");
        let unknown = camera_clock_json(None);
        assert_eq!(unknown["offset_ms"], Value::Null);
        assert!(
            unknown["note"]
                .as_str()
                .unwrap()
                .starts_with("not measured")
        );
    }

    #[test]
    fn synchronised_unsynchronised_and_unknown_clocks_are_told_apart() {
        let synced = KernelClock {
            state: 0,
            status: STA_NANO,
            offset: -1500,
            max_error_us: 12_000,
            est_error_us: 300,
        };
        let j = recorder_clock_json(Some(synced));
        assert_eq!(j["synchronized"], true);
        assert_eq!(j["estimated_error_us"], 300);
        assert_eq!(j["max_error_us"], 12_000);
        assert_eq!(j["offset_being_corrected_ns"], -1500);
        let micro = KernelClock {
            status: 0,
            offset: 7,
            ..synced
        };
        assert_eq!(
            recorder_clock_json(Some(micro))["offset_being_corrected_ns"],
            7000
        );

        let free = KernelClock {
            state: TIME_ERROR,
            status: STA_UNSYNC,
            offset: 0,
            max_error_us: MAXERROR_UNKNOWN_US,
            est_error_us: MAXERROR_UNKNOWN_US,
        };
        let j = recorder_clock_json(Some(free));
        assert_eq!(j["synchronized"], false);
        assert_eq!(j["max_error_us"], Value::Null);
        assert_eq!(j["offset_being_corrected_ns"], Value::Null);
        assert_eq!(recorder_clock_json(None)["synchronized"], Value::Null);
        // This machine's kernel answers.
        assert!(kernel_clock().is_some());
    }
}
