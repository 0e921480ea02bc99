//! What every criterion bench of the workspace shares: [`Tally`], the per-operation times a bench
//! keeps for itself, so that the summary a bench prints after its groups comes from numbers
//! measured in that same run; and [`floor`], the raw SHA-256 the identity paths are compared with.
//!
//! The benches of `uid2-store` and `uid2-api` include this file by path (`#[path]`): benches of
//! different crates cannot share a module otherwise, short of a crate of their own, and this is
//! too small to be one.

// Each bench binary uses a different part of this module.
#![allow(dead_code)]

pub mod floor;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};

/// The criterion configuration every bench starts from, before the command line: short enough
/// that `cargo bench --workspace` stays within minutes on a 2-core machine, long enough for
/// stable means. `--warm-up-time`, `--measurement-time` and `--sample-size` still override it
/// (except where a group sets its own sample size).
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args()
}

/// Whether this run measures at all: `--test` runs each bench once and `--list` runs none, so a
/// summary of either would print noise or nothing.
pub fn measuring() -> bool {
    !std::env::args().any(|arg| arg == "--test" || arg == "--list")
}

/// Every call criterion made to each bench's routine, in the order the benches first ran.
#[derive(Default)]
pub struct Tally {
    benches: RefCell<Vec<Calls>>,
}

/// One bench's `(iterations, elapsed)` calls.
struct Calls {
    id: String,
    calls: Vec<(u64, Duration)>,
}

impl Tally {
    /// Registers bench `id` in `group`. `routine(iters)` runs the operation `iters` times and
    /// returns the time they took; every call is kept under `id`, which must be unique in the
    /// binary. Timing is `iter_custom` so that a routine can cycle through many distinct inputs
    /// (cache-cold, as production is) without criterion timing the input selection separately.
    pub fn bench(&self, group: &mut BenchmarkGroup<'_, WallTime>, id: &str, mut routine: impl FnMut(u64) -> Duration) {
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let elapsed = routine(iters);
                let mut benches = self.benches.borrow_mut();
                match benches.iter_mut().find(|bench| bench.id == id) {
                    Some(bench) => bench.calls.push((iters, elapsed)),
                    None => benches.push(Calls {
                        id: id.to_owned(),
                        calls: vec![(iters, elapsed)],
                    }),
                }
                elapsed
            })
        });
    }

    /// Nanoseconds per operation of bench `id`, or `None` if it did not run (filtered out).
    ///
    /// The least-squares slope through the origin of time against iterations over every call:
    /// criterion's own `slope` estimator. Warm-up calls are included; they run the same code in
    /// the same state, and the short ones, the only ones that could be colder, weigh least.
    pub fn ns_per_op(&self, id: &str) -> Option<f64> {
        let benches = self.benches.borrow();
        let bench = benches.iter().find(|bench| bench.id == id)?;
        let (xy, xx) = bench.calls.iter().fold((0.0, 0.0), |(xy, xx), (iters, elapsed)| {
            let x = *iters as f64;
            (xy + x * elapsed.as_nanos() as f64, xx + x * x)
        });
        (xx > 0.0).then(|| xy / xx)
    }

    /// Prints every bench that ran, in order, with ns and operations per second on one core.
    pub fn print_all(&self, title: &str) {
        println!("\n== {title}: every bench, one core, this run ==");
        println!("{:<44} {:>12} {:>14}", "bench", "ns/op", "ops/s");
        let ids: Vec<String> = self.benches.borrow().iter().map(|bench| bench.id.clone()).collect();
        for id in ids {
            if let Some(ns) = self.ns_per_op(&id) {
                println!("{id:<44} {ns:>12.1} {:>14}", rate(1e9 / ns));
            }
        }
    }
}

/// Runs `op` on `inputs[i % len]` for `iters` iterations and returns the time taken: a routine for
/// [`Tally::bench`] that never repeats an input back to back.
pub fn cycle<T>(inputs: &[T], iters: u64, mut op: impl FnMut(&T)) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        op(&inputs[(i % inputs.len() as u64) as usize]);
    }
    start.elapsed()
}

/// Runs `op` `iters` times and returns the time taken.
pub fn times(iters: u64, mut op: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    start.elapsed()
}

/// `12.34 M`, `456.7 k`, `98.7`: a rate for the summary tables.
pub fn rate(per_second: f64) -> String {
    if per_second >= 1e6 {
        format!("{:.2} M", per_second / 1e6)
    } else if per_second >= 1e3 {
        format!("{:.1} k", per_second / 1e3)
    } else {
        format!("{per_second:.1}")
    }
}
