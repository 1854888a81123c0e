// nvr patch: this whole file.
//! One thread per read interval that wakes every connection waiting for its next batched
//! read (see `Connection::set_read_interval`).
//!
//! A tokio timer per connection cost more than it saved: registering a deadline earlier than
//! the one the runtime's driver sleeps on wakes the driver (an `eventfd` write), so 16
//! connections ticking every 20 ms made ~800 writes a second, as many system calls as the
//! per-packet reads they replaced. Here a connection that drained its socket registers its
//! waker with the ticker and sleeps; the ticker thread wakes the whole list once per tick, so
//! the runtime is woken about once per tick for all connections. The ticker blocks on a
//! condition variable while nobody waits, so an idle process does not tick.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

/// The tickers, one per interval in use (the recorder uses one).
static TICKERS: OnceLock<Mutex<HashMap<Duration, Arc<Ticker>>>> = OnceLock::new();

/// The ticker of `interval`, started on first use.
pub(crate) fn ticker(interval: Duration) -> Arc<Ticker> {
    let map = TICKERS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    map.entry(interval)
        .or_insert_with(|| {
            let t = Arc::new(Ticker {
                interval,
                state: Mutex::new(State {
                    generation: 0,
                    waiting: Vec::new(),
                }),
                someone_waits: Condvar::new(),
            });
            let run = t.clone();
            std::thread::Builder::new()
                .name("rtsp-read-tick".into())
                .spawn(move || run.run())
                .expect("spawning the read ticker");
            t
        })
        .clone()
}

/// Wakes, once per interval, the connections waiting for a read.
pub(crate) struct Ticker {
    interval: Duration,
    state: Mutex<State>,
    someone_waits: Condvar,
}

struct State {
    /// Ticks so far: a connection waits for the one after the generation it saw.
    generation: u64,
    waiting: Vec<Waker>,
}

impl Ticker {
    /// The current generation: after a read that drained its socket, a connection waits until
    /// the generation moves past this.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Whether the tick after `seen` has come; if not, `waker` is woken when it does.
    pub(crate) fn poll_tick(&self, seen: u64, waker: &Waker) -> bool {
        let mut s = self.lock();
        if s.generation != seen {
            return true;
        }
        if !s.waiting.iter().any(|w| w.will_wake(waker)) {
            s.waiting.push(waker.clone());
            if s.waiting.len() == 1 {
                self.someone_waits.notify_one();
            }
        }
        false
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self) {
        let mut next = Instant::now() + self.interval;
        loop {
            {
                let mut s = self.lock();
                while s.waiting.is_empty() {
                    s = self
                        .someone_waits
                        .wait(s)
                        .unwrap_or_else(PoisonError::into_inner);
                    // Idle until now: the next tick is an interval from here.
                    next = Instant::now() + self.interval;
                }
            }
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            next += self.interval;
            let now = Instant::now();
            if next < now {
                // Fell behind (a stalled machine): tick from now rather than in a burst.
                next = now + self.interval;
            }
            let woken = {
                let mut s = self.lock();
                s.generation += 1;
                std::mem::take(&mut s.waiting)
            };
            for w in woken {
                w.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_waiter_is_woken_once_by_the_next_tick() {
        let t = ticker(Duration::from_millis(5));
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let seen = t.generation();
        assert!(!t.poll_tick(seen, &waker));
        // Registering the same waker again adds nothing.
        assert!(!t.poll_tick(seen, &waker));
        let deadline = Instant::now() + Duration::from_secs(30);
        while t.generation() == seen && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(t.poll_tick(seen, &waker), "the tick came");
        // Woken once (the wake happens just after the generation moves on).
        while count.0.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }
}
