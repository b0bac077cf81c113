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
//!  lesson.rs    the lessons: a question and the settings that answer it
//!  playback.rs  replaying a recording: the viewer's keys
//! ```

pub(crate) mod bindings;
pub(crate) mod clock;
pub mod lesson;
mod msg;
pub mod playback;
mod run;
mod session;
mod settings;
#[cfg(test)]
mod tests;

use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind};

pub use crate::app::bindings::Action;
pub use crate::app::msg::{Effect, Msg};
pub use crate::app::playback::Playback;
pub use crate::app::run::{OsView, Phase, Run, Switches};
pub use crate::app::session::{Compared, Session, model_specs};
pub use crate::app::settings::{
    CPYTHON_ZOOM, DEFAULT_PACE, DEFAULT_ZOOM, HelpLayout, HelpPage, Mode, PACE_STEPS, SWITCH_STEPS, View,
    WORKER_STEPS, Zoom, step, zoom_for,
};
use crate::experiment::baseline::{Baseline, BaselineTime};
use crate::experiment::spec::{Experiment, MAX_PACE, Model, RunSpec, Workload};
use crate::experiment::supervisor::{Report, RunId};
use crate::experiment::tally::{Lanes, Tally};
use crate::experiment::track::LEVELS_NS;
use crate::monitor::Sample;
use crate::protocol::Runtime;

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
    /// Some interpreter here runs subinterpreters with a GIL each (3.12+).
    pub cpython_subinterpreters: bool,
    /// Some interpreter here is a free-threaded build.
    pub cpython_free_threaded: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            color: true,
            runtimes: vec![Runtime::Sim],
            cpython_unavailable: None,
            cores: 1,
            cpython_subinterpreters: false,
            cpython_free_threaded: false,
        }
    }
}

pub struct App {
    /// The settings the next run uses.
    pub experiment: Experiment,
    /// The models the next run compares, in the order the screen shows them.
    pub models: Vec<Model>,
    pub mode: Mode,
    /// Which part of the runs the timeline shows.
    pub view: View,
    /// How many cells a lane had in the last frame drawn (the main loop
    /// says), so zoom and pan keys know what the screen holds.
    pub lane_cells: usize,
    pub options: Options,
    pub session: Option<Session>,
    /// Lone-worker times: this session's once timed (each session times its
    /// own, since the machine's speed drifts from minute to minute), else
    /// the latest, shown on the idle screen as "measured before".
    pub baseline: Baseline,
    /// When sessions time their lone workers.
    pub baseline_timing: BaselineTiming,
    pub sample: Option<Sample>,
    /// The time of the latest message.
    pub now: u64,
    /// The help overlay's page, while it is open.
    pub help: Option<HelpPage>,
    /// Whether the last frame had room for both help pages at once.
    pub help_layout: HelpLayout,
    /// A one-line message for the user, cleared by the next key.
    pub notice: Option<String>,
    pub quitting: bool,
    /// The user chose the mode with `m`; until then it follows the cores.
    mode_chosen: bool,
    /// What the panels show under their timelines.
    pub below: Below,
    /// Earlier sessions' results, newest first, shown under the current one.
    pub history: Vec<Earlier>,
    /// Whether the interpreter was asked whether it can run, and why.
    asking: Asking,
    /// Whether gilscope is probing the other interpreters here.
    discovery: Discovery,
    /// The lesson whose question is on screen (an index into `lesson::LESSONS`).
    pub lesson: Option<usize>,
    /// Set while the app replays a recording.
    pub playback: Option<Playback>,
    next_run: RunId,
}

/// When a session times its lone workers. gilscope's own way is
/// `Bracketed`; a replay follows the recording's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaselineTiming {
    /// Before the models and again after them.
    Bracketed,
    /// Before the models only.
    BeforeOnly,
    /// The next session reuses the times it finds (a recording made by a
    /// gilscope that reused them); before the models only from then on.
    ReuseOnce,
}

/// Whether the interpreter was asked whether it can run, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asking {
    Not,
    /// `c` asked: its answer switches to the real interpreter.
    ToSwitch,
    /// The live view opens on the real interpreter once it answers that it
    /// can run (no --runtime was given); `then_start`: space was pressed
    /// meanwhile, and the run starts with the answer.
    ToOpen {
        then_start: bool,
    },
}

/// gilscope's look for other interpreters (for subinterpreters and
/// free-threading): a few seconds of starting every Python found, which
/// would slow a run timed meanwhile on a small machine without counting as
/// outside load, so a run asked for meanwhile waits for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Discovery {
    Idle,
    /// `then_start`: space was pressed meanwhile.
    Running {
        then_start: bool,
    },
}

/// What the panels show under their timelines (key `b`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Below {
    /// Each model's figures.
    Figures,
    /// The article's claims, measured: one row per model.
    Scoreboard,
}

impl Below {
    fn other(self) -> Self {
        match self {
            Below::Figures => Below::Scoreboard,
            Below::Scoreboard => Below::Figures,
        }
    }
}

/// A finished session, remembered after the settings moved on.
#[derive(Clone, Debug, PartialEq)]
pub struct Earlier {
    /// What was run, as the header said it.
    pub experiment: String,
    pub mode: Mode,
    /// Each model's label and speedup (None where it failed or had no baseline).
    pub speedups: Vec<(String, Option<f64>)>,
}

/// How many earlier sessions stay on screen.
pub const HISTORY: usize = 3;

/// The fair mode for a machine: each model alone when the models' workers
/// together outnumber the cores (a race would make them share), else a race.
pub fn fair_mode(workers: u32, models: usize, cores: u32) -> Mode {
    if u64::from(workers) * models as u64 > u64::from(cores) { Mode::OneAtATime } else { Mode::Race }
}

impl App {
    pub fn new(experiment: Experiment, options: Options, now: u64) -> Self {
        let mode = fair_mode(experiment.workers, DEFAULT_MODELS.len(), options.cores);
        App {
            experiment,
            models: DEFAULT_MODELS.to_vec(),
            mode,
            view: View::default(),
            lane_cells: 38,
            options,
            session: None,
            baseline: Baseline::default(),
            baseline_timing: BaselineTiming::Bracketed,
            sample: None,
            now,
            help: None,
            help_layout: HelpLayout::Paged,
            notice: None,
            quitting: false,
            mode_chosen: false,
            below: Below::Figures,
            history: Vec::new(),
            asking: Asking::Not,
            discovery: Discovery::Idle,
            lesson: None,
            playback: None,
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

    /// The runs of the next session: each model under the runtime chosen, or
    /// simulated where no interpreter here can run it (labelled so).
    pub fn specs(&self) -> Vec<RunSpec> {
        model_specs(&self.experiment, &self.models)
            .into_iter()
            .map(|mut spec| {
                let cpython = spec.experiment.runtime == Runtime::Cpython;
                let missing = match spec.model {
                    Model::FreeThreaded => !self.options.cpython_free_threaded,
                    Model::Subinterpreters { .. } => !self.options.cpython_subinterpreters,
                    _ => false,
                };
                if cpython && missing {
                    spec.experiment.runtime = Runtime::Sim;
                }
                spec
            })
            .collect()
    }

    /// Whether `model` (whatever its GIL sharing) is in the comparison.
    pub fn has_model(&self, model: Model) -> bool {
        self.models.iter().any(|m| std::mem::discriminant(m) == std::mem::discriminant(&model))
    }

    /// Takes model `n` of the named four in or out, keeping their order.
    fn toggle_model(&mut self, n: usize, effects: &mut Vec<Effect>) {
        let Some(&model) = crate::experiment::model::NAMED.get(n) else { return };
        let before = self.settings();
        let shared_gil = self.models.contains(&Model::Subinterpreters { shared_gil: true });
        let model = match model {
            Model::Subinterpreters { .. } => Model::Subinterpreters { shared_gil },
            other => other,
        };
        if self.has_model(model) {
            self.models.retain(|m| std::mem::discriminant(m) != std::mem::discriminant(&model));
        } else {
            self.models.push(model);
            let order = |m: &Model| {
                crate::experiment::model::NAMED
                    .iter()
                    .position(|n| std::mem::discriminant(n) == std::mem::discriminant(m))
            };
            self.models.sort_by_key(order);
        }
        self.changed_from(&before, effects);
    }

    /// Chooses how the models share the machine, as `m` does: from then on
    /// the mode no longer follows the cores.
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
        self.mode_chosen = true;
    }

    /// The zoom a new session opens at: the runtime's own.
    fn default_zoom(&self) -> Zoom {
        zoom_for(&self.experiment)
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
        let cell = self.shown_cell().map_or(SLOWEST, Duration::from_nanos);
        cell.clamp(FASTEST, SLOWEST)
    }

    /// The timeline's scale now, once some model has started: a track
    /// level and how many of its bins make a cell.
    pub fn shown_scale(&self) -> Option<(usize, usize)> {
        let session = self.session.as_ref().filter(|s| s.models.iter().any(|r| r.tally.is_some()))?;
        Some(session.scale_for(self.view.zoom, session.now(self.now), self.lane_cells))
    }

    /// Nanoseconds a cell stands for now.
    pub fn shown_cell(&self) -> Option<u64> {
        self.shown_scale().map(|(level, bins)| LEVELS_NS[level] * bins as u64)
    }

    /// The longest panel's time so far, and the time one screen of lanes
    /// covers at the scale shown.
    fn span_and_width(&self) -> Option<(u64, u64)> {
        let session = self.session.as_ref()?;
        let span = session.longest_span(session.now(self.now));
        Some((span, self.shown_cell()? * self.lane_cells as u64))
    }

    /// What zooming in (`finer`) or out would show, if it shows anything
    /// new: the levels in order, then the whole run, and no further.
    pub fn zoom_step(&self, finer: bool) -> Option<Zoom> {
        let session = self.session.as_ref()?;
        let shown = self.shown_cell()?;
        let whole =
            session.longest_span(session.now(self.now)).max(1).div_ceil(self.lane_cells.max(1) as u64);
        let kept = |l: &usize| session.keeps_level(*l);
        if finer {
            let level = (0..LEVELS_NS.len()).rev().filter(kept).find(|&l| LEVELS_NS[l] < shown)?;
            Some(Zoom::Level(level))
        } else if self.view.zoom == Zoom::WholeRun {
            None
        } else {
            let next = (0..LEVELS_NS.len()).filter(kept).find(|&l| LEVELS_NS[l] > shown);
            match next {
                Some(level) if LEVELS_NS[level] < whole => Some(Zoom::Level(level)),
                // Out as far as the run fits, and no further: the whole run.
                _ => (shown < whole).then_some(Zoom::WholeRun),
            }
        }
    }

    /// Where panning back (`back`) or forth would start the window, if it moves.
    pub fn pan_step(&self, back: bool) -> Option<Option<u64>> {
        let (span, width) = self.span_and_width()?;
        let latest = span.saturating_sub(width);
        let at = self.view.pan.unwrap_or(latest).min(latest);
        if back {
            (at > 0).then(|| Some(at.saturating_sub(width / 2)))
        } else {
            let next = at + width / 2;
            self.view.pan.is_some().then_some(if next >= latest { None } else { Some(next) })
        }
    }

    /// Where the real `CPython`'s lanes come from, the weakest of the runs
    /// so far (inferred until a run said otherwise); None under the
    /// simulation, whose lanes are its lock's own records.
    pub fn lanes_source(&self) -> Option<Lanes> {
        if self.experiment.runtime != Runtime::Cpython {
            return None;
        }
        let reported = self
            .session
            .iter()
            .flat_map(session::Session::runs)
            .filter_map(|r| r.tally.as_ref()?.lanes())
            .min_by_key(Lanes::rank);
        Some(reported.unwrap_or(Lanes::Inferred { resolution_ns: None, why: None }))
    }

    pub fn update(&mut self, now: u64, msg: Msg) -> Vec<Effect> {
        self.now = self.now.max(now);
        let mut effects = Vec::new();
        match msg {
            Msg::Key(key) => self.key(key, &mut effects),
            Msg::Report(report) => self.report(report, &mut effects),
            Msg::Sample(sample) => {
                // Paused, the figures stay as they were when the workers stopped.
                if let Some(session) = self.session.as_mut().filter(|s| !s.paused()) {
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
            Msg::Viewport { lane_cells, help } => {
                self.lane_cells = lane_cells.max(1);
                self.help_layout = help;
            }
            Msg::Interpreters { subinterpreters, free_threaded } => {
                self.options.cpython_subinterpreters = subinterpreters;
                self.options.cpython_free_threaded = free_threaded;
                if std::mem::replace(&mut self.discovery, Discovery::Idle)
                    == (Discovery::Running { then_start: true })
                {
                    self.notice = None;
                    self.start(&mut effects);
                }
            }
            Msg::Terminate => self.quit(&mut effects),
            Msg::Viewer(key) => self.viewer_key(key, &mut effects),
            Msg::Saved(outcome) => {
                self.notice = Some(match outcome {
                    Ok(path) => format!("saved to {path}: `gilscope replay` shows it again"),
                    Err(why) => format!("not saved: {why}"),
                });
            }
        }
        effects
    }

    fn key(&mut self, key: KeyEvent, effects: &mut Vec<Effect>) {
        if key.kind != KeyEventKind::Press {
            return;
        }
        self.notice = None;
        // Esc closes the help before it quits anything.
        if self.help.is_some() && key.code == KeyCode::Esc {
            self.help = None;
            return;
        }
        let Some(action) = bindings::action(&key).filter(|a| bindings::enabled(self, *a)) else { return };
        // Reading the help changes nothing: only the help and quit keys act
        // (a replay's recorded keys act as they did, whoever reads the help).
        if self.help.is_some() && self.playback.is_none() && !matches!(action, Action::Help | Action::Quit) {
            self.notice = Some("the help is open: ? or Esc closes it".to_owned());
            return;
        }
        self.act(action, effects);
    }

    fn act(&mut self, action: Action, effects: &mut Vec<Effect>) {
        let e = &self.experiment;
        match action {
            Action::Quit => self.quit(effects),
            // Keys, then what the figures mean, then closed.
            Action::Help => {
                self.help = match self.help {
                    None => Some(HelpPage::Keys),
                    // Both pages were on screen already.
                    Some(HelpPage::Keys) if self.help_layout == HelpLayout::Whole => None,
                    Some(HelpPage::Keys) => Some(HelpPage::Figures),
                    Some(HelpPage::Figures) => None,
                }
            }
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
            Action::ToggleModel(n) => self.toggle_model(n, effects),
            Action::SubinterpreterGil => {
                let before = self.settings();
                for model in &mut self.models {
                    if let Model::Subinterpreters { shared_gil } = model {
                        *shared_gil = !*shared_gil;
                    }
                }
                self.changed_from(&before, effects);
            }
            Action::StartMethod => {
                let next = self.experiment.start_method.next();
                self.change(effects, |e| e.start_method = next);
            }
            Action::Scoreboard => self.below = self.below.other(),
            Action::Mode => {
                let before = self.settings();
                self.mode = match self.mode {
                    Mode::Race => Mode::OneAtATime,
                    Mode::OneAtATime => Mode::Race,
                };
                self.mode_chosen = true;
                self.changed_from(&before, effects);
            }
            Action::Slower | Action::Faster => {
                if let Some(next) = step(&PACE_STEPS, e.pace, action == Action::Slower) {
                    self.change(effects, |e| e.pace = next.min(MAX_PACE));
                }
            }
            Action::ZoomIn | Action::ZoomOut => {
                if let Some(zoom) = self.zoom_step(action == Action::ZoomIn) {
                    self.view = View { zoom, touched: true, ..self.view };
                }
            }
            Action::PanBack | Action::PanForth => {
                if let Some(pan) = self.pan_step(action == Action::PanBack) {
                    self.view = View { pan, touched: true, ..self.view };
                }
            }
            Action::PanStart => self.view = View { pan: Some(0), touched: true, ..self.view },
            Action::PanLatest => self.view = View { pan: None, ..self.view },
            Action::Runtime => self.next_runtime(effects),
            Action::NextLesson | Action::PreviousLesson => {
                if let Some(index) = self.lesson_step(action == Action::NextLesson) {
                    self.open_lesson(index, effects);
                }
            }
            Action::Save => effects.push(Effect::Save),
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
                None if self.asking == Asking::Not => {
                    self.asking = Asking::ToSwitch;
                    self.notice = Some("asking the Python interpreter whether it can run…".to_owned());
                    effects.push(Effect::AskPython);
                }
                None => {}
            }
            return;
        }
        let at = runtimes.iter().position(|r| *r == self.experiment.runtime).unwrap_or(0);
        let next = runtimes[(at + 1) % runtimes.len()];
        let zoom = zoom_for(&Experiment { runtime: next, ..self.experiment.clone() });
        self.view = View { zoom, ..View::default() };
        self.change(effects, |e| e.runtime = next);
    }

    /// The live view opens on the real interpreter when it can run: it is
    /// being asked (the caller asks it), and its answer switches the
    /// runtime; meanwhile the simulation is on screen and space waits.
    pub fn open_on_real(&mut self) {
        self.asking = Asking::ToOpen { then_start: false };
        self.notice = Some("asking the Python interpreter whether it can run…".to_owned());
    }

    /// The caller started looking for the other interpreters here; its
    /// [`Msg::Interpreters`] ends the look, and runs wait for it.
    pub fn looking_for_interpreters(&mut self) {
        self.discovery = Discovery::Running { then_start: false };
    }

    fn python_answered(&mut self, answer: Result<(), String>, effects: &mut Vec<Effect>) {
        let asked = std::mem::replace(&mut self.asking, Asking::Not);
        let opening = matches!(asked, Asking::ToOpen { .. });
        match answer {
            Ok(()) => {
                self.notice = None;
                if !self.options.runtimes.contains(&Runtime::Cpython) {
                    self.options.runtimes.push(Runtime::Cpython);
                }
                if !opening || self.experiment.runtime != Runtime::Cpython {
                    self.next_runtime(effects);
                }
            }
            Err(why) if opening => {
                self.notice = Some(format!("simulated CPython: the real one cannot run here ({why})"));
                self.options.cpython_unavailable = Some(why);
            }
            Err(why) => {
                self.notice = Some(format!("no real CPython: {why}"));
                self.options.cpython_unavailable = Some(why);
            }
        }
        if asked == (Asking::ToOpen { then_start: true }) {
            self.space(effects);
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
                session.narration.thaw();
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
                // The sentence stays with the picture, so a teacher can point.
                session.narration.freeze();
                for run in session.runs_mut().filter(|r| r.live() && r.tally.is_some()) {
                    if let Some(id) = run.id {
                        effects.push(Effect::Pause(id));
                    }
                }
            }
            // Opening on the real interpreter: the run waits for its answer.
            _ if matches!(self.asking, Asking::ToOpen { .. }) => {
                self.asking = Asking::ToOpen { then_start: true };
                self.notice =
                    Some("starting once the Python interpreter says whether it can run…".to_owned());
            }
            _ if matches!(self.discovery, Discovery::Running { .. }) => {
                self.discovery = Discovery::Running { then_start: true };
                self.notice = Some(
                    "starting once gilscope has looked for other Pythons here (their start-up would slow this run)…"
                        .to_owned(),
                );
            }
            _ => self.start(effects),
        }
    }

    fn reset(&mut self, effects: &mut Vec<Effect>) {
        self.stop_all(effects);
        if let Some(session) = self.session.take() {
            self.remember(&session);
        }
    }

    /// Keeps a finished session's speedups on screen once it is replaced.
    fn remember(&mut self, session: &Session) {
        if session.active() {
            return;
        }
        let compared = session.compare(&self.baseline, self.cores());
        if compared.results.iter().all(Option::is_none) {
            return;
        }
        let speedups = session
            .models
            .iter()
            .zip(&compared.results)
            .map(|(run, r)| (run.spec.label(), r.as_ref().and_then(|r| r.speedup)))
            .collect();
        self.history
            .insert(0, Earlier { experiment: session.experiment.describe(), mode: session.mode, speedups });
        self.history.truncate(HISTORY);
    }

    /// The machine's logical cores, as the OS sampler last saw them.
    pub fn cores(&self) -> u32 {
        self.sample
            .as_ref()
            .map_or(self.options.cores, |s| u32::try_from(s.cores.len()).unwrap_or(u32::MAX))
            .max(1)
    }

    /// Applies a settings change. A change that changes nothing does
    /// nothing. A run going on restarts with the new settings (old processes
    /// killed, new run ids); a paused one is stopped and the next space
    /// starts afresh; a finished one moves to the history, since its figures
    /// no longer match the header.
    fn change(&mut self, effects: &mut Vec<Effect>, edit: impl FnOnce(&mut Experiment)) {
        let before = self.settings();
        edit(&mut self.experiment);
        self.changed_from(&before, effects);
    }

    /// What a session is made of: a change to any of it is a new session.
    fn settings(&self) -> (Experiment, Mode, Vec<Model>) {
        (self.experiment.clone(), self.mode, self.models.clone())
    }

    /// The settings moved on from `before`: restart, stop or keep, as `change` says.
    fn changed_from(&mut self, before: &(Experiment, Mode, Vec<Model>), effects: &mut Vec<Effect>) {
        if !self.mode_chosen {
            self.mode = fair_mode(self.experiment.workers, self.models.len(), self.cores());
        }
        if self.settings() == *before {
            return;
        }
        let restart = self.busy() && !self.paused();
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
        // A finished session's figures stay on screen among the earlier ones.
        if let Some(done) = self.session.take() {
            self.remember(&done);
        }
        // Every session times its own baseline: a lone worker timed minutes
        // ago, on a machine whose speed drifts, would skew every speedup.
        let reuse = self.baseline_timing == BaselineTiming::ReuseOnce;
        if reuse {
            self.baseline_timing = BaselineTiming::BeforeOnly;
        } else {
            self.baseline.forget(&self.experiment);
        }
        self.session = Some(Session::new(
            self.experiment.clone(),
            self.mode,
            self.specs(),
            &self.baseline,
            self.baseline_timing == BaselineTiming::Bracketed,
            self.now,
        ));
        self.view = View {
            zoom: if self.view.touched { self.view.zoom } else { self.default_zoom() },
            ..View::default()
        };
        self.advance(effects);
    }

    /// Starts whatever comes next, or says the session is done.
    fn advance(&mut self, effects: &mut Vec<Effect>) {
        let Some(session) = &mut self.session else { return };
        if !session.active() {
            effects.push(Effect::Watch(Vec::new()));
            // Finished: the whole run in the window, unless the user chose a view.
            if !self.view.touched {
                self.view = View { zoom: Zoom::WholeRun, pan: None, touched: false };
            }
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
        let origin = session.origin;
        let Some(run) = session.run_mut(id) else {
            // Started after a reset: not ours any more.
            effects.push(Effect::Kill(id));
            return;
        };
        run.tally = Some(Tally::with_origin(run.spec.clone(), requested_at, pids.len(), origin));
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
        if let Some(model) = session.models.iter().position(|r| r.id == Some(id) && !r.over) {
            session.narration.hear(model, &report);
        }
        // Timed again after the models: the session keeps it, not the store.
        let is_baseline = session.is_baseline(id) && !session.is_after(id);
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
                let io_latency_ms = tally.result().and_then(|r| r.io_latency_ms).map(|l| l.mean);
                let outside = run.outside_load();
                self.baseline.record_timed(BaselineTime { spec, wall_s, outside, io_latency_ms });
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
