//! Counting a run and summarising it: successes, failures by label, requests shed (503 under
//! `--allow-shedding`), identities mapped, and every latency kept (microseconds, 4 bytes each) so
//! the percentiles are exact rather than bucketed. Shed answers have their own percentiles: how
//! fast a refusal comes is a different question from how fast an answer comes.
//! A run is capped at `cli::MAX_REQUESTS` requests, so the latencies stay under 40 MB.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

/// One connection's count, merged into the run's at the end (no shared counters on the hot path).
#[derive(Debug, Default)]
pub struct Tally {
    latencies_us: Vec<u32>,
    shed_latencies_us: Vec<u32>,
    pub ok: u64,
    pub identities: u64,
    pub failures: BTreeMap<String, u64>,
}

fn micros(latency: Duration) -> u32 {
    u32::try_from(latency.as_micros()).unwrap_or(u32::MAX)
}

impl Tally {
    pub fn success(&mut self, latency: Duration, identities: u64) {
        self.latencies_us.push(micros(latency));
        self.ok += 1;
        self.identities += identities;
    }

    /// A failure; `latency` is `None` when no HTTP answer came (transport error or timeout), so
    /// the percentiles describe answered requests only.
    pub fn failure(&mut self, latency: Option<Duration>, label: String) {
        if let Some(latency) = latency {
            self.latencies_us.push(micros(latency));
        }
        *self.failures.entry(label).or_insert(0) += 1;
    }

    /// A 503 counted as shed (`--allow-shedding`), with the time its refusal took.
    pub fn shed(&mut self, latency: Duration) {
        self.shed_latencies_us.push(micros(latency));
    }

    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    pub fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.shed_latencies_us.extend(other.shed_latencies_us);
        self.ok += other.ok;
        self.identities += other.identities;
        for (label, n) in other.failures {
            *self.failures.entry(label).or_insert(0) += n;
        }
    }
}

/// Nearest-rank percentile of sorted values: the smallest value with at least `p` % of the
/// values at or below it. `None` for no values.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil();
    // Clamping covers p <= 0 (the minimum) and p >= 100 (the maximum) and any float edge.
    let index = if rank.is_nan() || rank < 1.0 {
        0
    } else {
        (rank as usize).min(n) - 1
    };
    sorted.get(index).copied()
}

/// Why the run stopped sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoppedBy {
    Requests,
    Duration,
}

#[derive(Debug)]
pub struct Summary {
    pub scenario: &'static str,
    pub connections: usize,
    /// Identifiers per request, for the map scenarios.
    pub batch: Option<usize>,
    pub ok: u64,
    pub failed: u64,
    pub failures: BTreeMap<String, u64>,
    /// 503 answers under `--allow-shedding`, and their latency percentiles.
    pub shed: u64,
    pub shed_p50_us: Option<u32>,
    pub shed_p99_us: Option<u32>,
    pub shed_max_us: Option<u32>,
    pub elapsed: Duration,
    pub stopped_by: StoppedBy,
    pub identities: u64,
    pub p50_us: Option<u32>,
    pub p99_us: Option<u32>,
    pub max_us: Option<u32>,
    /// The `--rate` the run was paced at, if any.
    pub rate: Option<u64>,
}

impl Summary {
    pub fn new(
        scenario: &'static str,
        connections: usize,
        batch: Option<usize>,
        mut tally: Tally,
        elapsed: Duration,
        request_limit: u64,
    ) -> Self {
        tally.latencies_us.sort_unstable();
        tally.shed_latencies_us.sort_unstable();
        let failed = tally.failed();
        let shed = tally.shed_latencies_us.len() as u64;
        let sorted = &tally.latencies_us;
        let shed_sorted = &tally.shed_latencies_us;
        Self {
            scenario,
            connections,
            batch,
            ok: tally.ok,
            failed,
            elapsed,
            stopped_by: if tally.ok + failed + shed >= request_limit {
                StoppedBy::Requests
            } else {
                StoppedBy::Duration
            },
            identities: tally.identities,
            p50_us: percentile(sorted, 50.0),
            p99_us: percentile(sorted, 99.0),
            max_us: sorted.last().copied(),
            shed,
            shed_p50_us: percentile(shed_sorted, 50.0),
            shed_p99_us: percentile(shed_sorted, 99.0),
            shed_max_us: shed_sorted.last().copied(),
            failures: tally.failures,
            rate: None,
        }
    }

    /// Every request succeeded (or was shed, when that is allowed), and at least one succeeded.
    pub fn passed(&self) -> bool {
        self.failed == 0 && self.ok > 0
    }

    fn per_second(&self, n: u64) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        }
    }

    /// Successful requests per second of the whole run.
    pub fn req_per_s(&self) -> f64 {
        self.per_second(self.ok)
    }

    pub fn identities_per_s(&self) -> Option<f64> {
        self.batch.map(|_| self.per_second(self.identities))
    }

    pub fn text(&self) -> String {
        let ms = |us: Option<u32>| us.map_or("-".to_owned(), |us| format!("{:.2}", f64::from(us) / 1000.0));
        let mut out = format!(
            "{}: {} ok, {} failed in {:.2} s over {} connections{}{} (stopped by {})\n",
            self.scenario,
            self.ok,
            self.failed,
            self.elapsed.as_secs_f64(),
            self.connections,
            self.batch
                .map_or(String::new(), |b| format!(", {b} identities per request")),
            self.rate.map_or(String::new(), |r| format!(", paced at {r} req/s")),
            match self.stopped_by {
                StoppedBy::Requests => "request count",
                StoppedBy::Duration => "duration",
            }
        );
        out.push_str(&format!("  req/s {:.1}", self.req_per_s()));
        if let Some(ids) = self.identities_per_s() {
            out.push_str(&format!("   identities/s {ids:.0}"));
        }
        out.push_str(&format!(
            "\n  latency ms  p50 {}  p99 {}  max {}\n",
            ms(self.p50_us),
            ms(self.p99_us),
            ms(self.max_us)
        ));
        if self.shed > 0 {
            out.push_str(&format!(
                "  shed {} (503), {:.1}/s; latency ms  p50 {}  p99 {}  max {}\n",
                self.shed,
                self.per_second(self.shed),
                ms(self.shed_p50_us),
                ms(self.shed_p99_us),
                ms(self.shed_max_us)
            ));
        }
        for (label, n) in &self.failures {
            out.push_str(&format!("  failed {n}: {label}\n"));
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let ms = |us: Option<u32>| us.map(|us| f64::from(us) / 1000.0);
        json!({
            "scenario": self.scenario,
            "connections": self.connections,
            "rate": self.rate,
            "batch": self.batch,
            "ok": self.ok,
            "failed": self.failed,
            "failures": self.failures,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "stopped_by": match self.stopped_by {
                StoppedBy::Requests => "requests",
                StoppedBy::Duration => "duration",
            },
            "req_per_s": self.req_per_s(),
            "identities": self.identities,
            "identities_per_s": self.identities_per_s(),
            "latency_ms": { "p50": ms(self.p50_us), "p99": ms(self.p99_us), "max": ms(self.max_us) },
            "shed": self.shed,
            "shed_per_s": self.per_second(self.shed),
            "shed_latency_ms": {
                "p50": ms(self.shed_p50_us),
                "p99": ms(self.shed_p99_us),
                "max": ms(self.shed_max_us),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), Some(50));
        assert_eq!(percentile(&values, 99.0), Some(99));
        assert_eq!(percentile(&values, 99.5), Some(100));
        assert_eq!(percentile(&values, 100.0), Some(100));
        assert_eq!(percentile(&values, 0.0), Some(1));
        assert_eq!(percentile(&values, 1.0), Some(1));
        assert_eq!(percentile(&values, 1.1), Some(2));
    }

    #[test]
    fn percentiles_of_small_and_empty_sets() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7], 50.0), Some(7));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[1, 2], 50.0), Some(1));
        assert_eq!(percentile(&[1, 2], 51.0), Some(2));
        assert_eq!(percentile(&[1, 2, 3], 150.0), Some(3));
        assert_eq!(percentile(&[1, 2, 3], -5.0), Some(1));
        assert_eq!(percentile(&[1, 2, 3], f64::NAN), Some(1));
    }

    #[test]
    fn tallies_merge_and_summarise() {
        let mut a = Tally::default();
        a.success(Duration::from_micros(1000), 5000);
        a.success(Duration::from_micros(3000), 5000);
        a.failure(Some(Duration::from_micros(500)), "HTTP 400".to_owned());
        let mut b = Tally::default();
        b.success(Duration::from_micros(2000), 5000);
        b.failure(None, "timeout".to_owned());
        b.failure(None, "HTTP 400".to_owned());
        a.merge(b);
        let s = Summary::new("map-v3", 2, Some(5000), a, Duration::from_secs(2), 100);
        assert_eq!((s.ok, s.failed, s.identities), (3, 3, 15000));
        assert_eq!(s.failures.get("HTTP 400"), Some(&2));
        assert_eq!(s.failures.get("timeout"), Some(&1));
        // Answered latencies 0.5, 1, 2, 3 ms: the timeout has none.
        assert_eq!((s.p50_us, s.max_us), (Some(1000), Some(3000)));
        assert_eq!(s.stopped_by, StoppedBy::Duration);
        assert!((s.req_per_s() - 1.5).abs() < 1e-9);
        assert_eq!(s.identities_per_s(), Some(7500.0));
        assert!(!s.passed());
        let json = s.json();
        assert_eq!(json["failures"]["HTTP 400"], 2);
        assert_eq!(json["latency_ms"]["max"], 3.0);
        assert!(s.text().contains("failed 1: timeout"));
    }

    #[test]
    fn a_run_passes_only_with_successes_and_no_failures() {
        let mut t = Tally::default();
        t.success(Duration::from_millis(1), 0);
        let s = Summary::new("generate", 1, None, t, Duration::from_secs(1), 1);
        assert!(s.passed());
        assert_eq!(s.stopped_by, StoppedBy::Requests);
        assert_eq!(s.identities_per_s(), None);
        assert!(!Summary::new("generate", 1, None, Tally::default(), Duration::ZERO, 1).passed());
    }

    #[test]
    fn shed_requests_are_neither_successes_nor_failures() {
        let mut t = Tally::default();
        t.success(Duration::from_millis(4), 0);
        t.shed(Duration::from_micros(200));
        let mut other = Tally::default();
        other.shed(Duration::from_micros(100));
        other.shed(Duration::from_micros(300));
        t.merge(other);
        let s = Summary::new("generate", 2, None, t, Duration::from_secs(1), 4);
        assert_eq!((s.ok, s.failed, s.shed), (1, 0, 3));
        assert!(s.passed());
        assert_eq!(
            s.stopped_by,
            StoppedBy::Requests,
            "shed requests count toward the budget"
        );
        assert_eq!((s.shed_p50_us, s.shed_max_us), (Some(200), Some(300)));
        assert_eq!(
            (s.p50_us, s.max_us),
            (Some(4000), Some(4000)),
            "refusals are kept apart"
        );
        assert_eq!(s.json()["shed"], 3);
        assert!(s.text().contains("shed 3 (503)"), "{}", s.text());

        let mut all_shed = Tally::default();
        all_shed.shed(Duration::from_micros(100));
        assert!(!Summary::new("generate", 1, None, all_shed, Duration::from_secs(1), 1).passed());
    }
}
