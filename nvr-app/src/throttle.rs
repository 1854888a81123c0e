//! Login throttling: how many password guesses anyone gets, counted *before* a guess is
//! verified (so 400 concurrent requests cannot all pass the check before the first failure is
//! counted), per client address, per username, and overall.
//!
//! - **Per address** (an IPv4 address, or an IPv6 /64: one machine on a LAN holds a whole
//!   /64): at most [`ADDRESS_ATTEMPTS`] failed or in-flight attempts per
//!   [`WINDOW`]; beyond that, refused at once, before any work.
//! - **Per username**: once a name has [`USERNAME_FAILURES_BEFORE_SLOWDOWN`] failures in the
//!   window, its attempts are spaced [`USERNAME_SPACING`] apart (each waits its turn, at most
//!   [`MAX_WAIT`]). Slowed, never locked: the real owner from an address without failures
//!   still gets in during an attack, seconds later at most, while a guesser spread over many
//!   addresses gets one guess per second at most.
//! - **Overall**: past [`GLOBAL_FAILURES_BEFORE_SLOWDOWN`] failures in the window, every
//!   attempt is spaced [`GLOBAL_SPACING`] apart the same way.
//!
//! A success does not count. Memory is bounded: at most [`MAX_TRACKED`] addresses and names
//! are remembered (those without recent failures are forgotten first).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The sliding window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);
/// Guesses per address (or /64) per window.
pub const ADDRESS_ATTEMPTS: usize = 10;
/// Failures of one username per window after which its attempts are spaced out.
pub const USERNAME_FAILURES_BEFORE_SLOWDOWN: usize = 10;
/// Spacing of attempts for a username under attack.
pub const USERNAME_SPACING: Duration = Duration::from_secs(1);
/// Failures overall per window after which every attempt is spaced out.
pub const GLOBAL_FAILURES_BEFORE_SLOWDOWN: usize = 100;
/// Spacing of all attempts while the whole recorder is under attack (20 guesses per second).
pub const GLOBAL_SPACING: Duration = Duration::from_millis(50);
/// Longest an attempt waits for its turn; a later one is refused.
pub const MAX_WAIT: Duration = Duration::from_secs(8);
/// Addresses and usernames remembered at most.
pub const MAX_TRACKED: usize = 10_000;

/// Where failures are counted for an address: the address for IPv4, its /64 for IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressBucket(IpAddr);

impl AddressBucket {
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => AddressBucket(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                AddressBucket(IpAddr::V6(Ipv6Addr::new(
                    s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                )))
            }
        }
    }
}

impl std::fmt::Display for AddressBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => write!(f, "{a}/64"),
        }
    }
}

#[derive(Debug, Default)]
struct Window {
    failures: VecDeque<Instant>,
    in_flight: usize,
    /// When the next attempt may run, while attempts are spaced out.
    next_slot: Option<Instant>,
}

impl Window {
    fn prune(&mut self, now: Instant) {
        while self
            .failures
            .front()
            .is_some_and(|&t| now.duration_since(t) >= WINDOW)
        {
            self.failures.pop_front();
        }
    }

    fn idle(&self, now: Instant) -> bool {
        self.in_flight == 0
            && self
                .failures
                .back()
                .is_none_or(|&t| now.duration_since(t) >= WINDOW)
    }

    /// A slot `spacing` after the last one given (or now); `None` if it is beyond `MAX_WAIT`.
    fn take_slot(&mut self, now: Instant, spacing: Duration) -> Option<Instant> {
        let slot = self.next_slot.map_or(now, |s| s.max(now));
        if slot.duration_since(now) > MAX_WAIT {
            return None;
        }
        self.next_slot = Some(slot + spacing);
        Some(slot)
    }
}

#[derive(Debug, Default)]
struct State {
    addresses: HashMap<AddressBucket, Window>,
    usernames: HashMap<String, Window>,
    global: Window,
}

fn bounded<K: std::hash::Hash + Eq>(m: &mut HashMap<K, Window>, now: Instant) {
    if m.len() >= MAX_TRACKED {
        m.retain(|_, w| !w.idle(now));
    }
}

/// Why an attempt was refused before any work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub message: String,
    pub retry_after: Duration,
}

/// The throttle of every password check (logins, setup codes, password changes).
#[derive(Debug, Default, Clone)]
pub struct LoginThrottle {
    state: Arc<Mutex<State>>,
}

impl LoginThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an attempt from `ip` for `username` (already checked to be a well-formed name)
    /// before it is verified. Refuses at once when the address has used up its attempts or
    /// the wait for a turn would be too long; otherwise returns the attempt, which says when
    /// it may run.
    pub fn begin(&self, ip: IpAddr, username: &str, now: Instant) -> Result<Attempt, Refused> {
        let bucket = AddressBucket::of(ip);
        let mut st = self.lock();
        let State {
            addresses,
            usernames,
            global,
        } = &mut *st;
        bounded(addresses, now);
        bounded(usernames, now);
        let a = addresses.entry(bucket).or_default();
        a.prune(now);
        if a.failures.len() + a.in_flight >= ADDRESS_ATTEMPTS {
            let retry_after = a
                .failures
                .front()
                .map_or(WINDOW, |&t| WINDOW.saturating_sub(now.duration_since(t)))
                .max(Duration::from_secs(1));
            return Err(Refused {
                message: format!(
                    "too many failed attempts from {bucket}; wait {} s",
                    retry_after.as_secs()
                ),
                retry_after,
            });
        }
        let u = usernames.entry(username.to_owned()).or_default();
        u.prune(now);
        global.prune(now);
        let mut run_at = now;
        if u.failures.len() >= USERNAME_FAILURES_BEFORE_SLOWDOWN {
            match u.take_slot(now, USERNAME_SPACING) {
                Some(t) => run_at = run_at.max(t),
                None => {
                    return Err(Refused {
                        message: "too many attempts for this account right now; try again in \
                                  a few seconds"
                            .into(),
                        retry_after: MAX_WAIT,
                    });
                }
            }
        }
        if global.failures.len() >= GLOBAL_FAILURES_BEFORE_SLOWDOWN {
            match global.take_slot(now, GLOBAL_SPACING) {
                Some(t) => run_at = run_at.max(t),
                None => {
                    return Err(Refused {
                        message: "too many login attempts right now; try again in a few \
                                  seconds"
                            .into(),
                        retry_after: MAX_WAIT,
                    });
                }
            }
        }
        a.in_flight += 1;
        u.in_flight += 1;
        Ok(Attempt {
            throttle: self.clone(),
            bucket,
            username: username.to_owned(),
            run_at,
            settled: false,
        })
    }

    /// Failed attempts counted now for the address of `ip` (for tests and status).
    pub fn failures_from(&self, ip: IpAddr, now: Instant) -> usize {
        let mut st = self.lock();
        st.addresses.get_mut(&AddressBucket::of(ip)).map_or(0, |w| {
            w.prune(now);
            w.failures.len()
        })
    }
}

/// One counted attempt. Say how it ended with [`Attempt::succeeded`] or [`Attempt::failed`];
/// dropped without either (the verifier was busy, the client went away), it frees its place
/// without counting a failure.
#[derive(Debug)]
pub struct Attempt {
    throttle: LoginThrottle,
    bucket: AddressBucket,
    username: String,
    /// When it may be verified (now, unless attempts are being spaced out).
    pub run_at: Instant,
    settled: bool,
}

impl Attempt {
    pub fn succeeded(mut self) {
        self.settle(false);
    }

    pub fn failed(mut self) {
        self.settle(true);
    }

    fn settle(&mut self, failed: bool) {
        if self.settled {
            return;
        }
        self.settled = true;
        let now = Instant::now();
        let mut st = self.throttle.lock();
        if let Some(a) = st.addresses.get_mut(&self.bucket) {
            a.in_flight = a.in_flight.saturating_sub(1);
            if failed {
                a.failures.push_back(now);
            }
        }
        if let Some(u) = st.usernames.get_mut(&self.username) {
            u.in_flight = u.in_flight.saturating_sub(1);
            if failed {
                u.failures.push_back(now);
            }
        }
        if failed {
            st.global.failures.push_back(now);
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.settle(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn attempts_are_counted_before_they_are_verified() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        // 400 at once: only ADDRESS_ATTEMPTS get a place, however long they take.
        let held: Vec<Attempt> = (0..400)
            .filter_map(|_| t.begin(ip("10.0.0.5"), "admin", now).ok())
            .collect();
        assert_eq!(held.len(), ADDRESS_ATTEMPTS);
        for a in held {
            a.failed();
        }
        assert!(t.begin(ip("10.0.0.5"), "admin", now).is_err());
        // The window slides: nobody is locked out for good.
        assert!(
            t.begin(ip("10.0.0.5"), "admin", Instant::now() + WINDOW)
                .is_ok()
        );
    }

    #[test]
    fn an_ipv6_64_is_one_address_and_mapped_ipv4_is_ipv4() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..ADDRESS_ATTEMPTS {
            t.begin(ip(&format!("fd00:1:2:3::{:x}", i + 1)), "x", now)
                .expect("place")
                .failed();
        }
        assert!(t.begin(ip("fd00:1:2:3:ffff::9"), "x", now).is_err());
        assert!(t.begin(ip("fd00:1:2:4::1"), "x", now).is_ok());
        assert_eq!(
            AddressBucket::of(ip("::ffff:10.1.2.3")),
            AddressBucket::of(ip("10.1.2.3"))
        );
    }

    #[test]
    fn successes_do_not_count_and_dropped_attempts_free_their_place() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..3 * ADDRESS_ATTEMPTS {
            t.begin(ip("10.0.0.7"), "bob", now)
                .expect("place")
                .succeeded();
            drop(t.begin(ip("10.0.0.7"), "bob", now).expect("place"));
        }
        assert_eq!(t.failures_from(ip("10.0.0.7"), now), 0);
    }

    #[test]
    fn a_username_under_attack_is_slowed_not_locked() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        // Failures from many addresses (each within its own limit).
        for i in 0..USERNAME_FAILURES_BEFORE_SLOWDOWN {
            t.begin(ip(&format!("10.1.0.{i}")), "admin", now)
                .expect("place")
                .failed();
        }
        // The owner, from a clean address: admitted, after a short wait at most.
        let a = t
            .begin(ip("10.9.9.9"), "admin", now)
            .expect("never refused");
        assert!(a.run_at.duration_since(now) <= USERNAME_SPACING);
        // Later attempts queue one per second, and beyond MAX_WAIT are refused.
        let mut waits = Vec::new();
        for i in 0..20 {
            match t.begin(ip(&format!("10.2.0.{i}")), "admin", now) {
                Ok(a) => waits.push(a.run_at.duration_since(now)),
                Err(r) => {
                    assert_eq!(r.retry_after, MAX_WAIT);
                    break;
                }
            }
        }
        assert!(waits.windows(2).all(|w| w[1] >= w[0] + USERNAME_SPACING));
        assert!(waits.iter().all(|w| *w <= MAX_WAIT));
        // Another username is not slowed.
        let b = t.begin(ip("10.9.9.8"), "alice", now).expect("place");
        assert_eq!(b.run_at, now);
    }

    #[test]
    fn memory_is_bounded_under_a_spray_of_addresses() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..(3 * MAX_TRACKED as u32) {
            let a = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            drop(t.begin(IpAddr::V4(a), "x", now));
        }
        assert!(t.lock().addresses.len() <= MAX_TRACKED + 1);
    }
}
