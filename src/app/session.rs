//! One press of space: the baseline runs still needed, one by one,
//! then the models, all at once (race) or one after the other.

use crate::app::clock::SessionClock;
use crate::app::run::Run;
use crate::app::settings::{Mode, Zoom};
use crate::experiment::baseline::Baseline;
use crate::experiment::comparison::{Rounds, summarize, verdict};
use crate::experiment::narration::Narrator;
use crate::experiment::spec::{Experiment, Model, RunSpec};
use crate::experiment::supervisor::{Report, RunId};
use crate::experiment::tally::{RunResult, Tally};
use crate::experiment::track::{LEVELS_NS, fit};

#[derive(Clone, Debug)]
pub struct Session {
    pub experiment: Experiment,
    pub mode: Mode,
    /// Its baseline runs (only those not timed yet: all of them, unless a
    /// replayed recording reused earlier ones).
    pub baseline: Vec<Run>,
    /// The same lone workers timed again once the models are over: the
    /// speedup divides by the mean of both timings and spans both, so that
    /// the machine's drift while the models ran shows instead of skewing.
    pub after: Vec<Run>,
    /// One run per model, in the order the screen shows them.
    pub models: Vec<Run>,
    pub clock: SessionClock,
    /// When space was pressed: cell 0 of every lane of the session.
    pub origin: u64,
    /// What the models just did, in words (fed the same reports as their tallies).
    pub narration: Narrator,
}

impl Session {
    pub fn new(
        experiment: Experiment,
        mode: Mode,
        specs: Vec<RunSpec>,
        measured: &Baseline,
        bracket: bool,
        now: u64,
    ) -> Self {
        let baseline: Vec<Run> = measured.missing(&experiment).into_iter().map(Run::new).collect();
        // Only CPU-bound lone workers: an I/O worker's time is its waits,
        // which the machine's speed does not move.
        let after = if bracket {
            baseline
                .iter()
                .filter(|r| r.spec.experiment.workload == crate::experiment::spec::Workload::Cpu)
                .map(|r| Run::new(r.spec.clone()))
                .collect()
        } else {
            Vec::new()
        };
        let narration = Narrator::new(&specs);
        let models = specs.into_iter().map(Run::new).collect();
        Session {
            experiment,
            mode,
            baseline,
            after,
            models,
            clock: SessionClock::default(),
            origin: now,
            narration,
        }
    }

    pub fn runs(&self) -> impl Iterator<Item = &Run> {
        self.baseline.iter().chain(self.models.iter()).chain(self.after.iter())
    }

    pub(super) fn runs_mut(&mut self) -> impl Iterator<Item = &mut Run> {
        self.baseline.iter_mut().chain(self.models.iter_mut()).chain(self.after.iter_mut())
    }

    /// The run `id`, while it still takes reports.
    pub(super) fn run_mut(&mut self, id: RunId) -> Option<&mut Run> {
        self.runs_mut().find(|r| r.id == Some(id) && !r.over)
    }

    /// Whether run `id` times a lone worker, before the models or after.
    pub fn is_baseline(&self, id: RunId) -> bool {
        self.baseline.iter().chain(&self.after).any(|r| r.id == Some(id))
    }

    /// Whether run `id` times a lone worker again, after the models.
    pub fn is_after(&self, id: RunId) -> bool {
        self.after.iter().any(|r| r.id == Some(id))
    }

    pub fn paused(&self) -> bool {
        self.clock.paused()
    }

    /// True while some run is starting or running.
    pub fn active(&self) -> bool {
        self.runs().any(|r| r.id.is_none() || r.live())
    }

    /// The baseline run being timed before the models, if one is.
    pub fn timing_baseline(&self) -> Option<&Run> {
        self.baseline.iter().find(|r| r.live())
    }

    /// The baseline run being timed again after the models, if one is.
    pub fn timing_again(&self) -> Option<&Run> {
        self.after.iter().find(|r| r.live())
    }

    /// Real time `t` on the session's clock (pauses cut out).
    pub fn now(&self, t: u64) -> u64 {
        self.clock.at(t)
    }

    /// Where panel `model`'s time starts and ends (session clock): in a race
    /// every panel starts where the first run did; one at a time, each at
    /// its own start. A run starts where its time does
    /// ([`Tally::time_starts_at`]: a real interpreter boots for a tenth of a
    /// second before that). None before its run started.
    pub fn extent(&self, model: usize, now: u64) -> Option<(u64, u64)> {
        let run = self.models.get(model)?;
        let tally = run.tally.as_ref()?;
        let started = self.models.iter().filter_map(|r| r.tally.as_ref());
        Some(match self.mode {
            Mode::Race => {
                let origin =
                    started.clone().map(Tally::time_starts_at).min().unwrap_or(tally.time_starts_at());
                let end =
                    if self.active() { now } else { started.map(|t| t.last_event).max().unwrap_or(now) };
                (origin, end.max(origin))
            }
            Mode::OneAtATime => {
                let end = if run.over { tally.last_event } else { now };
                (tally.time_starts_at(), end.max(tally.time_starts_at()))
            }
        })
    }

    /// The longest panel's time: what the whole-run zoom must fit.
    pub fn longest_span(&self, now: u64) -> u64 {
        (0..self.models.len())
            .filter_map(|m| self.extent(m, now))
            .map(|(from, to)| to.saturating_sub(from))
            .max()
            .unwrap_or(0)
    }

    /// What `zoom` shows in lanes `cells` wide at `now`: a track level and
    /// how many of its bins make a cell. A level asked for is shown if its
    /// lanes are still kept, else the next coarser kept; the whole run is
    /// cut into cells that fit its longest panel, with one to spare.
    pub fn scale_for(&self, zoom: Zoom, now: u64, cells: usize) -> (usize, usize) {
        let last = LEVELS_NS.len() - 1;
        let (wanted, bins) = match zoom {
            Zoom::Level(l) => (l.min(last), 1),
            // One cell spare: a run's time starts off its lanes' grid (a
            // real interpreter boots first), so it may straddle one more.
            Zoom::WholeRun => fit(self.longest_span(now), cells.saturating_sub(1).max(1)),
        };
        let level = (wanted..=last).find(|&l| self.keeps_level(l)).unwrap_or(last);
        // A coarser level kept instead: as many of its bins as make the same cell.
        let bins = (LEVELS_NS[wanted] * bins as u64).div_ceil(LEVELS_NS[level]).max(1) as usize;
        (level, bins)
    }

    /// Whether the lanes at `level` are still kept (not let go for memory).
    pub fn keeps_level(&self, level: usize) -> bool {
        self.models
            .iter()
            .filter_map(|r| r.tally.as_ref())
            .all(|t| t.workers.first().is_none_or(|w| w.track.has_level(level)))
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
        if self.models.iter().all(|r| r.id.is_some()) {
            // The models are over: the lone workers again, one by one.
            return self.after.iter_mut().find(|r| r.id.is_none()).into_iter().collect();
        }
        let waiting = self.models.iter_mut().filter(|r| r.id.is_none());
        match self.mode {
            Mode::Race => waiting.collect(),
            Mode::OneAtATime => waiting.take(1).collect(),
        }
    }

    /// The baseline with the lone workers timed after the models in place
    /// of `before`'s, summed over the workers: None without any timed again.
    fn after_s(&self, before: &Baseline) -> Option<f64> {
        if self.after.is_empty() {
            return None;
        }
        let mut again = before.clone();
        for run in &self.after {
            again.record(run.spec.clone(), run.result()?.wall_s);
        }
        again.total_s(&self.experiment)
    }
}

/// What a session's finished models say, compared with the baseline.
#[derive(Clone, Debug, Default)]
pub struct Compared {
    /// One per model, in order: None where the model failed or has not finished.
    pub results: Vec<Option<RunResult>>,
    pub verdict: Option<String>,
}

impl Session {
    /// The finished models as one round against the baseline, and what they
    /// say together.
    pub fn compare(&self, baseline: &Baseline, cores: u32) -> Compared {
        // Not before the lone workers were timed again: the figures would move.
        if self.after.iter().any(|r| !r.over) && self.models.iter().all(|r| r.over) {
            return Compared { results: vec![None; self.models.len()], verdict: None };
        }
        let round = baseline.round(&self.experiment).map(|round| {
            crate::experiment::comparison::BaselineRound { after_s: self.after_s(baseline), ..round }
        });
        let mut results = Vec::new();
        let (mut clean_results, mut clean_rounds) = (Vec::new(), Vec::new());
        for run in &self.models {
            let rounds =
                run.timed().map(|t| Rounds { timed: vec![t], baselines: round.into_iter().collect() });
            let result = rounds
                .as_ref()
                .and_then(|r| summarize(r, &run.spec.experiment, cores, run.spec.contends_for_a_gil()));
            if let (Some(result), Some(rounds)) = (&result, rounds) {
                clean_results.push(result.clone());
                clean_rounds.push(rounds);
            }
            results.push(result);
        }
        let verdict = verdict(&clean_results, &clean_rounds, &self.experiment);
        Compared { results, verdict }
    }
}

/// The run of each model under `e`.
pub fn model_specs(e: &Experiment, models: &[Model]) -> Vec<RunSpec> {
    models.iter().map(|&model| RunSpec { experiment: e.clone(), model }).collect()
}
