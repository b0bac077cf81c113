//! The interactive view's state, and `update`: every key press, worker report
//! and OS sample comes in as a [`Msg`]; out come new state and the
//! [`Effect`]s the main loop carries out (start a run, pause it, kill it…).
//!
//! Nothing here does I/O or reads a clock: the time arrives with each
//! message. That keeps every key binding a plain unit test and every screen
//! a snapshot of a state built from fixed messages (The Elm Architecture).

use std::collections::BTreeMap;
use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::experiment::spec::{
    DEFAULT_SWITCH_INTERVAL, Experiment, MAX_PACE, MAX_WORKERS, Model, RunSpec, Workload,
};
use crate::experiment::supervisor::{Report, RunId};
use crate::experiment::tally::{RunResult, Tally};
use crate::monitor::Sample;
use crate::protocol::{Hello, Record, Runtime, Timeline};
use crate::sim::workload::Role;

/// How slowed down the demo runs by default: about 4 s for one worker of the
/// seed's 4,000,000 iterations, so a class can follow a run.
pub const DEFAULT_PACE: u32 = 15;

/// The steps of `[` and `]`, like `sys.setswitchinterval` values a teacher
/// would try (CPython's default is 5 ms).
pub const SWITCH_STEPS: [Duration; 12] = [
    Duration::from_micros(100),
    Duration::from_micros(500),
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_millis(1000),
];

/// The steps of `s`: how many times slower than CPython an iteration runs.
pub const PACE_STEPS: [u32; 9] = [1, 2, 5, 10, 15, 20, 30, 50, 100];

/// The steps of `-` and `+`: one at a time while it matters, then faster.
pub const WORKER_STEPS: [u32; 18] = [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256];

/// How much time one cell of a lane stands for: fixed, so the timeline
/// scrolls with the run, or the whole run squeezed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zoom {
    Cell(Duration),
    WholeRun,
}

/// From single 5 ms switches (1 ms a cell) to the whole run.
pub const ZOOMS: [Zoom; 12] = [
    Zoom::Cell(Duration::from_millis(1)),
    Zoom::Cell(Duration::from_millis(2)),
    Zoom::Cell(Duration::from_millis(5)),
    Zoom::Cell(Duration::from_millis(10)),
    Zoom::Cell(Duration::from_millis(20)),
    Zoom::Cell(Duration::from_millis(50)),
    Zoom::Cell(Duration::from_millis(100)),
    Zoom::Cell(Duration::from_millis(250)),
    Zoom::Cell(Duration::from_millis(500)),
    Zoom::Cell(Duration::from_secs(1)),
    Zoom::Cell(Duration::from_secs(2)),
    Zoom::WholeRun,
];
/// A quarter second a cell: a demo run fills a lane of an 80-column screen.
pub const DEFAULT_ZOOM: usize = 7;
/// 20 ms a cell: an unpaced CPython run of the seed's size fills a lane.
pub const CPYTHON_ZOOM: usize = 4;

/// How the two models share the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Both at once, side by side: a visible race on shared cores.
    Race,
    /// Threading, then multiprocessing: each has the cores to itself, so
    /// the timings are honest.
    OneAtATime,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Race => "race",
            Mode::OneAtATime => "one at a time",
        }
    }
}

/// Everything that can happen to the app.
#[derive(Clone, Debug)]
pub enum Msg {
    Key(KeyEvent),
    Report(Report),
    Sample(Sample),
    /// The loop started the processes of `run`.
    Started {
        run: RunId,
        requested_at: u64,
        pids: Vec<u32>,
    },
    /// The loop could not start `run`.
    StartFailed {
        run: RunId,
        why: String,
    },
    /// Time passed (the timeline scrolls).
    Tick,
    /// SIGTERM or SIGHUP.
    Terminate,
}

/// What the main loop must do for the app.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    Start {
        run: RunId,
        spec: RunSpec,
    },
    Pause(RunId),
    Resume(RunId),
    Kill(RunId),
    /// Sample these processes from now on (empty: none).
    Watch(Vec<u32>),
    Quit,
}

/// What the OS said about a run's processes, newest and most seen.
///
/// Processes and threads are counted in the worker processes only (those a
/// worker named in its `process` record): a CPython multiprocessing parent
/// runs no worker, so it is no worker process. CPU and memory are every
/// process's of the run, the parent's included: they are what the model costs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OsView {
    /// Readings of the latest sample that saw any of the worker processes.
    pub processes: u32,
    pub threads: u32,
    pub worker_threads: u32,
    /// Readings of the latest sample that saw any of the run's processes.
    /// None until a process was seen twice (a rate needs two readings).
    pub cpu_cores: Option<f32>,
    pub rss_bytes: u64,
    /// The most worker processes seen alive at once, kept after the run.
    pub peak_processes: u32,
    /// The most threads, and the most worker threads (named `worker-N`),
    /// seen in any one worker process.
    pub peak_threads_per_process: u32,
    pub peak_worker_threads_per_process: u32,
    /// Resident memory of each process of the run, largest seen.
    pub peak_rss_each: BTreeMap<u32, u64>,
}

impl OsView {
    /// Some worker process was seen alive.
    pub fn seen(&self) -> bool {
        self.peak_processes > 0
    }

    /// Some process of the run was seen alive (its memory is known).
    pub fn seen_any(&self) -> bool {
        !self.peak_rss_each.is_empty()
    }

    /// Threads per process as a student would count them: the worker
    /// threads where the OS names them (a process also has helper threads),
    /// else every thread.
    pub fn threads_per_process(&self) -> u32 {
        match self.peak_worker_threads_per_process {
            0 => self.peak_threads_per_process,
            n => n,
        }
    }
}

/// One supervised run: a lone baseline worker, or one model.
#[derive(Clone, Debug)]
pub struct Run {
    pub spec: RunSpec,
    /// Given when the app asks for the run to start.
    pub id: Option<RunId>,
    /// Present once the processes started.
    pub tally: Option<Tally>,
    /// Processes of the run: those the supervisor started, then any others
    /// the workers named.
    pub pids: Vec<u32>,
    /// Why the run could not start.
    pub start_error: Option<String>,
    /// No more reports will be taken: finished, failed, or stopped.
    pub over: bool,
    pub os: OsView,
    /// GIL hand-overs counted from the takes seen so far, in streams whose
    /// takes are the lock's own (GIL on, exact timeline); the processes' own
    /// count replaces it once they end.
    pub handovers: u64,
    last_taker: BTreeMap<usize, u32>,
    /// Each stream's header: the workers it speaks for, and how it knows.
    streams: BTreeMap<usize, Hello>,
    /// Workers whose own process died (not stopped with the rest of a failed model).
    pub died: Vec<u32>,
}

/// A run's GIL hand-overs, as far as they can be told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switches {
    /// The threads run without a GIL: there is nothing to hand over.
    NoGil,
    /// Counted from the lock's own takes as they come, then the processes'
    /// own count once they all ended.
    Counted(u64),
    /// Lanes inferred from progress stamps: their takes come in batches per
    /// worker, so only the processes' own count means anything, and only
    /// once they all ended (None before).
    Inferred(Option<u64>),
}

/// Where a run stands, for the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    NotStarted,
    Starting,
    Running,
    Finished,
    Failed,
}

impl Run {
    pub fn new(spec: RunSpec) -> Self {
        Run {
            spec,
            id: None,
            tally: None,
            pids: Vec::new(),
            start_error: None,
            over: false,
            os: OsView::default(),
            handovers: 0,
            last_taker: BTreeMap::new(),
            streams: BTreeMap::new(),
            died: Vec::new(),
        }
    }

    pub fn phase(&self) -> Phase {
        match (&self.id, &self.tally) {
            _ if self.start_error.is_some() => Phase::Failed,
            (None, _) => Phase::NotStarted,
            (Some(_), None) if self.over => Phase::Failed,
            (Some(_), None) => Phase::Starting,
            (Some(_), Some(t)) if t.failure.is_some() => Phase::Failed,
            (Some(_), Some(_)) if self.over => Phase::Finished,
            (Some(_), Some(_)) => Phase::Running,
        }
    }

    pub fn live(&self) -> bool {
        self.id.is_some() && !self.over
    }

    /// Why the run failed, in a sentence.
    pub fn failure(&self) -> Option<&str> {
        self.start_error.as_deref().or_else(|| self.tally.as_ref()?.failure.as_deref())
    }

    pub fn result(&self) -> Option<RunResult> {
        self.tally.as_ref()?.result()
    }

    /// GIL hand-overs, as far as they can be told so far.
    pub fn switches(&self) -> Switches {
        let gil_off = (!self.spec.experiment.gil && self.spec.model != Model::Processes)
            || self.streams.values().any(|h| !h.gil);
        if gil_off {
            return Switches::NoGil;
        }
        let total = self.tally.as_ref().filter(|t| t.succeeded()).map(Tally::switches);
        // A GIL with one worker has no one to hand over to, whatever the timeline.
        let e = &self.spec.experiment;
        let one_per_gil = self.spec.model.processes(e.workers) == e.workers;
        let inferred = self.streams.values().any(|h| h.timeline != Timeline::Exact);
        if inferred && !one_per_gil {
            Switches::Inferred(total)
        } else {
            Switches::Counted(total.unwrap_or(self.handovers))
        }
    }

    /// Keeps what the tally does not: which workers a stream runs, so a
    /// process that dies can be told from its siblings stopped after it.
    fn note_report(&mut self, report: &Report) -> bool {
        match report {
            Report::Hello { stream, hello, .. } => {
                self.streams.insert(*stream, hello.clone());
                false
            }
            Report::Record { stream, record, .. } => self.note(*stream, record),
            Report::Ended { stream, outcome: Err(_), .. } => {
                let workers = self.tally.as_ref().map_or(0, |t| t.workers.len() as u32);
                let range = match self.streams.get(stream) {
                    Some(h) => h.first_worker..h.first_worker + h.threads,
                    None => 0..workers,
                };
                self.died.extend(range);
                false
            }
            Report::Ended { .. } => false,
        }
    }

    fn note(&mut self, stream: usize, record: &Record) -> bool {
        match *record {
            // Only the lock's own takes, in the order it gave them out, are
            // hand-overs: an inferred stream comes in batches per worker, and
            // without a GIL every take is a thread starting to run.
            Record::Take { worker, .. }
                if self.streams.get(&stream).is_some_and(|h| h.gil && h.timeline == Timeline::Exact) =>
            {
                if let Some(previous) = self.last_taker.insert(stream, worker)
                    && previous != worker
                {
                    self.handovers += 1;
                }
                false
            }
            Record::Process { pid, .. } if !self.pids.contains(&pid) => {
                self.pids.push(pid);
                true
            }
            _ => false,
        }
    }

    fn observe(&mut self, sample: &Sample) {
        let seen: Vec<_> = self.pids.iter().filter_map(|pid| sample.process(*pid)).collect();
        if seen.is_empty() {
            return;
        }
        let os = &mut self.os;
        os.cpu_cores = seen.iter().map(|p| p.cpu_cores).sum::<Option<f32>>();
        os.rss_bytes = seen.iter().map(|p| p.rss_bytes).sum();
        for p in &seen {
            let peak = os.peak_rss_each.entry(p.pid).or_default();
            *peak = (*peak).max(p.rss_bytes);
        }
        let mut worker_pids: Vec<u32> =
            self.tally.iter().flat_map(|t| &t.workers).filter_map(|w| w.pid).collect();
        worker_pids.sort_unstable();
        worker_pids.dedup();
        let workers: Vec<_> = seen.into_iter().filter(|p| worker_pids.contains(&p.pid)).collect();
        if workers.is_empty() {
            return;
        }
        os.processes = workers.len() as u32;
        os.threads = workers.iter().map(|p| p.threads).sum();
        os.worker_threads = workers.iter().map(|p| p.worker_threads).sum();
        os.peak_processes = os.peak_processes.max(os.processes);
        for p in &workers {
            os.peak_threads_per_process = os.peak_threads_per_process.max(p.threads);
            os.peak_worker_threads_per_process = os.peak_worker_threads_per_process.max(p.worker_threads);
        }
    }
}

/// A lone worker's measured wall time: the speedups' reference.
#[derive(Clone, Debug, PartialEq)]
pub struct LoneTime {
    pub spec: RunSpec,
    pub wall_s: f64,
}

/// One press of space: the baseline runs it still needs, then the models.
#[derive(Clone, Debug)]
pub struct Session {
    pub experiment: Experiment,
    pub mode: Mode,
    /// Lone-worker runs not measured before (empty when all were cached).
    pub baseline: Vec<Run>,
    /// Threading, then multiprocessing.
    pub models: [Run; 2],
    /// Paused stretches of the clock, the last maybe still going.
    pub pauses: Vec<(u64, Option<u64>)>,
}

impl Session {
    pub fn runs(&self) -> impl Iterator<Item = &Run> {
        self.baseline.iter().chain(self.models.iter())
    }

    fn runs_mut(&mut self) -> impl Iterator<Item = &mut Run> {
        self.baseline.iter_mut().chain(self.models.iter_mut())
    }

    pub fn paused(&self) -> bool {
        self.pauses.last().is_some_and(|(_, to)| to.is_none())
    }

    /// True while some run is starting or running.
    pub fn active(&self) -> bool {
        self.runs().any(|r| r.id.is_none() || r.live())
    }

    pub fn calibrating(&self) -> Option<&Run> {
        self.baseline.iter().find(|r| r.live())
    }

    /// `t` on the session's clock: real time with the paused stretches cut
    /// out, so the timeline shows no gap where the workers were stopped.
    pub fn unpaused(&self, t: u64) -> u64 {
        let paused: u64 =
            self.pauses.iter().map(|&(from, to)| t.min(to.unwrap_or(u64::MAX)).saturating_sub(from)).sum();
        t.saturating_sub(paused)
    }

    /// What the workers would take one after another, each alone: the sum of
    /// the lone times of their roles. None until all were measured.
    pub fn serial_s(&self, lone: &[LoneTime]) -> Option<f64> {
        let e = &self.experiment;
        (0..e.workers)
            .map(|w| {
                let spec = lone_spec(e, e.workload.role(w));
                lone.iter().find(|l| l.spec == spec).map(|l| l.wall_s)
            })
            .sum()
    }
}

/// One worker of `role` alone, one thread in one process, with every other
/// setting of `e`: what a speedup is measured against, timed from its thread's
/// start request as `gilscope run` times it. A lone thread never waits for
/// its GIL, so the switch interval cannot change its time: it is left at the
/// default, and trying intervals does not time the lone worker again.
pub fn lone_spec(e: &Experiment, role: Role) -> RunSpec {
    let workload = match role {
        Role::Cpu => Workload::Cpu,
        Role::Io => Workload::Io,
    };
    let experiment =
        Experiment { workers: 1, workload, gil: true, switch_interval: DEFAULT_SWITCH_INTERVAL, ..e.clone() };
    RunSpec { experiment, model: Model::Threads }
}

/// The two models of an experiment. Every process of multiprocessing has one
/// thread, so the GIL switch only concerns threading.
pub fn model_specs(e: &Experiment) -> [RunSpec; 2] {
    [
        RunSpec { experiment: e.clone(), model: Model::Threads },
        RunSpec { experiment: Experiment { gil: true, ..e.clone() }, model: Model::Processes },
    ]
}

/// How the app was started.
#[derive(Clone, Debug)]
pub struct Options {
    /// False when NO_COLOR is set.
    pub color: bool,
    /// Runtimes `c` cycles through; the first is the default.
    pub runtimes: Vec<Runtime>,
    /// Why the real CPython cannot be offered, when it cannot.
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
    pub mode: Mode,
    pub zoom: usize,
    pub options: Options,
    pub session: Option<Session>,
    /// Lone-worker times measured so far, reused while the settings match.
    pub lone: Vec<LoneTime>,
    pub sample: Option<Sample>,
    /// The time of the latest message.
    pub now: u64,
    pub help: bool,
    /// A one-line message for the user, cleared by the next key.
    pub notice: Option<String>,
    pub quitting: bool,
    next_run: RunId,
}

impl App {
    pub fn new(experiment: Experiment, options: Options, now: u64) -> Self {
        App {
            experiment,
            mode: Mode::Race,
            zoom: DEFAULT_ZOOM,
            options,
            session: None,
            lone: Vec::new(),
            sample: None,
            now,
            help: false,
            notice: None,
            quitting: false,
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
    /// real CPython, the stamp interval its workers reported, once they did.
    pub fn inferred_resolution(&self) -> Option<Option<u64>> {
        if self.experiment.runtime != Runtime::Cpython {
            return None;
        }
        let reported =
            self.session.iter().flat_map(|s| s.runs()).filter_map(|r| r.tally.as_ref()).find_map(|t| match t
                .timeline()
            {
                crate::protocol::Timeline::Inferred { resolution_ns } => Some(resolution_ns),
                crate::protocol::Timeline::Exact => None,
            });
        Some(reported)
    }

    /// Some run is starting, running or paused.
    pub fn busy(&self) -> bool {
        self.session.as_ref().is_some_and(Session::active)
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
                if let Some(r) = self.run_mut(run) {
                    r.start_error = Some(why);
                    r.over = true;
                }
                self.advance(&mut effects);
            }
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
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => self.quit(effects),
            KeyCode::Char('q') => self.quit(effects),
            KeyCode::Esc if self.help => self.help = false,
            KeyCode::Esc => self.quit(effects),
            KeyCode::Char('?') | KeyCode::F(1) => self.help = !self.help,
            KeyCode::Char(' ') => self.space(effects),
            KeyCode::Char('r') => self.reset(effects),
            KeyCode::Char('-') | KeyCode::Char('_') => {
                let fewer = WORKER_STEPS.iter().rev().find(|&&n| n < self.experiment.workers);
                if let Some(&n) = fewer {
                    self.change(effects, |e| e.workers = n);
                }
            }
            KeyCode::Char('+') | KeyCode::Char('=') => {
                let more = WORKER_STEPS.iter().find(|&&n| n > self.experiment.workers && n <= MAX_WORKERS);
                if let Some(&n) = more {
                    self.change(effects, |e| e.workers = n);
                }
            }
            KeyCode::Char('[') => {
                let shorter = SWITCH_STEPS.iter().rev().find(|&&d| d < self.experiment.switch_interval);
                if let Some(&d) = shorter {
                    self.change(effects, |e| e.switch_interval = d);
                }
            }
            KeyCode::Char(']') => {
                let longer = SWITCH_STEPS.iter().find(|&&d| d > self.experiment.switch_interval);
                if let Some(&d) = longer {
                    self.change(effects, |e| e.switch_interval = d);
                }
            }
            KeyCode::Char('w') => {
                let next = match self.experiment.workload {
                    Workload::Cpu => Workload::Io,
                    Workload::Io => Workload::Mixed,
                    Workload::Mixed => Workload::Cpu,
                };
                self.change(effects, |e| e.workload = next);
            }
            KeyCode::Char('g') => self.change(effects, |e| e.gil = !e.gil),
            KeyCode::Char('m') => {
                self.mode = match self.mode {
                    Mode::Race => Mode::OneAtATime,
                    Mode::OneAtATime => Mode::Race,
                };
                self.change(effects, |_| {});
            }
            KeyCode::Char('s') => {
                let pace = self.experiment.pace;
                let next = PACE_STEPS.iter().find(|&&p| p > pace).copied().unwrap_or(PACE_STEPS[0]);
                self.change(effects, |e| e.pace = next.min(MAX_PACE));
            }
            KeyCode::Char('S') => {
                let pace = self.experiment.pace;
                let last = PACE_STEPS[PACE_STEPS.len() - 1];
                let next = PACE_STEPS.iter().rev().find(|&&p| p < pace).copied().unwrap_or(last);
                self.change(effects, |e| e.pace = next.min(MAX_PACE));
            }
            KeyCode::Char('z') => self.zoom = self.zoom.saturating_sub(1),
            KeyCode::Char('Z') => self.zoom = (self.zoom + 1).min(ZOOMS.len() - 1),
            KeyCode::Char('c') => self.next_runtime(effects),
            _ => {}
        }
    }

    /// The runtime key: simulated CPython ↔ the real interpreter.
    fn next_runtime(&mut self, effects: &mut Vec<Effect>) {
        let runtimes = &self.options.runtimes;
        if runtimes.len() < 2 {
            self.notice = Some(match &self.options.cpython_unavailable {
                Some(why) => format!("no real CPython: {why}"),
                None => format!("only the {} runtime is available", self.experiment.runtime.as_str()),
            });
            return;
        }
        let at = runtimes.iter().position(|r| *r == self.experiment.runtime).unwrap_or(0);
        let next = runtimes[(at + 1) % runtimes.len()];
        // The real interpreter cannot be paced: its runs last about a second,
        // so its lanes start zoomed in far enough to show them.
        self.zoom = if next == Runtime::Cpython { CPYTHON_ZOOM } else { DEFAULT_ZOOM };
        self.change(effects, |e| e.runtime = next);
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
                if let Some(last) = session.pauses.last_mut() {
                    last.1 = Some(now);
                }
                for run in session.runs_mut().filter(|r| r.live()) {
                    if let (Some(id), Some(tally)) = (run.id, &mut run.tally) {
                        tally.resume(now);
                        effects.push(Effect::Resume(id));
                    }
                }
                // A run may have ended just before the pause: go on from there.
                self.advance(effects);
            }
            Some(session) if session.active() => {
                session.pauses.push((now, None));
                for run in session.runs_mut().filter(|r| r.live()) {
                    if let (Some(id), Some(tally)) = (run.id, &mut run.tally) {
                        tally.pause(now);
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
        let e = self.experiment.clone();
        let mut roles: Vec<Role> = Vec::new();
        for role in (0..e.workers).map(|w| e.workload.role(w)) {
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        let baseline = roles
            .into_iter()
            .map(|role| lone_spec(&e, role))
            .filter(|spec| !self.lone.iter().any(|l| l.spec == *spec))
            .map(Run::new)
            .collect();
        let models = model_specs(&e).map(Run::new);
        self.session = Some(Session { experiment: e, mode: self.mode, baseline, models, pauses: Vec::new() });
        self.advance(effects);
    }

    /// Starts whatever comes next: the baseline runs one by one, alone on the
    /// machine; then both models at once (race) or one after the other.
    fn advance(&mut self, effects: &mut Vec<Effect>) {
        let Some(session) = &mut self.session else { return };
        if session.paused() || session.runs().any(Run::live) {
            return;
        }
        let mode = session.mode;
        let next: Vec<&mut Run> = if let Some(lone) = session.baseline.iter_mut().find(|r| r.id.is_none()) {
            vec![lone]
        } else {
            let waiting = session.models.iter_mut().filter(|r| r.id.is_none());
            match mode {
                Mode::Race => waiting.collect(),
                Mode::OneAtATime => waiting.take(1).collect(),
            }
        };
        if next.is_empty() {
            effects.push(Effect::Watch(Vec::new()));
            return;
        }
        for run in next {
            let id = self.next_run;
            self.next_run += 1;
            run.id = Some(id);
            effects.push(Effect::Start { run: id, spec: run.spec.clone() });
        }
    }

    fn run_mut(&mut self, id: RunId) -> Option<&mut Run> {
        self.session.as_mut()?.runs_mut().find(|r| r.id == Some(id) && !r.over)
    }

    fn started(&mut self, id: RunId, requested_at: u64, pids: Vec<u32>, effects: &mut Vec<Effect>) {
        let Some(run) = self.run_mut(id) else {
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
        // Reports of runs killed or over are late news: drop them.
        let Some(run) = self.run_mut(id) else { return };
        let new_pid = run.note_report(&report);
        let Some(tally) = &mut run.tally else { return };
        tally.apply(report);
        let over = tally.is_over();
        let lone = tally.result().map(|r| (run.spec.clone(), r.wall_s));
        run.over = over;
        if over {
            // Done or failed: whatever still runs of it goes (a model whose
            // worker died cannot finish with figures worth showing).
            effects.push(Effect::Kill(id));
            let is_baseline =
                self.session.as_ref().is_some_and(|s| s.baseline.iter().any(|r| r.id == Some(id)));
            if let (true, Some((spec, wall_s))) = (is_baseline, lone) {
                self.lone.retain(|l| l.spec != spec);
                self.lone.push(LoneTime { spec, wall_s });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Hello, Timeline, VERSION};

    fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
        app.update(app.now, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    fn ch(app: &mut App, c: char) -> Vec<Effect> {
        press(app, KeyCode::Char(c))
    }

    fn app() -> App {
        App::new(Experiment::new(2), Options::default(), 1_000)
    }

    fn starts(effects: &[Effect]) -> Vec<(RunId, RunSpec)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Start { run, spec } => Some((*run, spec.clone())),
                _ => None,
            })
            .collect()
    }

    /// Plays one whole clean run of `spec` that lasts `wall` ns from `t0`.
    fn play_run(app: &mut App, run: RunId, spec: &RunSpec, t0: u64, wall: u64) -> Vec<Effect> {
        let mut effects =
            app.update(t0, Msg::Started { run, requested_at: t0, pids: vec![100 + run as u32] });
        let workers = spec.experiment.workers;
        let processes = spec.model.processes(workers);
        for p in 0..processes {
            let per = workers / processes;
            let pid = 100 + run as u32 + p;
            let hello = Hello {
                version: VERSION,
                pid,
                runtime: Runtime::Sim,
                gil: true,
                threads: per,
                first_worker: p * per,
                timeline: Timeline::Exact,
            };
            let stream = p as usize;
            let mut send = |record: Record| {
                effects.extend(app.update(t0, Msg::Report(Report::Record { run, stream, record })));
            };
            for w in p * per..(p + 1) * per {
                send(Record::Started { t: t0 + 10, worker: w, requested: t0 });
                send(Record::Take { t: t0 + 20, worker: w });
                send(Record::Progress { t: t0 + wall, worker: w, done: 10, total: 10 });
                send(Record::Finished { t: t0 + wall, worker: w });
            }
            send(Record::End { t: t0 + wall, pid, cpu_ns: wall, max_rss_kb: 3000, switches: 0 });
            effects.extend(app.update(t0, Msg::Report(Report::Hello { run, stream, hello })));
        }
        for stream in 0..processes as usize {
            effects
                .extend(app.update(t0 + wall, Msg::Report(Report::Ended { run, stream, outcome: Ok(()) })));
        }
        effects
    }

    #[test]
    fn space_measures_the_lone_worker_first_then_races_both_models() {
        let mut app = app();
        let effects = ch(&mut app, ' ');
        let first = starts(&effects);
        assert_eq!(first.len(), 1, "{effects:?}");
        assert_eq!(first[0].1.experiment.workers, 1, "the baseline is one worker alone");
        let after = play_run(&mut app, first[0].0, &first[0].1, 2_000, 1_000_000);
        let models = starts(&after);
        assert_eq!(
            models.iter().map(|(_, s)| s.model).collect::<Vec<_>>(),
            [Model::Threads, Model::Processes],
            "race: both at once"
        );
        assert!(after.contains(&Effect::Kill(first[0].0)));
        assert_eq!(app.lone.len(), 1);
    }

    #[test]
    fn one_at_a_time_runs_threading_then_multiprocessing_and_reuses_the_baseline() {
        let mut app = app();
        ch(&mut app, 'm');
        assert_eq!(app.mode, Mode::OneAtATime);
        let lone = starts(&ch(&mut app, ' '))[0].clone();
        let threads = starts(&play_run(&mut app, lone.0, &lone.1, 0, 1_000_000));
        assert_eq!(threads.len(), 1);
        assert_eq!(threads[0].1.model, Model::Threads);
        let procs = starts(&play_run(&mut app, threads[0].0, &threads[0].1, 2_000_000, 2_000_000));
        assert_eq!(procs[0].1.model, Model::Processes);
        let done = play_run(&mut app, procs[0].0, &procs[0].1, 5_000_000, 1_000_000);
        assert!(starts(&done).is_empty());
        assert!(!app.busy());
        let session = app.session.as_ref().expect("a session");
        assert_eq!(session.serial_s(&app.lone), Some(2.0 * 0.001));
        // A second press of space needs no new baseline, nor does another interval.
        let again = starts(&ch(&mut app, ' '));
        assert_eq!(again[0].1.model, Model::Threads);
        let restarted = starts(&ch(&mut app, ']'));
        assert_eq!(restarted[0].1.model, Model::Threads);
        assert_eq!(restarted[0].1.experiment.switch_interval, Duration::from_millis(10));
    }

    #[test]
    fn space_pauses_and_resumes_the_workers() {
        let mut app = app();
        let lone = starts(&ch(&mut app, ' '))[0].clone();
        app.update(10, Msg::Started { run: lone.0, requested_at: 10, pids: vec![7] });
        app.now = 500;
        assert_eq!(ch(&mut app, ' '), vec![Effect::Pause(lone.0)]);
        assert!(app.paused() && !app.animating());
        app.now = 900;
        assert_eq!(ch(&mut app, ' '), vec![Effect::Resume(lone.0)]);
        let session = app.session.as_ref().expect("a session");
        assert_eq!(session.pauses, vec![(500, Some(900))]);
        assert_eq!(session.unpaused(1_000), 600);
    }

    #[test]
    fn a_setting_changed_during_a_run_restarts_it_with_new_run_ids() {
        let mut app = app();
        let lone = starts(&ch(&mut app, ' '))[0].clone();
        app.update(10, Msg::Started { run: lone.0, requested_at: 10, pids: vec![7] });
        let effects = ch(&mut app, '+');
        assert_eq!(app.experiment.workers, 3);
        assert!(effects.contains(&Effect::Kill(lone.0)), "{effects:?}");
        let restarted = starts(&effects);
        assert_eq!(restarted.len(), 1);
        assert!(restarted[0].0 > lone.0, "a new run id");
        // Late reports of the killed run are dropped.
        app.update(20, Msg::Report(Report::Ended { run: lone.0, stream: 0, outcome: Err("killed".into()) }));
        assert!(app.busy());
    }

    #[test]
    fn a_setting_changed_while_idle_only_changes_the_setting() {
        let mut app = app();
        assert_eq!(ch(&mut app, '-'), vec![]);
        assert_eq!(app.experiment.workers, 1);
        assert_eq!(ch(&mut app, '-'), vec![], "one worker is the least");
        assert_eq!(app.experiment.workers, 1);
        for _ in 0..30 {
            ch(&mut app, '+');
        }
        assert_eq!(app.experiment.workers, MAX_WORKERS);
    }

    #[test]
    fn brackets_step_the_switch_interval() {
        let mut app = app();
        ch(&mut app, ']');
        assert_eq!(app.experiment.switch_interval, Duration::from_millis(10));
        ch(&mut app, '[');
        ch(&mut app, '[');
        assert_eq!(app.experiment.switch_interval, Duration::from_millis(2));
        for _ in 0..20 {
            ch(&mut app, '[');
        }
        assert_eq!(app.experiment.switch_interval, Duration::from_micros(100));
    }

    #[test]
    fn w_cycles_the_workloads_and_g_toggles_the_gil() {
        let mut app = app();
        ch(&mut app, 'w');
        assert_eq!(app.experiment.workload, Workload::Io);
        ch(&mut app, 'w');
        assert_eq!(app.experiment.workload, Workload::Mixed);
        ch(&mut app, 'w');
        assert_eq!(app.experiment.workload, Workload::Cpu);
        ch(&mut app, 'g');
        assert!(!app.experiment.gil);
        let [threads, processes] = model_specs(&app.experiment);
        assert!(!threads.experiment.gil && processes.experiment.gil);
    }

    #[test]
    fn mixed_needs_a_lone_io_worker_and_a_lone_cpu_worker() {
        let mut app = app();
        ch(&mut app, 'w');
        ch(&mut app, 'w');
        ch(&mut app, ' ');
        let session = app.session.as_ref().expect("a session");
        let loads: Vec<Workload> = session.baseline.iter().map(|r| r.spec.experiment.workload).collect();
        assert_eq!(loads, [Workload::Io, Workload::Cpu]);
    }

    #[test]
    fn s_steps_the_pace_round() {
        let mut app = app();
        app.experiment.pace = 15;
        ch(&mut app, 's');
        assert_eq!(app.experiment.pace, 20);
        app.experiment.pace = 100;
        ch(&mut app, 's');
        assert_eq!(app.experiment.pace, 1);
        ch(&mut app, 'S');
        assert_eq!(app.experiment.pace, 100);
    }

    #[test]
    fn z_zooms_in_and_shift_z_out_within_bounds() {
        let mut app = app();
        ch(&mut app, 'z');
        assert_eq!(app.zoom, DEFAULT_ZOOM - 1);
        for _ in 0..20 {
            ch(&mut app, 'z');
        }
        assert_eq!(ZOOMS[app.zoom], Zoom::Cell(Duration::from_millis(1)));
        for _ in 0..20 {
            ch(&mut app, 'Z');
        }
        assert_eq!(ZOOMS[app.zoom], Zoom::WholeRun);
    }

    #[test]
    fn r_resets_to_idle_and_kills_what_runs() {
        let mut app = app();
        let lone = starts(&ch(&mut app, ' '))[0].clone();
        app.update(10, Msg::Started { run: lone.0, requested_at: 10, pids: vec![7] });
        let effects = ch(&mut app, 'r');
        assert!(effects.contains(&Effect::Kill(lone.0)));
        assert!(app.session.is_none());
    }

    #[test]
    fn q_esc_and_ctrl_c_quit_and_kill_the_workers() {
        for key in [
            KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE),
            KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE),
            KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
        ] {
            let mut app = app();
            let lone = starts(&ch(&mut app, ' '))[0].clone();
            app.update(10, Msg::Started { run: lone.0, requested_at: 10, pids: vec![7] });
            let effects = app.update(20, Msg::Key(key));
            assert!(effects.contains(&Effect::Kill(lone.0)), "{key:?}: {effects:?}");
            assert_eq!(effects.last(), Some(&Effect::Quit), "{key:?}");
        }
        let mut app = app();
        assert_eq!(app.update(5, Msg::Terminate), vec![Effect::Quit]);
    }

    #[test]
    fn question_mark_toggles_help_and_esc_closes_it_without_quitting() {
        let mut app = app();
        ch(&mut app, '?');
        assert!(app.help);
        assert_eq!(press(&mut app, KeyCode::Esc), vec![]);
        assert!(!app.help && !app.quitting);
    }

    #[test]
    fn c_says_why_the_real_cpython_is_not_there() {
        let mut app = App::new(
            Experiment::new(2),
            Options { cpython_unavailable: Some("no python3 on PATH".into()), ..Options::default() },
            0,
        );
        assert_eq!(ch(&mut app, 'c'), vec![]);
        assert_eq!(app.notice.as_deref(), Some("no real CPython: no python3 on PATH"));
        let mut app = App::new(
            Experiment::new(2),
            Options { runtimes: vec![Runtime::Sim, Runtime::Cpython], ..Options::default() },
            0,
        );
        ch(&mut app, 'c');
        assert_eq!(app.experiment.runtime, Runtime::Cpython);
        assert_eq!(ZOOMS[app.zoom], Zoom::Cell(Duration::from_millis(20)));
        ch(&mut app, 'c');
        assert_eq!(app.experiment.runtime, Runtime::Sim);
        assert_eq!(app.zoom, DEFAULT_ZOOM);
    }

    #[test]
    fn key_releases_are_ignored() {
        let mut app = app();
        let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(app.update(0, Msg::Key(release)), vec![]);
        assert!(!app.quitting);
    }

    #[test]
    fn a_failed_model_is_stopped_and_the_other_goes_on() {
        let mut app = app();
        let lone = starts(&ch(&mut app, ' '))[0].clone();
        let models = starts(&play_run(&mut app, lone.0, &lone.1, 0, 1_000));
        let (threads, processes) = (models[0].0, models[1].0);
        app.update(10, Msg::Started { run: threads, requested_at: 10, pids: vec![50] });
        app.update(10, Msg::Started { run: processes, requested_at: 10, pids: vec![60, 61] });
        let effects = app.update(
            20,
            Msg::Report(Report::Ended {
                run: processes,
                stream: 1,
                outcome: Err("worker process 61 killed by signal 9 (SIGKILL)".into()),
            }),
        );
        assert!(effects.contains(&Effect::Kill(processes)), "{effects:?}");
        assert!(!effects.contains(&Effect::Kill(threads)));
        let session = app.session.as_ref().expect("a session");
        assert_eq!(session.models[1].phase(), Phase::Failed);
        assert_eq!(session.models[1].died, [0, 1], "without a header, every worker of the run");
        assert!(session.models[1].failure().unwrap_or("").contains("SIGKILL"));
        assert_eq!(session.models[0].phase(), Phase::Running);
        assert!(app.busy());
    }

    #[test]
    fn a_gil_wait_paused_through_is_counted_without_the_pause() {
        let mut app = app();
        let lone = starts(&ch(&mut app, ' '))[0].clone();
        let models = starts(&play_run(&mut app, lone.0, &lone.1, 0, 1_000));
        let threads = models[0].0;
        app.update(10, Msg::Started { run: threads, requested_at: 10, pids: vec![50] });
        let record = |app: &mut App, record| {
            app.update(app.now, Msg::Report(Report::Record { run: threads, stream: 0, record }));
        };
        record(&mut app, Record::Take { t: 100, worker: 0 });
        record(&mut app, Record::Wait { t: 100, worker: 1 });
        app.now = 1_000;
        ch(&mut app, ' ');
        app.now = 1_000_000;
        ch(&mut app, ' ');
        // 5,000 ns of waiting, 999,000 of them paused.
        record(&mut app, Record::Take { t: 1_004_100, worker: 1 });
        let tally = app.session.as_ref().and_then(|s| s.models[0].tally.as_ref()).expect("a tally");
        assert_eq!(tally.wait_max_ns, 5_000);
    }

    /// What `App::report` does with a report of a run already started.
    fn feed(run: &mut Run, report: Report) {
        run.note_report(&report);
        if let Some(tally) = &mut run.tally {
            tally.apply(report);
        }
    }

    fn started_run(spec: RunSpec, streams: usize, pids: Vec<u32>) -> Run {
        let mut run = Run::new(spec.clone());
        run.id = Some(1);
        run.tally = Some(Tally::new(spec, 0, streams));
        run.pids = pids;
        run
    }

    fn header(stream_pid: u32, gil: bool, threads: u32, first_worker: u32, timeline: Timeline) -> Hello {
        Hello {
            version: VERSION,
            pid: stream_pid,
            runtime: Runtime::Sim,
            gil,
            threads,
            first_worker,
            timeline,
        }
    }

    fn os_process(pid: u32, threads: u32, worker_threads: u32) -> crate::monitor::ProcessSample {
        crate::monitor::ProcessSample { pid, cpu_cores: None, rss_bytes: 1 << 20, threads, worker_threads }
    }

    fn os_sample(processes: Vec<crate::monitor::ProcessSample>) -> Sample {
        Sample { at: 0, cores: vec![], processes }
    }

    #[test]
    fn threads_are_counted_as_the_os_names_them_even_as_workers_end() {
        let mut run = started_run(model_specs(&Experiment::new(2))[1].clone(), 2, vec![7, 8]);
        for (worker, pid) in [(0, 7), (1, 8)] {
            feed(
                &mut run,
                Report::Record {
                    run: 1,
                    stream: worker as usize,
                    record: Record::Process { t: 0, worker, pid },
                },
            );
        }
        run.observe(&os_sample(vec![os_process(7, 4, 1), os_process(8, 4, 1)]));
        // Process 8's worker ended: 3 helper threads left, none named worker-N.
        run.observe(&os_sample(vec![os_process(8, 3, 0)]));
        assert_eq!((run.os.peak_processes, run.os.threads_per_process()), (2, 1));
        assert_eq!(run.os.processes, 1, "the newest reading");
    }

    #[test]
    fn a_multiprocessing_parent_that_runs_no_worker_is_no_worker_process() {
        // CPython: gilscope starts one parent (7); its children 8 and 9 run the workers.
        let mut run = started_run(model_specs(&Experiment::new(2))[1].clone(), 1, vec![7]);
        let inferred = Timeline::Inferred { resolution_ns: 50_000 };
        feed(&mut run, Report::Hello { run: 1, stream: 0, hello: header(7, true, 2, 0, inferred) });
        run.observe(&os_sample(vec![os_process(7, 2, 0)]));
        assert!(!run.os.seen(), "no worker process yet: {:?}", run.os);
        for (worker, pid) in [(0, 8), (1, 9)] {
            assert!(run.note(0, &Record::Process { t: 0, worker, pid }), "a new pid to watch");
            feed(
                &mut run,
                Report::Record { run: 1, stream: 0, record: Record::Process { t: 0, worker, pid } },
            );
        }
        run.observe(&os_sample(vec![os_process(7, 2, 0), os_process(8, 1, 1), os_process(9, 1, 1)]));
        assert_eq!((run.os.processes, run.os.peak_processes, run.os.threads_per_process()), (2, 2, 1));
        assert_eq!(run.os.peak_rss_each.len(), 3, "the parent's memory is still the model's cost");
    }

    #[test]
    fn handovers_are_counted_per_process_from_the_takes() {
        let mut run = started_run(model_specs(&Experiment::new(2))[0].clone(), 2, vec![7, 8]);
        feed(&mut run, Report::Hello { run: 1, stream: 0, hello: header(7, true, 2, 0, Timeline::Exact) });
        feed(&mut run, Report::Hello { run: 1, stream: 1, hello: header(8, true, 1, 5, Timeline::Exact) });
        for (stream, worker) in [(0, 0), (0, 1), (0, 1), (0, 0), (1, 5)] {
            run.note(stream, &Record::Take { t: 0, worker });
        }
        assert_eq!(run.switches(), Switches::Counted(2));
    }

    #[test]
    fn without_a_gil_nothing_is_handed_over() {
        let e = Experiment { gil: false, ..Experiment::new(2) };
        let mut run = started_run(model_specs(&e)[0].clone(), 1, vec![7]);
        feed(&mut run, Report::Hello { run: 1, stream: 0, hello: header(7, false, 2, 0, Timeline::Exact) });
        for worker in [0, 1, 0, 1] {
            feed(&mut run, Report::Record { run: 1, stream: 0, record: Record::Take { t: 0, worker } });
        }
        assert_eq!((run.handovers, run.switches()), (0, Switches::NoGil));
    }

    #[test]
    fn inferred_hand_overs_wait_for_the_processes_own_count() {
        let spec = model_specs(&Experiment::new(2))[0].clone();
        let mut run = started_run(spec, 1, vec![7]);
        let inferred = Timeline::Inferred { resolution_ns: 50_000 };
        feed(&mut run, Report::Hello { run: 1, stream: 0, hello: header(7, true, 2, 0, inferred) });
        let record = |run: &mut Run, record| feed(run, Report::Record { run: 1, stream: 0, record });
        // Batches of takes, one worker's after the other's: no hand-over order.
        for worker in [0, 0, 1, 1, 0, 0, 1, 1] {
            record(&mut run, Record::Take { t: 0, worker });
        }
        for worker in 0..2 {
            record(&mut run, Record::Process { t: 0, worker, pid: 7 });
            record(&mut run, Record::Finished { t: 0, worker });
        }
        assert_eq!(run.switches(), Switches::Inferred(None));
        record(&mut run, Record::End { t: 0, pid: 7, cpu_ns: 1, max_rss_kb: 1, switches: 42 });
        feed(&mut run, Report::Ended { run: 1, stream: 0, outcome: Ok(()) });
        assert_eq!(run.switches(), Switches::Inferred(Some(42)));
    }

    #[test]
    fn the_lone_worker_is_one_thread_with_its_gil_as_gilscope_run_times_it() {
        let e = Experiment { gil: false, switch_interval: Duration::from_millis(50), ..Experiment::new(4) };
        let spec = lone_spec(&e, Role::Cpu);
        assert_eq!(spec.model, Model::Threads);
        assert_eq!((spec.experiment.workers, spec.experiment.gil), (1, true));
        assert_eq!(spec.experiment.switch_interval, DEFAULT_SWITCH_INTERVAL);
    }
}
