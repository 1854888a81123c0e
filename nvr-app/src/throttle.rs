//! Login throttling: how many password guesses anyone gets, counted *before* a guess is
//! verified (so 400 concurrent requests cannot all pass the check before the first failure is
//! counted), per client address, per username, and overall.
//!
//! - **Per address** (an IPv4 address, or an IPv6 /64: one machine on a LAN holds a whole
//!   /64): at most [`ADDRESS_ATTEMPTS`] failed or in-flight attempts per [`WINDOW`], and at
//!   most [`ADDRESS_CONCURRENT_ATTEMPTS`] in flight at once (so one address never fills the
//!   password verifier's queue ahead of everyone else); beyond that, refused at once, before
//!   any work.
//! - **Per username**: once a name has [`USERNAME_FAILURES_BEFORE_SLOWDOWN`] failures in the
//!   window, its attempts are spaced [`USERNAME_SPACING`] apart (each waits its turn, at most
//!   [`MAX_WAIT`]) and each address may have only one of them waiting or running. Slowed,
//!   never locked: an attacker's address holds at most one place in the line ahead of the
//!   real owner, who (from another address) gets in a second or two later, while a guesser
//!   spread over many addresses gets one guess per second at most.
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
/// Guesses of one address (or /64) being verified at once.
pub const ADDRESS_CONCURRENT_ATTEMPTS: usize = 2;
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

/// A username's failures, and its attempts in flight per address.
#[derive(Debug, Default)]
struct UsernameWindow {
    window: Window,
    in_flight_by_address: HashMap<AddressBucket, usize>,
}

#[derive(Debug, Default)]
struct State {
    addresses: HashMap<AddressBucket, Window>,
    usernames: HashMap<String, UsernameWindow>,
    global: Window,
}

fn bounded<K: std::hash::Hash + Eq, W>(
    m: &mut HashMap<K, W>,
    now: Instant,
    window: impl Fn(&W) -> &Window,
) {
    if m.len() >= MAX_TRACKED {
        m.retain(|_, w| !window(w).idle(now));
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
        bounded(addresses, now, |w| w);
        bounded(usernames, now, |u| &u.window);
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
        if a.in_flight >= ADDRESS_CONCURRENT_ATTEMPTS {
            return Err(Refused {
                message: format!("one login at a time from {bucket}; try again in a moment"),
                retry_after: Duration::from_secs(1),
            });
        }
        let u = usernames.entry(username.to_owned()).or_default();
        u.window.prune(now);
        global.prune(now);
        let mut run_at = now;
        if u.window.failures.len() >= USERNAME_FAILURES_BEFORE_SLOWDOWN {
            if u.in_flight_by_address.get(&bucket).copied().unwrap_or(0) > 0 {
                return Err(Refused {
                    message: format!(
                        "this account is under attack: one attempt at a time from {bucket}"
                    ),
                    retry_after: USERNAME_SPACING,
                });
            }
            match u.window.take_slot(now, USERNAME_SPACING) {
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
        u.window.in_flight += 1;
        *u.in_flight_by_address.entry(bucket).or_default() += 1;
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
            u.window.in_flight = u.window.in_flight.saturating_sub(1);
            if let Some(n) = u.in_flight_by_address.get_mut(&self.bucket) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    u.in_flight_by_address.remove(&self.bucket);
                }
            }
            if failed {
                u.window.failures.push_back(now);
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
        // 400 at once: only a couple run at once, however long they take.
        let held: Vec<Attempt> = (0..400)
            .filter_map(|_| t.begin(ip("10.0.0.5"), "admin", now).ok())
            .collect();
        assert_eq!(held.len(), ADDRESS_CONCURRENT_ATTEMPTS);
        for a in held {
            a.failed();
        }
        // Retried, one after another: ADDRESS_ATTEMPTS guesses in all, then nothing.
        let mut guesses = ADDRESS_CONCURRENT_ATTEMPTS;
        while let Ok(a) = t.begin(ip("10.0.0.5"), "admin", now) {
            a.failed();
            guesses += 1;
            assert!(guesses <= 400);
        }
        assert_eq!(guesses, ADDRESS_ATTEMPTS);
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
        // A /64 is one address for the concurrency bound too.
        let _one = t.begin(ip("fd00:1:2:5::1"), "y", now).expect("one");
        let _two = t.begin(ip("fd00:1:2:5::2"), "y", now).expect("two");
        assert!(t.begin(ip("fd00:1:2:5::3"), "y", now).is_err());
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
        // An attacker's address holds one place in the line at most.
        let held = t
            .begin(ip("10.2.0.1"), "admin", now)
            .expect("first from 10.2.0.1");
        assert!(t.begin(ip("10.2.0.1"), "admin", now).is_err());
        // The owner, from a clean address: admitted, one spacing later at most.
        let a = t
            .begin(ip("10.9.9.9"), "admin", now)
            .expect("never refused");
        assert!(a.run_at.duration_since(now) <= USERNAME_SPACING);
        drop((held, a));
        // Many attacking addresses queue one per second, and beyond MAX_WAIT are refused.
        let mut waits = Vec::new();
        let mut attempts = Vec::new();
        for i in 0..20 {
            match t.begin(ip(&format!("10.3.0.{i}")), "admin", now) {
                Ok(a) => {
                    waits.push(a.run_at.duration_since(now));
                    attempts.push(a);
                }
                Err(r) => {
                    assert_eq!(r.retry_after, MAX_WAIT);
                    break;
                }
            }
        }
        assert!(waits.len() < 20, "the line is bounded");
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
