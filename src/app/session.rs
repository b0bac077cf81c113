//! One press of space: the baseline runs still needed, one by one,
//! then the models, all at once (race) or one after the other.

use crate::app::clock::SessionClock;
use crate::app::run::Run;
use crate::app::settings::Mode;
use crate::experiment::baseline::Baseline;
use crate::experiment::spec::{Experiment, Model, RunSpec};
use crate::experiment::supervisor::{Report, RunId};

#[derive(Clone, Debug)]
pub struct Session {
    pub experiment: Experiment,
    pub mode: Mode,
    /// Baseline runs not timed before (empty when all were).
    pub baseline: Vec<Run>,
    /// One run per model, in the order the screen shows them.
    pub models: Vec<Run>,
    pub clock: SessionClock,
}

impl Session {
    pub fn new(experiment: Experiment, mode: Mode, models: &[Model], measured: &Baseline) -> Self {
        let baseline = measured.missing(&experiment).into_iter().map(Run::new).collect();
        let models = model_specs(&experiment, models).into_iter().map(Run::new).collect();
        Session { experiment, mode, baseline, models, clock: SessionClock::default() }
    }

    pub fn runs(&self) -> impl Iterator<Item = &Run> {
        self.baseline.iter().chain(self.models.iter())
    }

    pub(super) fn runs_mut(&mut self) -> impl Iterator<Item = &mut Run> {
        self.baseline.iter_mut().chain(self.models.iter_mut())
    }

    /// The run `id`, while it still takes reports.
    pub(super) fn run_mut(&mut self, id: RunId) -> Option<&mut Run> {
        self.runs_mut().find(|r| r.id == Some(id) && !r.over)
    }

    pub fn is_baseline(&self, id: RunId) -> bool {
        self.baseline.iter().any(|r| r.id == Some(id))
    }

    pub fn paused(&self) -> bool {
        self.clock.paused()
    }

    /// True while some run is starting or running.
    pub fn active(&self) -> bool {
        self.runs().any(|r| r.id.is_none() || r.live())
    }

    /// The baseline run being timed, if one is.
    pub fn timing_baseline(&self) -> Option<&Run> {
        self.baseline.iter().find(|r| r.live())
    }

    /// Real time `t` on the session's clock (pauses cut out).
    pub fn now(&self, t: u64) -> u64 {
        self.clock.at(t)
    }

    /// A report with its times moved onto the session's clock.
    pub(super) fn on_clock(&self, report: Report) -> Report {
        match report {
            Report::Record { run, stream, record } => {
                Report::Record { run, stream, record: record.map_times(|t| self.clock.at(t)) }
            }
            other => other,
        }
    }

    /// The runs to start now: the next baseline run, alone on
    /// the machine; then every model (race) or the next one.
    pub(super) fn next_to_start(&mut self) -> Vec<&mut Run> {
        if self.paused() || self.runs().any(Run::live) {
            return Vec::new();
        }
        if let Some(lone) = self.baseline.iter_mut().find(|r| r.id.is_none()) {
            return vec![lone];
        }
        let waiting = self.models.iter_mut().filter(|r| r.id.is_none());
        match self.mode {
            Mode::Race => waiting.collect(),
            Mode::OneAtATime => waiting.take(1).collect(),
        }
    }
}

/// The run of each model under `e`.
pub fn model_specs(e: &Experiment, models: &[Model]) -> Vec<RunSpec> {
    models.iter().map(|&model| RunSpec { experiment: e.clone(), model }).collect()
}
