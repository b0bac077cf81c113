//! The scoreboard: the article's claims, measured on this machine, one row
//! per model — what starting a worker costs (a thread, a fork, a forkserver,
//! a spawn, an interpreter), how much memory the model holds and how much of
//! it is its processes' own, how many processes, threads and GILs the OS and
//! the interpreters report, and the speedup beside its physical limit.

use crate::experiment::memory::Memory;
use crate::experiment::spec::{Model, RunSpec};
use crate::experiment::tally::RunResult;
use crate::protocol::Runtime;

/// One model's row.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Row {
    pub model: &'static str,
    pub label: String,
    /// How a worker is started: "thread", "fork", "forkserver", "spawn",
    /// "interpreter", or "exec" (the simulation's own process start).
    pub starts_by: &'static str,
    pub start_us: f64,
    /// Measured by the simulation (its own costs, not `CPython`'s) or by the
    /// real interpreter.
    pub runtime: &'static str,
    pub memory: Option<Memory>,
    pub processes: u32,
    pub threads_per_process: u32,
    pub gils: u32,
    pub speedup: Option<f64>,
    pub speedup_limit: f64,
    pub cores_used: f64,
}

/// How `spec` starts a worker.
pub fn starts_by(spec: &RunSpec) -> &'static str {
    let real = spec.experiment.runtime == Runtime::Cpython;
    match spec.model {
        Model::Subinterpreters { .. } if real => "interpreter",
        // The simulation starts an interpreter as a thread of its process.
        Model::Threads | Model::FreeThreaded | Model::Subinterpreters { .. } => "thread",
        Model::Processes if real => spec.experiment.start_method.name(),
        Model::Processes | Model::Hybrid { .. } => "exec",
    }
}

/// The rows of the runs that finished.
pub fn rows(runs: &[(RunSpec, RunResult)]) -> Vec<Row> {
    runs.iter()
        .map(|(spec, r)| Row {
            model: r.model,
            label: r.label.clone(),
            starts_by: starts_by(spec),
            start_us: r.start_us,
            runtime: r.runtime,
            memory: r.memory,
            processes: r.processes,
            threads_per_process: r.workers / r.processes.max(1),
            gils: r.gils,
            speedup: r.speedup,
            speedup_limit: r.speedup_limit,
            cores_used: r.cores_used,
        })
        .collect()
}

/// The note under a table of simulated start costs: they are the
/// simulation's, and where the real interpreter ran too its figures are the
/// ones to read.
pub fn start_cost_note(simulated: bool, real: bool) -> Option<&'static str> {
    match (simulated, real) {
        (true, true) => Some(
            "simulated start costs are the simulation's own (a Rust thread, an exec of gilscope); read the real CPython's rows for Python's",
        ),
        (true, false) => Some(
            "simulated start costs are the simulation's own (a Rust thread, an exec of gilscope), not Python's: --runtime cpython measures those",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::spec::{Experiment, StartMethod};

    #[test]
    fn each_model_says_how_it_starts_a_worker() {
        let spec = |model, runtime, start_method| RunSpec {
            experiment: Experiment { runtime, start_method, ..Experiment::new(2) },
            model,
        };
        let real = Runtime::Cpython;
        assert_eq!(starts_by(&spec(Model::Threads, real, StartMethod::Fork)), "thread");
        assert_eq!(starts_by(&spec(Model::Processes, real, StartMethod::Spawn)), "spawn");
        assert_eq!(starts_by(&spec(Model::Processes, Runtime::Sim, StartMethod::Spawn)), "exec");
        assert_eq!(
            starts_by(&spec(Model::Subinterpreters { shared_gil: false }, real, StartMethod::Fork)),
            "interpreter"
        );
    }
}
