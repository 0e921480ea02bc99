//! `--rate`: when each request of a paced run is due.
//!
//! Request `seq` (numbered from 0 over all connections) is due `seq / rate` seconds after the
//! start, a fixed schedule rather than a per-connection delay, so the offered load does not drop
//! when answers slow down. A connection that is late for a request sends it at once, and its
//! latency counts from when it was due: waiting for a free connection is part of what a client
//! at that rate would see (no "coordinated omission"). A connection that is early sleeps on the
//! runtime's timer, whose granularity is 1 ms, so requests leave in small bursts on millisecond
//! ticks; the rate over any whole millisecond is still the one asked for.

use std::time::{Duration, Instant};

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
}
