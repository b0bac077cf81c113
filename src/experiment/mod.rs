//! Experiments: what to run (spec, model, matrix), what speedups are
//! measured against (baseline), how long an iteration takes (calibration),
//! how to start a run (plan), who watches its processes (supervisor), the
//! real GIL read for the `CPython` lanes (lanes), what
//! the records add up to (tally, track, slices), how busy the machine was
//! (load), what the rounds say together (comparison, stats), and what to say
//! about it in plain words (narration).

pub(crate) mod baseline;
pub mod calibration;
pub mod comparison;
pub mod lanes;
pub mod load;
pub(crate) mod matrix;
pub mod memory;
pub mod model;
pub mod narration;
pub mod plan;
pub mod scoreboard;
pub mod slices;
pub mod spec;
pub mod stats;
pub mod supervisor;
pub mod tally;
pub mod track;

use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;

use crate::clock::now_ns;
use crate::experiment::comparison::Timed;
use crate::experiment::load::LoadMeter;
use crate::experiment::memory::Peaks;
use crate::experiment::plan::Plan;
use crate::experiment::spec::RunSpec;
use crate::experiment::supervisor::{Event, Report};
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
    time_run(spec, plan).map(|t| t.result)
}

/// What a headless run shows whoever watches it go (to record it).
#[derive(Clone, Copy, Debug)]
pub enum Seen<'a> {
    /// The run's processes started.
    Started { requested_at: u64, pids: &'a [u32] },
    /// A report arrived at `at`.
    Report { at: u64, report: &'a Report },
}

/// Runs one spec to its end, headless, watching how busy the machine was
/// with other things meanwhile.
pub fn time_run(spec: &RunSpec, plan: &Plan) -> Result<Timed, String> {
    time_run_watched(spec, plan, &mut |_| {})
}

/// [`time_run`], showing `watch` the run as it goes.
pub fn time_run_watched(
    spec: &RunSpec,
    plan: &Plan,
    watch: &mut dyn FnMut(Seen<'_>),
) -> Result<Timed, String> {
    let meter = LoadMeter::start();
    let tally = run_tally_watched(spec, plan, watch)?;
    let outside = meter.map_or(0.0, |m| m.outside_cores());
    let result = tally.result().ok_or_else(|| format!("{} run ended without results", spec.label()))?;
    let latencies_ns =
        if tally.workers.len() > 1 { tally.contended_latencies_ns() } else { tally.latencies_ns() };
    Ok(Timed { result, latencies_ns, outside })
}

/// Runs one spec to its end, headless, and returns everything it recorded.
pub fn run_tally(spec: &RunSpec, plan: &Plan) -> Result<Tally, String> {
    run_tally_watched(spec, plan, &mut |_| {})
}

fn run_tally_watched(spec: &RunSpec, plan: &Plan, watch: &mut dyn FnMut(Seen<'_>)) -> Result<Tally, String> {
    spec.check()?;
    let launches = plan.launches(spec)?;
    let (tx, rx) = supervisor::channel();
    let mut running = supervisor::start_one(0, launches, silence_limit(spec), &tx);
    drop(tx);
    let mut tally = Tally::new(spec.clone(), running.requested_at, running.streams());
    // The supervisor fails a silent run itself; this only guards against a
    // supervisor that stopped talking altogether.
    let limit = silence_limit(spec) * 2;
    // The processes' memory is read now and then while they run (a tenth of
    // a second: often enough to catch a run's peak, cheap enough not to matter).
    let mut memory = Peaks::default();
    let mut last_word = std::time::Instant::now();
    let mut pids: Vec<u32> = Vec::new();
    while !tally.is_over() {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Reports(reports)) => {
                last_word = std::time::Instant::now();
                for report in reports {
                    watch(Seen::Report { at: now_ns(), report: &report });
                    tally.apply(report);
                }
            }
            Ok(Event::Started { pids: started, .. }) => {
                watch(Seen::Started { requested_at: running.requested_at, pids: &started });
                pids.extend(started);
            }
            Ok(Event::StartFailed { why, .. }) => return Err(format!("{} run failed: {why}", spec.label())),
            Err(RecvTimeoutError::Timeout) if last_word.elapsed() >= limit => {
                tally.fail(format!("no word from the workers in {} s", limit.as_secs()), now_ns());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if memory.due() {
            for pid in tally.workers.iter().filter_map(|w| w.pid) {
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
            memory.read(pids.iter().copied());
        }
    }
    tally.memory = memory.total();
    running.kill();
    if let Some(why) = &tally.failure {
        return Err(format!("{} run failed: {why}", spec.label()));
    }
    Ok(tally)
}
