//! What keeps a session while it runs, so it can be saved once finished.
//!
//! [`Tape`] sits between the live view's loop and its app: every message
//! goes through [`Tape::feed`] into `App::update`, and the tape keeps those
//! of the session on screen, with the runs the app asked for. A session may
//! reuse a baseline timed in an earlier one; the tape keeps each baseline
//! run's messages too, so a recording carries every run its figures came
//! from.
//!
//! [`RunTape`] records `gilscope run`, which has no app: its rounds are
//! written as the sessions the live view would have made of them (a round
//! times its baseline, then each model, one at a time), so they replay in it.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crossbeam_channel::{Receiver, Sender};

use crate::app::{App, Effect, Mode, Msg, Options};
use crate::clock::now_ns;
use crate::experiment::Seen;
use crate::experiment::baseline;
use crate::experiment::spec::{Experiment, Model, RunSpec};
use crate::experiment::supervisor::{Report, RunId};
use crate::monitor::Sample;
use crate::protocol::Record;
use crate::recording::{
    Begin, Entry, Event, ExperimentLine, FORMAT, Header, Interpreter, Machine, Recording, Settings, VERSION,
    model_name,
};

/// Messages a session may keep before it is too long to record: about
/// 50 MB (an entry takes about 100 bytes), a minute of 16 paced workers.
pub const MAX_ENTRIES: usize = 500_000;

/// Where a recording is made, for its header.
#[derive(Clone, Debug)]
pub struct Context {
    pub machine: Machine,
    /// The real interpreter's path and version, when there is one.
    pub python: Option<(String, String)>,
}

impl Context {
    fn header(&self, source: &str, settings: Settings, runtime: &str) -> Header {
        let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let python = self.python.clone().filter(|_| runtime == "cpython");
        Header {
            format: FORMAT.to_owned(),
            version: VERSION,
            gilscope: env!("CARGO_PKG_VERSION").to_owned(),
            saved_at: crate::recording::utc_timestamp(since_epoch),
            source: source.to_owned(),
            settings,
            machine: self.machine.clone(),
            interpreter: Interpreter {
                runtime: runtime.to_owned(),
                python: python.as_ref().map(|(path, _)| path.clone()),
                python_version: python.map(|(_, version)| version),
            },
        }
    }
}

fn settings(
    e: &Experiment,
    models: &[Model],
    mode: Mode,
    lesson: Option<usize>,
    options: &Options,
) -> Settings {
    Settings {
        experiment: ExperimentLine::from(e),
        models: models.iter().map(|m| model_name(*m)).collect(),
        mode: mode.label().to_owned(),
        lesson: lesson.map(|i| i + 1),
        cpython_subinterpreters: options.cpython_subinterpreters,
        cpython_free_threaded: options.cpython_free_threaded,
    }
}

/// The session on screen, as recorded so far.
#[derive(Debug)]
struct Log {
    /// The session's first run: sessions are told apart by it.
    first_run: RunId,
    settings: Settings,
    entries: Vec<Entry>,
    /// It grew past [`MAX_ENTRIES`] and stopped recording.
    full: bool,
}

/// Records the live view's sessions as their messages pass into the app.
#[derive(Debug, Default)]
pub struct Tape {
    session: Option<Log>,
    /// Baseline runs being timed, and their messages so far.
    timing: BTreeMap<RunId, Vec<Entry>>,
    /// Each baseline run that timed its spec, newest per spec.
    timed: Vec<(RunSpec, Vec<Entry>)>,
    /// The newest OS sample: a session starts with it on screen.
    last_sample: Option<Entry>,
}

/// The first run of the session on screen, which names it.
fn first_run(app: &App) -> Option<RunId> {
    app.session.as_ref()?.runs().filter_map(|r| r.id).min()
}

/// The run a message is about, if any.
fn run_of(msg: &Msg) -> Option<RunId> {
    match msg {
        Msg::Report(report) => Some(report.run()),
        Msg::Started { run, .. } | Msg::StartFailed { run, .. } => Some(*run),
        _ => None,
    }
}

impl Tape {
    /// Hands `msg` to the app, keeping what a recording needs of it.
    pub fn feed(&mut self, app: &mut App, now: u64, msg: Msg) -> Vec<Effect> {
        let before = first_run(app);
        let kept = match msg {
            Msg::Viewport { .. }
            | Msg::Terminate
            | Msg::Viewer(_)
            | Msg::Saved(_)
            | Msg::Interpreters { .. } => None,
            _ => Some(msg.clone()),
        };
        let effects = app.update(now, msg);
        let entry = kept.map(|msg| Entry { at: now, event: Event::Msg(msg) });
        match first_run(app) {
            None => {
                self.session = None;
                if let Some(e) = entry.filter(|e| matches!(e.event, Event::Msg(Msg::Sample(_)))) {
                    self.last_sample = Some(e);
                }
            }
            // The message that began it is replaced by the beginning.
            Some(first) if Some(first) != before => self.begin(app, now, first),
            Some(_) => {
                if let Some(entry) = entry {
                    self.keep(app, entry);
                }
            }
        }
        for effect in &effects {
            if let Effect::Start { run, spec } = effect {
                let baseline = app.session.as_ref().is_some_and(|s| s.is_baseline(*run));
                self.keep(
                    app,
                    Entry { at: now, event: Event::Start { run: *run, baseline, spec: spec.clone() } },
                );
            }
        }
        self.settle(app);
        effects
    }

    /// A new session began with the message just taken: it is replaced, in
    /// the recording, by pressing space with the view it opened with, after
    /// the newest sample (the one on screen then).
    fn begin(&mut self, app: &App, now: u64, first_run: RunId) {
        let Some(session) = &app.session else { return };
        let models: Vec<Model> = session.models.iter().map(|r| r.spec.model).collect();
        let mut entries: Vec<Entry> = self.last_sample.iter().cloned().collect();
        entries.push(Entry { at: now, event: Event::Begin(Begin::Session { view: app.view }) });
        self.session = Some(Log {
            first_run,
            settings: settings(&session.experiment, &models, session.mode, app.lesson, &app.options),
            entries,
            full: false,
        });
        // Runs of the session before are over: their messages are late news.
        self.timing.clear();
    }

    fn keep(&mut self, app: &App, entry: Entry) {
        let run = match &entry.event {
            Event::Msg(msg) => run_of(msg),
            Event::Start { run, .. } => Some(*run),
            Event::Begin(_) => None,
        };
        if matches!(entry.event, Event::Msg(Msg::Sample(_))) {
            self.last_sample = Some(entry.clone());
            // A baseline run's outside load is the mean of the samples taken while it ran.
            for timing in self.timing.values_mut() {
                timing.push(entry.clone());
            }
        }
        if let Some(run) = run
            && app.session.as_ref().is_some_and(|s| s.is_baseline(run))
        {
            if matches!(entry.event, Event::Start { .. }) {
                self.timing.entry(run).or_default().push(entry.clone());
            } else if let Some(timing) = self.timing.get_mut(&run) {
                timing.push(entry.clone());
            }
        }
        let Some(log) = &mut self.session else { return };
        if log.entries.len() >= MAX_ENTRIES {
            log.full = true;
        } else if !log.full {
            log.entries.push(entry);
        }
    }

    /// Baseline runs that ended: kept by spec when they timed it.
    fn settle(&mut self, app: &App) {
        let Some(session) = &app.session else { return };
        let over: Vec<RunId> = self
            .timing
            .keys()
            .copied()
            .filter(|id| session.baseline.iter().find(|r| r.id == Some(*id)).is_none_or(|r| r.over))
            .collect();
        for id in over {
            let Some(entries) = self.timing.remove(&id) else { continue };
            let Some(run) = session.baseline.iter().find(|r| r.id == Some(id)) else { continue };
            if run.result().is_some() {
                self.timed.retain(|(spec, _)| *spec != run.spec);
                self.timed.push((run.spec.clone(), entries));
            }
        }
    }

    /// The session on screen as a recording, once it finished.
    pub fn recording(&self, app: &App, context: &Context) -> Result<Recording, String> {
        let session = app.session.as_ref().ok_or("nothing to save yet: space starts a run")?;
        if session.active() {
            return Err("the run is still going: save it once it finished".to_owned());
        }
        let log = self
            .session
            .as_ref()
            .filter(|l| Some(l.first_run) == first_run(app))
            .ok_or("this run was not recorded from its start")?;
        if log.full {
            return Err(format!("the run was too long to record (over {MAX_ENTRIES} messages)"));
        }
        let mut entries = Vec::new();
        // The baseline runs the session reused, timed in earlier sessions.
        let own: Vec<&RunSpec> = session.baseline.iter().map(|r| &r.spec).collect();
        for spec in baseline::specs(&session.experiment) {
            if own.contains(&&spec) {
                continue;
            }
            if let Some((_, earlier)) = self.timed.iter().find(|(s, _)| *s == spec) {
                let at = earlier.first().map_or(0, |e| e.at);
                entries.push(Entry { at, event: Event::Begin(Begin::Earlier) });
                entries.extend(earlier.iter().cloned());
            }
        }
        entries.extend(log.entries.iter().cloned());
        let runtime = session.experiment.runtime.as_str();
        Ok(Recording { header: context.header("live", log.settings.clone(), runtime), entries })
    }
}

/// Records `gilscope run`: its rounds as the live view's sessions, and the
/// OS samples a monitor takes meanwhile, as the live view's would.
pub struct RunTape {
    entries: Vec<Entry>,
    next_run: RunId,
    current: RunId,
    monitor: Option<(Sender<Vec<u32>>, Receiver<Sample>)>,
    watched: Vec<u32>,
}

impl RunTape {
    /// A tape; with `sample_os`, an OS sampler runs while it records.
    pub fn new(sample_os: bool) -> RunTape {
        let monitor = sample_os
            .then(|| {
                let (watch_tx, watch_rx) = crossbeam_channel::unbounded();
                let (sample_tx, sample_rx) = crossbeam_channel::bounded(64);
                crate::monitor::spawn(watch_rx, sample_tx).ok().map(|()| (watch_tx, sample_rx))
            })
            .flatten();
        RunTape { entries: Vec::new(), next_run: 1, current: 0, monitor, watched: Vec::new() }
    }

    fn push(&mut self, at: u64, event: Event) {
        self.entries.push(Entry { at, event });
    }

    /// Samples that came in, as messages arriving now.
    fn drain(&mut self) {
        let samples: Vec<Sample> =
            self.monitor.as_ref().map(|(_, rx)| rx.try_iter().collect()).unwrap_or_default();
        for sample in samples {
            self.push(now_ns(), Event::Msg(Msg::Sample(sample)));
        }
    }

    fn watch(&mut self, pids: &[u32]) {
        let new: Vec<u32> = pids.iter().copied().filter(|p| !self.watched.contains(p)).collect();
        if new.is_empty() {
            return;
        }
        self.watched.extend(new);
        if let Some((tx, _)) = &self.monitor {
            let _ = tx.send(self.watched.clone());
        }
    }

    /// Round `n` begins: it times its own baseline, then the models.
    pub fn round(&mut self, n: u32) {
        self.drain();
        self.push(now_ns(), Event::Begin(Begin::Round(n)));
    }

    /// The next run, as the app would ask for it.
    pub fn run(&mut self, spec: &RunSpec, baseline: bool) {
        self.drain();
        self.watched.clear();
        self.current = self.next_run;
        self.next_run += 1;
        self.push(now_ns(), Event::Start { run: self.current, baseline, spec: spec.clone() });
    }

    /// What the current run showed.
    pub fn seen(&mut self, seen: Seen<'_>) {
        let run = self.current;
        match seen {
            Seen::Started { requested_at, pids } => {
                self.watch(pids);
                let msg = Msg::Started { run, requested_at, pids: pids.to_vec() };
                self.push(now_ns(), Event::Msg(msg));
            }
            Seen::Report { at, report } => {
                let report = match report.clone() {
                    Report::Hello { stream, hello, .. } => Report::Hello { run, stream, hello },
                    Report::Record { stream, record, .. } => {
                        if let Record::Process { pid, .. } = record {
                            self.watch(&[pid]);
                        }
                        Report::Record { run, stream, record }
                    }
                    Report::Ended { stream, outcome, .. } => Report::Ended { run, stream, outcome },
                };
                self.push(at, Event::Msg(Msg::Report(report)));
                self.drain();
            }
        }
    }

    /// The recording of `runs` (all sharing the first one's experiment when
    /// it is to be replayed).
    pub fn finish(mut self, runs: &[RunSpec], context: &Context) -> Recording {
        self.drain();
        let experiment = runs.first().map_or_else(|| Experiment::new(1), |r| r.experiment.clone());
        let mut models: Vec<Model> = Vec::new();
        for r in runs {
            if !models.contains(&r.model) {
                models.push(r.model);
            }
        }
        let settings = settings(&experiment, &models, Mode::OneAtATime, None, &Options::default());
        Recording {
            header: context.header("run", settings, experiment.runtime.as_str()),
            entries: self.entries,
        }
    }
}
