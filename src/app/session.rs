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
        now: u64,
    ) -> Self {
        let baseline = measured.missing(&experiment).into_iter().map(Run::new).collect();
        let narration = Narrator::new(&specs);
        let models = specs.into_iter().map(Run::new).collect();
        Session { experiment, mode, baseline, models, clock: SessionClock::default(), origin: now, narration }
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
    /// cut into cells that fit its longest panel.
    pub fn scale_for(&self, zoom: Zoom, now: u64, cells: usize) -> (usize, usize) {
        let last = LEVELS_NS.len() - 1;
        let (wanted, bins) = match zoom {
            Zoom::Level(l) => (l.min(last), 1),
            Zoom::WholeRun => fit(self.longest_span(now), cells),
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
        let waiting = self.models.iter_mut().filter(|r| r.id.is_none());
        match self.mode {
            Mode::Race => waiting.collect(),
            Mode::OneAtATime => waiting.take(1).collect(),
        }
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
        let round = baseline.round(&self.experiment);
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
