//! Experiments: what to run (spec, model, matrix), what speedups are
//! measured against (baseline), how long an iteration takes (calibration),
//! how to start a run (plan), who watches its processes (supervisor), what
//! the records add up to (tally) and who won (verdict).

pub(crate) mod baseline;
pub mod calibration;
pub(crate) mod matrix;
pub(crate) mod model;
pub mod plan;
pub mod spec;
pub mod supervisor;
pub mod tally;
pub(crate) mod verdict;

use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;

use crate::clock::now_ns;
use crate::experiment::plan::Plan;
use crate::experiment::spec::RunSpec;
use crate::experiment::supervisor::Event;
use crate::experiment::tally::{RunResult, Tally};

/// A run that says nothing for this long is taken for hung (longer when
/// every worker may be asleep in one I/O wait). Headless runs and the live
/// view both hand it to the supervisor.
pub fn silence_limit(spec: &RunSpec) -> Duration {
    let e = &spec.experiment;
    Duration::from_secs(30).max(e.io_wait * 2 * e.pace.max(1) + e.switch_interval)
}

/// Runs one spec to its end, headless, and returns its figures.
pub fn run_to_end(spec: &RunSpec, plan: &Plan) -> Result<RunResult, String> {
    let tally = run_tally(spec, plan)?;
    tally.result().ok_or_else(|| format!("{} run ended without results", spec.label()))
}

/// Runs one spec to its end, headless, and returns everything it recorded.
pub fn run_tally(spec: &RunSpec, plan: &Plan) -> Result<Tally, String> {
    spec.check()?;
    let launches = plan.launches(spec)?;
    let (tx, rx) = supervisor::channel();
    let mut running = supervisor::start_one(0, launches, silence_limit(spec), &tx);
    drop(tx);
    let mut tally = Tally::new(spec.clone(), running.requested_at, running.streams());
    // The supervisor fails a silent run itself; this only guards against a
    // supervisor that stopped talking altogether.
    let limit = silence_limit(spec) * 2;
    while !tally.is_over() {
        match rx.recv_timeout(limit) {
            Ok(Event::Reports(reports)) => {
                for report in reports {
                    tally.apply(report);
                }
            }
            Ok(Event::Started { .. }) => {}
            Ok(Event::StartFailed { why, .. }) => return Err(format!("{} run failed: {why}", spec.label())),
            Err(RecvTimeoutError::Timeout) => {
                tally.fail(format!("no word from the workers in {} s", limit.as_secs()), now_ns());
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    running.kill();
    if let Some(why) = &tally.failure {
        return Err(format!("{} run failed: {why}", spec.label()));
    }
    Ok(tally)
}
