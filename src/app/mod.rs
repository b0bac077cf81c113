//! The live view's state, and `update`: every key press, worker report and
//! OS sample comes in as a [`Msg`]; out come new state and the [`Effect`]s
//! the main loop carries out (start a run, pause it, kill it…).
//!
//! Nothing here does I/O or reads a clock: the time arrives with each
//! message. That keeps every key binding a plain unit test and every screen
//! a snapshot of a state built from fixed messages (The Elm Architecture).
//!
//! ```text
//!  msg.rs       what comes in, what goes out
//!  bindings.rs  the keys: one table for dispatch, the bar and the help
//!  settings.rs  the steps the keys walk through, and the defaults
//!  session.rs   one press of space: the baseline, then the models
//!  run.rs       one supervised run: its tally, pids and OS readings
//!  clock.rs     the session's clock, pauses cut out
//! ```

pub(crate) mod bindings;
pub(crate) mod clock;
mod msg;
mod run;
mod session;
mod settings;
#[cfg(test)]
mod tests;

use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind};

pub use crate::app::bindings::Action;
pub use crate::app::msg::{Effect, Msg};
pub use crate::app::run::{OsView, Phase, Run, Switches};
pub use crate::app::session::{Session, model_specs};
pub use crate::app::settings::{
    CPYTHON_ZOOM, DEFAULT_PACE, DEFAULT_ZOOM, Mode, PACE_STEPS, SWITCH_STEPS, WORKER_STEPS, ZOOMS, Zoom, step,
};
use crate::experiment::baseline::Baseline;
use crate::experiment::spec::{Experiment, MAX_PACE, Model, Workload};
use crate::experiment::supervisor::{Report, RunId};
use crate::experiment::tally::Tally;
use crate::monitor::Sample;
use crate::protocol::{Runtime, Timeline};

/// The models the live view compares unless told otherwise: the article's
/// two, threading beside multiprocessing.
pub const DEFAULT_MODELS: [Model; 2] = [Model::Threads, Model::Processes];

/// How the app was started.
#[derive(Clone, Debug)]
pub struct Options {
    /// False when `NO_COLOR` is set.
    pub color: bool,
    /// Runtimes `c` cycles through; the first is the default.
    pub runtimes: Vec<Runtime>,
    /// Why the real `CPython` cannot be offered, when it cannot.
    pub cpython_unavailable: Option<String>,
    /// Logical cores, for the first screen before any sample arrives.
    pub cores: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { color: true, runtimes: vec![Runtime::Sim], cpython_unavailable: None, cores: 1 }
    }
}

pub struct App {
    /// The settings the next run uses.
    pub experiment: Experiment,
    /// The models the next run compares, in the order the screen shows them.
    pub models: Vec<Model>,
    pub mode: Mode,
    pub zoom: usize,
    pub options: Options,
    pub session: Option<Session>,
    /// Lone-worker times measured so far, reused while the settings match.
    pub baseline: Baseline,
    pub sample: Option<Sample>,
    /// The time of the latest message.
    pub now: u64,
    pub help: bool,
    /// A one-line message for the user, cleared by the next key.
    pub notice: Option<String>,
    pub quitting: bool,
    /// The interpreter was asked whether it can run, and has not answered yet.
    asking_python: bool,
    next_run: RunId,
}

impl App {
    pub fn new(experiment: Experiment, options: Options, now: u64) -> Self {
        App {
            experiment,
            models: DEFAULT_MODELS.to_vec(),
            mode: Mode::Race,
            zoom: DEFAULT_ZOOM,
            options,
            session: None,
            baseline: Baseline::default(),
            sample: None,
            now,
            help: false,
            notice: None,
            quitting: false,
            asking_python: false,
            next_run: 1,
        }
    }

    /// True while the screen changes by itself (a run going, not paused):
    /// the loop then ticks; otherwise it sleeps until something happens.
    pub fn animating(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.active() && !s.paused())
    }

    pub fn paused(&self) -> bool {
        self.session.as_ref().is_some_and(Session::paused)
    }

    /// Some run is starting, running or paused.
    pub fn busy(&self) -> bool {
        self.session.as_ref().is_some_and(Session::active)
    }

    /// The least time between two frames: 30 a second while the lanes
    /// scroll a cell that fast, fewer while they scroll slower (a cell of
    /// 250 ms moves 4 times a second; 10 frames keep the figures lively).
    pub fn frame_interval(&self) -> Duration {
        const FASTEST: Duration = Duration::from_millis(33);
        const SLOWEST: Duration = Duration::from_millis(100);
        match ZOOMS[self.zoom] {
            Zoom::Cell(cell) => cell.clamp(FASTEST, SLOWEST),
            Zoom::WholeRun => SLOWEST,
        }
    }

    /// For the legend: None when lanes are exact (the simulation); for the
    /// real `CPython`, the stamp interval its workers reported, once they did.
    pub fn inferred_resolution(&self) -> Option<Option<u64>> {
        if self.experiment.runtime != Runtime::Cpython {
            return None;
        }
        let reported =
            self.session.iter().flat_map(session::Session::runs).filter_map(|r| r.tally.as_ref()).find_map(
                |t| match t.timeline() {
                    Timeline::Inferred { resolution_ns } => Some(resolution_ns),
                    Timeline::Exact => None,
                },
            );
        Some(reported)
    }

    pub fn update(&mut self, now: u64, msg: Msg) -> Vec<Effect> {
        self.now = self.now.max(now);
        let mut effects = Vec::new();
        match msg {
            Msg::Key(key) => self.key(key, &mut effects),
            Msg::Report(report) => self.report(report, &mut effects),
            Msg::Sample(sample) => {
                if let Some(session) = &mut self.session {
                    for run in session.runs_mut().filter(|r| r.live()) {
                        run.observe(&sample);
                    }
                }
                self.sample = Some(sample);
            }
            Msg::Started { run, requested_at, pids } => self.started(run, requested_at, pids, &mut effects),
            Msg::StartFailed { run, why } => {
                if let Some(r) = self.session.as_mut().and_then(|s| s.run_mut(run)) {
                    r.start_error = Some(why);
                    r.over = true;
                }
                self.advance(&mut effects);
            }
            Msg::PythonAnswered(answer) => self.python_answered(answer, &mut effects),
            Msg::Tick => {}
            Msg::Terminate => self.quit(&mut effects),
        }
        effects
    }

    fn key(&mut self, key: KeyEvent, effects: &mut Vec<Effect>) {
        if key.kind != KeyEventKind::Press {
            return;
        }
        self.notice = None;
        // Esc closes the help before it quits anything.
        if self.help && key.code == KeyCode::Esc {
            self.help = false;
            return;
        }
        if let Some(action) = bindings::action(&key).filter(|a| bindings::enabled(self, *a)) {
            self.act(action, effects);
        }
    }

    fn act(&mut self, action: Action, effects: &mut Vec<Effect>) {
        let e = &self.experiment;
        match action {
            Action::Quit => self.quit(effects),
            Action::Help => self.help = !self.help,
            Action::RunPause => self.space(effects),
            Action::Reset => self.reset(effects),
            Action::FewerWorkers | Action::MoreWorkers => {
                if let Some(n) = step(&WORKER_STEPS, e.workers, action == Action::MoreWorkers) {
                    self.change(effects, |e| e.workers = n);
                }
            }
            Action::ShorterSwitch | Action::LongerSwitch => {
                if let Some(d) = step(&SWITCH_STEPS, e.switch_interval, action == Action::LongerSwitch) {
                    self.change(effects, |e| e.switch_interval = d);
                }
            }
            Action::Workload => {
                let next = match e.workload {
                    Workload::Cpu => Workload::Io,
                    Workload::Io => Workload::Mixed,
                    Workload::Mixed => Workload::Cpu,
                };
                self.change(effects, |e| e.workload = next);
            }
            Action::Gil => self.change(effects, |e| e.gil = !e.gil),
            Action::Mode => {
                self.mode = match self.mode {
                    Mode::Race => Mode::OneAtATime,
                    Mode::OneAtATime => Mode::Race,
                };
                self.change(effects, |_| {});
            }
            Action::Slower => {
                let next = step(&PACE_STEPS, e.pace, true).unwrap_or(PACE_STEPS[0]);
                self.change(effects, |e| e.pace = next.min(MAX_PACE));
            }
            Action::Faster => {
                let next = step(&PACE_STEPS, e.pace, false).unwrap_or(PACE_STEPS[PACE_STEPS.len() - 1]);
                self.change(effects, |e| e.pace = next.min(MAX_PACE));
            }
            Action::ZoomIn => self.zoom = self.zoom.saturating_sub(1),
            Action::ZoomOut => self.zoom = (self.zoom + 1).min(ZOOMS.len() - 1),
            Action::Runtime => self.next_runtime(effects),
        }
    }

    /// The runtime key: simulated `CPython` ↔ the real interpreter.
    fn next_runtime(&mut self, effects: &mut Vec<Effect>) {
        let runtimes = &self.options.runtimes;
        if runtimes.len() < 2 {
            match &self.options.cpython_unavailable {
                Some(why) => self.notice = Some(format!("no real CPython: {why}")),
                // Not asked yet: the interpreter is asked now, the switch
                // follows its answer.
                None if !self.asking_python => {
                    self.asking_python = true;
                    self.notice = Some("asking the Python interpreter whether it can run…".to_owned());
                    effects.push(Effect::AskPython);
                }
                None => {}
            }
            return;
        }
        let at = runtimes.iter().position(|r| *r == self.experiment.runtime).unwrap_or(0);
        let next = runtimes[(at + 1) % runtimes.len()];
        // The real interpreter cannot be paced: its runs last about a second,
        // so its lanes start zoomed in far enough to show them.
        self.zoom = if next == Runtime::Cpython { CPYTHON_ZOOM } else { DEFAULT_ZOOM };
        self.change(effects, |e| e.runtime = next);
    }

    fn python_answered(&mut self, answer: Result<(), String>, effects: &mut Vec<Effect>) {
        self.asking_python = false;
        match answer {
            Ok(()) => {
                self.notice = None;
                if !self.options.runtimes.contains(&Runtime::Cpython) {
                    self.options.runtimes.push(Runtime::Cpython);
                }
                self.next_runtime(effects);
            }
            Err(why) => {
                self.notice = Some(format!("no real CPython: {why}"));
                self.options.cpython_unavailable = Some(why);
            }
        }
    }

    fn quit(&mut self, effects: &mut Vec<Effect>) {
        self.stop_all(effects);
        self.quitting = true;
        effects.push(Effect::Quit);
    }

    fn space(&mut self, effects: &mut Vec<Effect>) {
        let now = self.now;
        match &mut self.session {
            Some(session) if session.active() && session.paused() => {
                session.clock.resume(now);
                for run in session.runs_mut().filter(|r| r.live() && r.tally.is_some()) {
                    if let Some(id) = run.id {
                        effects.push(Effect::Resume(id));
                    }
                }
                // A run may have ended just before the pause: go on from there.
                self.advance(effects);
            }
            Some(session) if session.active() => {
                session.clock.pause(now);
                for run in session.runs_mut().filter(|r| r.live() && r.tally.is_some()) {
                    if let Some(id) = run.id {
                        effects.push(Effect::Pause(id));
                    }
                }
            }
            _ => self.start(effects),
        }
    }

    fn reset(&mut self, effects: &mut Vec<Effect>) {
        self.stop_all(effects);
        self.session = None;
    }

    /// Applies a settings change. A run going on restarts with the new
    /// settings (old processes killed, new run ids); a finished one is
    /// cleared, since its figures no longer match the header.
    fn change(&mut self, effects: &mut Vec<Effect>, edit: impl FnOnce(&mut Experiment)) {
        edit(&mut self.experiment);
        let restart = self.busy();
        self.reset(effects);
        if restart {
            self.start(effects);
        }
    }

    fn stop_all(&mut self, effects: &mut Vec<Effect>) {
        if let Some(session) = &mut self.session {
            let mut any = false;
            for run in session.runs_mut() {
                if let (true, Some(id)) = (run.live(), run.id) {
                    effects.push(Effect::Kill(id));
                    run.over = true;
                    any = true;
                }
            }
            if any {
                effects.push(Effect::Watch(Vec::new()));
            }
        }
    }

    fn start(&mut self, effects: &mut Vec<Effect>) {
        self.session = Some(Session::new(self.experiment.clone(), self.mode, &self.models, &self.baseline));
        self.advance(effects);
    }

    /// Starts whatever comes next, or says the session is done.
    fn advance(&mut self, effects: &mut Vec<Effect>) {
        let Some(session) = &mut self.session else { return };
        if !session.active() {
            effects.push(Effect::Watch(Vec::new()));
            return;
        }
        for run in session.next_to_start() {
            let id = self.next_run;
            self.next_run += 1;
            run.id = Some(id);
            effects.push(Effect::Start { run: id, spec: run.spec.clone() });
        }
    }

    fn started(&mut self, id: RunId, requested_at: u64, pids: Vec<u32>, effects: &mut Vec<Effect>) {
        let Some(session) = &mut self.session else {
            effects.push(Effect::Kill(id));
            return;
        };
        let requested_at = session.now(requested_at);
        let Some(run) = session.run_mut(id) else {
            // Started after a reset: not ours any more.
            effects.push(Effect::Kill(id));
            return;
        };
        run.tally = Some(Tally::new(run.spec.clone(), requested_at, pids.len()));
        run.pids = pids;
        self.watch(effects);
    }

    fn watch(&self, effects: &mut Vec<Effect>) {
        let pids = self
            .session
            .iter()
            .flat_map(Session::runs)
            .filter(|r| r.live())
            .flat_map(|r| r.pids.iter().copied())
            .collect();
        effects.push(Effect::Watch(pids));
    }

    fn report(&mut self, report: Report, effects: &mut Vec<Effect>) {
        let id = report.run();
        let Some(session) = &mut self.session else { return };
        let report = session.on_clock(report);
        let is_baseline = session.is_baseline(id);
        // Reports of runs killed or over are late news: drop them.
        let Some(run) = session.run_mut(id) else { return };
        let new_pid = run.apply(report);
        let Some(tally) = &run.tally else { return };
        let over = tally.is_over();
        let timed = tally.result().map(|r| (run.spec.clone(), r.wall_s));
        run.over = over;
        if over {
            // Done or failed: whatever still runs of it goes (a model whose
            // worker died cannot finish with figures worth showing).
            effects.push(Effect::Kill(id));
            if let (true, Some((spec, wall_s))) = (is_baseline, timed) {
                self.baseline.record(spec, wall_s);
            }
        }
        if new_pid || over {
            self.watch(effects);
        }
        if over {
            self.advance(effects);
        }
    }
}
