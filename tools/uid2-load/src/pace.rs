//! `--rate`: when each request of a paced run is due.
//!
//! Request `seq` (numbered from 0 over all connections) is due `seq / rate` seconds after the
//! start, a fixed schedule rather than a per-connection delay, so the offered load does not drop
//! when answers slow down. A connection that is late for a request sends it at once, and its
//! latency counts from when it was due: waiting for a free connection is part of what a client
//! at that rate would see (no "coordinated omission"). A connection that is early sleeps on the
//! runtime's timer until shortly before the request is due, then yields to the other tasks until
//! it is ([`wait_until`]): the timer's granularity is 1 ms, and sleeping on it alone would release
//! every request due in a millisecond at once, in bursts that the server's latency would show.
//! The spinning keeps the client's core busy during a paced run; that core is the client's own.

use std::time::{Duration, Instant};

/// How long before a request is due the connection stops sleeping on the timer and spins: more
/// than the timer's 1 ms granularity, so the sleep never overshoots the due time.
const SPIN: Duration = Duration::from_millis(2);

/// The latest a request can be due: 2^32 s, ~136 years.
const FAR: Duration = Duration::from_secs(1 << 32);

#[derive(Debug, Clone, Copy)]
pub struct Pace {
    start: Instant,
    rate: u64,
}

impl Pace {
    /// `rate` requests per second from `start`; a rate of 0 is taken as 1.
    pub fn new(start: Instant, rate: u64) -> Self {
        Self {
            start,
            rate: rate.max(1),
        }
    }

    /// When request `seq` is due. Saturates a century or so ahead rather than overflowing (a run
    /// lasts at most `cli::MAX_DURATION`).
    pub fn due(&self, seq: u64) -> Instant {
        let nanos = u128::from(seq) * 1_000_000_000 / u128::from(self.rate);
        let offset = u64::try_from(nanos).map_or(FAR, Duration::from_nanos).min(FAR);
        self.start.checked_add(offset).unwrap_or(self.start)
    }
}

/// Returns at `due` (or just after), not on the next millisecond tick after it.
pub async fn wait_until(due: Instant) {
    if let Some(coarse) = due.checked_sub(SPIN) {
        if coarse > Instant::now() {
            tokio::time::sleep_until(coarse.into()).await;
        }
    }
    // Each yield lets the runtime poll its sockets first, so answers keep being read meanwhile.
    while Instant::now() < due {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_due_at_even_intervals_from_the_start() {
        let start = Instant::now();
        let pace = Pace::new(start, 4);
        assert_eq!(pace.due(0), start);
        assert_eq!(pace.due(1), start + Duration::from_millis(250));
        assert_eq!(pace.due(4), start + Duration::from_secs(1));
        assert_eq!(pace.due(10), start + Duration::from_millis(2500));
    }

    #[test]
    fn high_rates_keep_sub_microsecond_spacing() {
        let start = Instant::now();
        let pace = Pace::new(start, 1_000_000);
        assert_eq!(pace.due(1) - start, Duration::from_micros(1));
        let pace = Pace::new(start, 3);
        // 1/3 s is not a whole number of nanoseconds: no drift builds up over many requests.
        assert_eq!(pace.due(3_000_000) - start, Duration::from_secs(1_000_000));
        assert_eq!(pace.due(1) - start, Duration::from_nanos(333_333_333));
    }

    #[test]
    fn the_schedule_is_monotonic_and_never_overflows() {
        let start = Instant::now();
        let pace = Pace::new(start, 1);
        let mut last = start;
        for seq in [0, 1, 2, 1 << 20, 1 << 40, u64::MAX - 1, u64::MAX] {
            let due = pace.due(seq);
            assert!(due >= last, "{seq}");
            last = due;
        }
        assert_eq!(Pace::new(start, 0).due(2), start + Duration::from_secs(2));
    }

    #[tokio::test]
    async fn waiting_ends_at_the_due_time_not_a_timer_tick_later() {
        for ahead_us in [0, 300, 2_500, 7_300] {
            let due = Instant::now() + Duration::from_micros(ahead_us);
            wait_until(due).await;
            let woke = Instant::now();
            assert!(woke >= due, "{ahead_us} µs: woke early");
            // A loaded test machine may wake it late; never a whole timer period of 50 ms.
            assert!(
                woke - due < Duration::from_millis(50),
                "{ahead_us} µs: {:?} late",
                woke - due
            );
        }
        // Already past: returns at once.
        let past = Instant::now();
        tokio::time::sleep(Duration::from_millis(1)).await;
        let before = Instant::now();
        wait_until(past).await;
        assert!(before.elapsed() < Duration::from_millis(50));
    }
}
