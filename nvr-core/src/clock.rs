//! The source of wall-clock and monotonic time, behind a trait so tests can drive time by hand.
//!
//! Everything on the recording and evidence path that asks "what time is it" goes through
//! [`Clock`] (the exceptions read the system clock for what is not recorded: certificate
//! validity in `tls.rs`, and the login throttle's windows, which use `Instant`).
//! [`SimulatedClock`] lets tests step the wall clock (backward or forward) independently of the
//! monotonic clock, which is how real clock jumps look.

use std::sync::Arc;
use std::sync::Mutex;

use crate::time::{Duration90k, Time90k};

/// A pair of clocks: wall time (may jump) and monotonic time (never goes back).
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Wall-clock time; can jump when an administrator or NTP steps the clock.
    fn realtime(&self) -> Time90k;
    /// Time since an arbitrary origin; never goes backward and ignores clock steps.
    fn monotonic(&self) -> Duration90k;
}

/// The operating system's clocks.
#[derive(Debug, Clone)]
pub struct SystemClock {
    origin: std::time::Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock {
            origin: std::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn realtime(&self) -> Time90k {
        Time90k::from_system_time(std::time::SystemTime::now())
    }

    fn monotonic(&self) -> Duration90k {
        Duration90k::from_std(self.origin.elapsed())
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct SimulatedClock(Arc<Mutex<SimulatedState>>);

#[derive(Debug)]
struct SimulatedState {
    realtime: Time90k,
    monotonic: Duration90k,
}

impl SimulatedClock {
    pub fn new(start: Time90k) -> Self {
        SimulatedClock(Arc::new(Mutex::new(SimulatedState {
            realtime: start,
            monotonic: Duration90k::ZERO,
        })))
    }

    /// Advances both clocks by `d` (the normal passage of time).
    pub fn advance(&self, d: Duration90k) {
        let mut s = self.lock();
        s.realtime += d;
        s.monotonic += d;
    }

    /// Steps only the wall clock, as an administrator setting the time would.
    pub fn step_realtime(&self, d: Duration90k) {
        self.lock().realtime += d;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SimulatedState> {
        // The state is two integers; a panic while holding the lock cannot leave it torn.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for SimulatedClock {
    fn realtime(&self) -> Time90k {
        self.lock().realtime
    }

    fn monotonic(&self) -> Duration90k {
        self.lock().monotonic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_step_moves_only_realtime() {
        let c = SimulatedClock::new(Time90k::from_unix_secs(1_000));
        c.advance(Duration90k::from_secs(5));
        c.step_realtime(Duration90k::from_secs(-3600));
        assert_eq!(c.realtime(), Time90k::from_unix_secs(1_005 - 3_600));
        assert_eq!(c.monotonic(), Duration90k::from_secs(5));
    }

    #[test]
    fn system_clock_is_near_now() {
        let c = SystemClock::new();
        let now = Time90k::from_system_time(std::time::SystemTime::now());
        assert!((c.realtime() - now).0.abs() < 90_000 * 5);
        assert!(c.monotonic() >= Duration90k::ZERO);
    }
}
