//! The baseline every speedup is measured against: the workers' jobs run one
//! after another, each alone, one thread in one process, timed like the
//! models from its start request to its end. Speedup = baseline ÷ wall time.
//!
//! Words used for it everywhere: a *baseline run* times one worker of one
//! role (CPU or I/O) alone; *the baseline* of an experiment is the sum of
//! its workers' baseline times.
//!
//! The live view and `gilscope run` both take it from here, so they cannot
//! time it two ways.

use crate::experiment::spec::{DEFAULT_SWITCH_INTERVAL, Experiment, Model, RunSpec, Workload};
use crate::sim::workload::Role;

/// One worker of `role` alone, with every other setting of `e`. A lone
/// thread never waits for its GIL, so neither the switch interval nor the
/// GIL switch can change its time: both are pinned (GIL on, the default
/// interval), so that every setting compares with the same lone worker.
pub fn spec(e: &Experiment, role: Role) -> RunSpec {
    let workload = match role {
        Role::Cpu => Workload::Cpu,
        Role::Io => Workload::Io,
    };
    let experiment =
        Experiment { workers: 1, workload, gil: true, switch_interval: DEFAULT_SWITCH_INTERVAL, ..e.clone() };
    RunSpec { experiment, model: Model::Threads }
}

/// The baseline runs `e` needs: one per distinct role.
pub fn specs(e: &Experiment) -> Vec<RunSpec> {
    let mut specs: Vec<RunSpec> = Vec::new();
    for w in 0..e.workers {
        let spec = spec(e, e.workload.role(w));
        if !specs.contains(&spec) {
            specs.push(spec);
        }
    }
    specs
}

/// A baseline run's measured wall time, and what else was measured with it.
#[derive(Clone, Debug, PartialEq)]
pub struct BaselineTime {
    pub spec: RunSpec,
    pub wall_s: f64,
    /// Cores' worth of CPU other processes used while it ran.
    pub outside: f64,
    /// An I/O worker's mean request latency, alone (ms).
    pub io_latency_ms: Option<f64>,
}

/// The baseline runs timed so far; the baseline of an experiment once all
/// its roles were timed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Baseline {
    pub times: Vec<BaselineTime>,
}

impl Baseline {
    /// Remembers a baseline run's time, replacing an older one of the same spec.
    pub fn record(&mut self, spec: RunSpec, wall_s: f64) {
        self.record_timed(BaselineTime { spec, wall_s, outside: 0.0, io_latency_ms: None });
    }

    pub fn record_timed(&mut self, time: BaselineTime) {
        self.times.retain(|t| t.spec != time.spec);
        self.times.push(time);
    }

    /// The baseline of `e` as one round of a comparison, once every role was timed.
    pub fn round(&self, e: &Experiment) -> Option<crate::experiment::comparison::BaselineRound> {
        let mine: Vec<&BaselineTime> =
            specs(e).iter().filter_map(|s| self.times.iter().find(|t| t.spec == *s)).collect();
        Some(crate::experiment::comparison::BaselineRound {
            total_s: self.total_s(e)?,
            outside: mine.iter().map(|t| t.outside).fold(0.0, f64::max),
            io_alone_ms: mine.iter().find_map(|t| t.io_latency_ms),
            after_s: None,
        })
    }

    pub fn time_of(&self, spec: &RunSpec) -> Option<f64> {
        self.times.iter().find(|t| t.spec == *spec).map(|t| t.wall_s)
    }

    /// The time of one worker of `role` alone under `e`, if measured.
    pub fn time_of_role(&self, e: &Experiment, role: Role) -> Option<f64> {
        self.time_of(&spec(e, role))
    }

    /// The workers of `e` one after another, each alone, in seconds: None
    /// until every role was timed.
    pub fn total_s(&self, e: &Experiment) -> Option<f64> {
        (0..e.workers).map(|w| self.time_of_role(e, e.workload.role(w))).sum()
    }

    /// Forgets the times of `e`'s baseline runs, so that they are timed again.
    pub fn forget(&mut self, e: &Experiment) {
        let specs = specs(e);
        self.times.retain(|t| !specs.contains(&t.spec));
    }

    /// The baseline runs of `e` still to be timed.
    pub fn missing(&self, e: &Experiment) -> Vec<RunSpec> {
        specs(e).into_iter().filter(|s| self.time_of(s).is_none()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_lone_worker_is_one_thread_with_its_gil_at_the_default_interval() {
        let e = Experiment { gil: false, switch_interval: Duration::from_millis(50), ..Experiment::new(4) };
        let spec = spec(&e, Role::Cpu);
        assert_eq!(spec.model, Model::Threads);
        assert_eq!((spec.experiment.workers, spec.experiment.gil), (1, true));
        assert_eq!(spec.experiment.switch_interval, DEFAULT_SWITCH_INTERVAL);
    }

    #[test]
    fn mixed_needs_a_lone_io_worker_and_a_lone_cpu_worker_and_sums_them() {
        let e = Experiment { workload: Workload::Mixed, ..Experiment::new(3) };
        let needed = specs(&e);
        let loads: Vec<Workload> = needed.iter().map(|s| s.experiment.workload).collect();
        assert_eq!(loads, [Workload::Io, Workload::Cpu]);
        let mut baseline = Baseline::default();
        baseline.record(needed[0].clone(), 1.0);
        assert_eq!(baseline.total_s(&e), None, "the CPU worker is not timed yet");
        baseline.record(needed[1].clone(), 2.0);
        assert_eq!(baseline.total_s(&e), Some(1.0 + 2.0 * 2.0));
        assert!(baseline.missing(&e).is_empty());
    }
}
