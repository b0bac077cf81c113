//! What a simulated worker executes: real CPU work, or blocking waits.
//!
//! One loop iteration stands for one iteration of `for i in range(n):
//! math.sqrt(i)` in `CPython`. It computes that square root, then a chain of
//! dependent square roots (the "cost units") sized so the iteration costs
//! about what `CPython` spends on it. Everything is real CPU work: the per-core
//! load bars must show the truth, so nothing here ever sleeps except I/O.

use std::hint::black_box;
use std::time::Duration;

use crate::clock::now_ns;
use crate::protocol::{Record, ReleaseReason};
use crate::sim::gil::{Gil, Recorder};

/// One iteration of the sqrt loop at `units` cost units. `carry` is the
/// previous iteration's result: chaining iterations keeps the CPU from
/// overlapping them, so the cost per iteration is the same for short and
/// long chains and calibration carries over.
#[inline(always)] // the measured unit of work: a call would change its cost
#[allow(clippy::inline_always)]
fn iteration(i: u64, units: u32, carry: f64) -> f64 {
    let mut x = (i as f64).sqrt() + carry * 1e-9;
    for _ in 0..units {
        // Dependent on the previous result, so the CPU cannot overlap them.
        x = (x + 1.0).sqrt();
    }
    x
}

/// Measures how many cost units make one iteration last `target_ns`.
/// Takes about 20 ms.
pub fn calibrate_units(target_ns: f64) -> u32 {
    const PROBE_UNITS: u32 = 64;
    const PROBE_ITERATIONS: u64 = 40_000;
    // Warm up once, then keep the fastest of a few probes: the least disturbed.
    let mut best = f64::MAX;
    for _ in 0..4 {
        let start = now_ns();
        let mut carry = 0.0;
        for i in 0..PROBE_ITERATIONS {
            carry = iteration(black_box(i), PROBE_UNITS, carry);
        }
        black_box(carry);
        let per_unit = (now_ns() - start) as f64 / (PROBE_ITERATIONS * u64::from(PROBE_UNITS)) as f64;
        best = best.min(per_unit);
    }
    ((target_ns / best).round() as u32).max(1)
}

/// Cost units per nanosecond of this CPU, measured now (~20 ms).
pub fn measure_units_per_ns() -> f64 {
    const PROBE_NS: f64 = 1000.0;
    f64::from(calibrate_units(PROBE_NS)) / PROBE_NS
}

/// How a worker spends its run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The sqrt loop: `iterations` square roots.
    Cpu,
    /// `requests` blocking waits, each followed by a little CPU for the reply.
    Io,
}

/// The parameters every worker of a process shares.
#[derive(Clone, Debug)]
pub struct WorkParams {
    pub iterations: u64,
    /// Cost units per iteration, already multiplied by the pace factor.
    pub units: u32,
    pub requests: u32,
    pub io_wait: Duration,
    pub reply_iterations: u64,
    /// Send a progress record every this many iterations.
    pub progress_every: u64,
}

/// Runs the CPU loop, as `CPython`'s eval loop does: called holding the
/// GIL, and releases it at the end.
pub fn run_cpu<R: Recorder>(gil: &Gil<R>, worker: u32, p: &WorkParams) {
    let every = p.progress_every.max(1);
    let mut carry = 0.0;
    let mut i = 0;
    while i < p.iterations {
        let chunk_end = (i + every).min(p.iterations);
        while i < chunk_end {
            // The eval loop's check at every back-edge.
            if gil.drop_requested() {
                gil.yield_to_waiter(worker);
            }
            carry = iteration(i, p.units, carry);
            i += 1;
        }
        black_box(carry);
        gil.recorder().record(Record::Progress { t: now_ns(), worker, done: i, total: p.iterations });
    }
    gil.release(worker, ReleaseReason::Finished);
}

/// Runs `requests` I/O requests: the wait happens with the GIL released; the
/// reply is handled under it. Called holding the GIL; releases it at the end.
pub fn run_io<R: Recorder>(gil: &Gil<R>, worker: u32, p: &WorkParams) {
    for done in 0..p.requests {
        let asked = now_ns();
        gil.release(worker, ReleaseReason::Io);
        gil.recorder().record(Record::IoBegin { t: now_ns(), worker });
        std::thread::sleep(p.io_wait);
        gil.take(worker);
        let t = now_ns();
        gil.recorder().record(Record::Reply { t, worker, latency_ns: t - asked });
        let mut carry = 0.0;
        for i in 0..p.reply_iterations {
            if gil.drop_requested() {
                gil.yield_to_waiter(worker);
            }
            carry = iteration(i, p.units, carry);
        }
        black_box(carry);
        gil.recorder().record(Record::Progress {
            t: now_ns(),
            worker,
            done: u64::from(done) + 1,
            total: u64::from(p.requests),
        });
    }
    gil.release(worker, ReleaseReason::Finished);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_scales_with_the_target() {
        let small = calibrate_units(20.0);
        let large = calibrate_units(200.0);
        assert!(large >= small * 5, "20 ns → {small} units, 200 ns → {large} units");
    }

    #[test]
    fn a_calibrated_iteration_costs_about_the_target() {
        let _cores = crate::sim::one_at_a_time();
        let target = 80.0;
        let units = calibrate_units(target);
        let n = 200_000;
        let mut best = f64::MAX;
        for _ in 0..3 {
            let start = now_ns();
            let mut carry = 0.0;
            for i in 0..n {
                carry = iteration(black_box(i), units, carry);
            }
            black_box(carry);
            best = best.min((now_ns() - start) as f64 / n as f64);
        }
        // Generous: this is a shared, noisy machine.
        assert!(
            (target * 0.5..target * 2.0).contains(&best),
            "{best:.1} ns per iteration for an 80 ns target"
        );
    }
}
