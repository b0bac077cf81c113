//! A recording fed back into an app: the same messages at the same times,
//! so the same lanes, figures and results. The app asks for runs as it did
//! live; each is matched with the run the recording started there (the
//! same spec, else the recording does not replay in this gilscope), and
//! that run's reports follow. No worker is started and no python is needed.

use std::collections::{HashMap, VecDeque};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::{App, BaselineTiming, Effect, Msg, Options, Playback};
use crate::experiment::baseline::Baseline;
use crate::experiment::spec::RunSpec;
use crate::experiment::supervisor::{Report, RunId};
use crate::recording::{Begin, Entry, Event, Recording};

/// One app being fed, and how the recording's runs map to its own.
struct Feeder {
    app: App,
    /// The recording's run id → the app's.
    ids: HashMap<RunId, RunId>,
    /// Runs the app asked for, not yet matched with the recording's.
    asked: VecDeque<(RunId, RunSpec)>,
}

impl Feeder {
    fn new(app: App) -> Self {
        Feeder { app, ids: HashMap::new(), asked: VecDeque::new() }
    }

    fn update(&mut self, at: u64, msg: Msg) {
        for effect in self.app.update(at, msg) {
            if let Effect::Start { run, spec } = effect {
                self.asked.push_back((run, spec));
            }
        }
    }

    fn press(&mut self, at: u64, c: char) {
        self.update(at, Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)));
    }

    /// A run the recording started: the one the app asked for next.
    fn start(&mut self, run: RunId, spec: &RunSpec) -> Result<(), String> {
        match self.asked.pop_front() {
            Some((ours, asked)) if asked == *spec => {
                self.ids.insert(run, ours);
                Ok(())
            }
            Some((_, asked)) => Err(format!(
                "it started {} ({}) where this gilscope starts {} ({})",
                spec.label(),
                spec.experiment.describe(),
                asked.label(),
                asked.experiment.describe()
            )),
            None => Err(format!("it started {} where this gilscope starts nothing", spec.label())),
        }
    }

    fn message(&mut self, at: u64, msg: Msg) -> Result<(), String> {
        let ours = |run: RunId| {
            self.ids.get(&run).copied().ok_or_else(|| format!("it speaks of run {run} before starting it"))
        };
        let msg = match msg {
            Msg::Started { run, requested_at, pids } => Msg::Started { run: ours(run)?, requested_at, pids },
            Msg::StartFailed { run, why } => Msg::StartFailed { run: ours(run)?, why },
            Msg::Report(report) => Msg::Report(match report {
                Report::Hello { run, stream, hello } => Report::Hello { run: ours(run)?, stream, hello },
                Report::Record { run, stream, record } => Report::Record { run: ours(run)?, stream, record },
                Report::Ended { run, stream, outcome } => Report::Ended { run: ours(run)?, stream, outcome },
            }),
            other => other,
        };
        self.update(at, msg);
        Ok(())
    }
}

/// Plays a recording into an app.
pub struct Player {
    main: Feeder,
    /// A baseline run timed before the session, in an app of its own.
    earlier: Option<Feeder>,
    in_earlier: bool,
    options: Options,
    entries: Vec<Entry>,
    next: usize,
    /// When the session (or the first round) began, and the last message.
    pub start_at: u64,
    pub end_at: u64,
}

impl Player {
    /// An app as the recording's session began, the baseline runs it reused
    /// already timed. `options` are the replaying screen's (its colours);
    /// the cores are the recording machine's.
    pub fn new(recording: Recording, options: &Options) -> Result<Player, String> {
        let (experiment, models, mode) = recording.settings().map_err(|e| cannot(&e))?;
        let s = &recording.header.settings;
        let options = Options {
            runtimes: vec![experiment.runtime],
            cpython_unavailable: None,
            cores: recording.header.machine.cores.max(1),
            cpython_subinterpreters: s.cpython_subinterpreters,
            cpython_free_threaded: s.cpython_free_threaded,
            ..options.clone()
        };
        let first = recording.entries.first().map_or(0, |e| e.at);
        let mut app = App::new(experiment, options.clone(), first);
        app.set_mode(mode);
        app.models = models;
        app.lesson = recording.header.settings.lesson.and_then(|n| n.checked_sub(1));
        app.baseline_timing = if times_again_after_the_models(&recording.entries) {
            BaselineTiming::Bracketed
        } else {
            BaselineTiming::BeforeOnly
        };
        let start_at = recording
            .entries
            .iter()
            .find(|e| matches!(e.event, Event::Begin(Begin::Session { .. } | Begin::Round(_))))
            .map_or(first, |e| e.at);
        // The replay lasts until the last thing that happened: the OS
        // samples and ticks of an idle screen after it are fed at the end.
        let end_at = recording
            .entries
            .iter()
            .rev()
            .find(|e| !matches!(e.event, Event::Msg(Msg::Sample(_) | Msg::Tick)))
            .map_or(start_at, |e| e.at)
            .max(start_at);
        app.playback = Some(Playback { speed: 1.0, at_ns: 0, length_ns: end_at - start_at, paused: false });
        let mut player = Player {
            main: Feeder::new(app),
            earlier: None,
            in_earlier: false,
            options,
            entries: recording.entries,
            next: 0,
            start_at,
            end_at,
        };
        // What came before the session is fed at once: it is not shown.
        player.play_until(start_at.saturating_sub(1))?;
        Ok(player)
    }

    pub fn app(&self) -> &App {
        &self.main.app
    }

    pub fn app_mut(&mut self) -> &mut App {
        &mut self.main.app
    }

    /// Whether every message was played.
    pub fn done(&self) -> bool {
        self.next >= self.entries.len()
    }

    /// Feeds every message that arrived at or before `t` (all of them from
    /// the end on).
    pub fn play_until(&mut self, t: u64) -> Result<(), String> {
        let t = if t >= self.end_at { u64::MAX } else { t };
        while let Some(entry) = self.entries.get(self.next).filter(|e| e.at <= t) {
            let entry = entry.clone();
            self.next += 1;
            self.play(entry).map_err(|e| cannot(&e))?;
        }
        Ok(())
    }

    /// Feeds the whole recording.
    pub fn play_all(&mut self) -> Result<(), String> {
        self.play_until(u64::MAX)
    }

    fn play(&mut self, entry: Entry) -> Result<(), String> {
        let at = entry.at;
        match entry.event {
            Event::Begin(begin) => {
                self.end_earlier();
                match begin {
                    Begin::Earlier => self.in_earlier = true,
                    Begin::Session { view } => {
                        self.main.asked.clear();
                        self.main.press(at, ' ');
                        self.main.app.view = view;
                    }
                    Begin::Round(_) => {
                        self.main.asked.clear();
                        if self.main.app.session.is_some() {
                            // The round before goes to the history, as `r` sends it.
                            self.main.press(at, 'r');
                        }
                        // Each round of `gilscope run` times its own baseline.
                        self.main.app.baseline = Baseline::default();
                        self.main.press(at, ' ');
                    }
                }
                Ok(())
            }
            Event::Start { run, spec, .. } if self.in_earlier => {
                // A baseline run alone: an app of its experiment needs only it.
                let mut app = App::new(spec.experiment.clone(), self.options.clone(), at);
                app.models.clone_from(&self.main.app.models);
                let mut feeder = Feeder::new(app);
                feeder.press(at, ' ');
                feeder.start(run, &spec)?;
                self.earlier = Some(feeder);
                Ok(())
            }
            Event::Start { run, spec, .. } => self.main.start(run, &spec),
            // Messages of the earlier baseline run, and the samples taken
            // while it ran, go to its app; what comes after, to the main one.
            Event::Msg(msg) if self.in_earlier && self.earlier_running(&msg) => match &mut self.earlier {
                Some(feeder) => feeder.message(at, msg),
                None => Ok(()),
            },
            Event::Msg(msg) => self.main.message(at, msg),
        }
    }

    fn earlier_running(&self, msg: &Msg) -> bool {
        match msg {
            Msg::Sample(_) => self
                .earlier
                .as_ref()
                .is_some_and(|f| f.app.session.as_ref().is_some_and(|s| s.timing_baseline().is_some())),
            _ => true,
        }
    }

    /// An earlier baseline run is over: its time goes to the main app.
    fn end_earlier(&mut self) {
        self.in_earlier = false;
        if let Some(feeder) = self.earlier.take() {
            for time in feeder.app.baseline.times {
                self.main.app.baseline.record_timed(time);
            }
            // Recorded by a gilscope that reused a baseline: so does the replay.
            self.main.app.baseline_timing = BaselineTiming::ReuseOnce;
        }
    }
}

/// Whether the recording's sessions timed their lone workers again after
/// the models (those of `gilscope run`, and of an older gilscope, did not).
fn times_again_after_the_models(entries: &[Entry]) -> bool {
    let mut models_started = false;
    for entry in entries {
        match entry.event {
            Event::Begin(_) => models_started = false,
            Event::Start { baseline: false, .. } => models_started = true,
            Event::Start { baseline: true, .. } if models_started => return true,
            _ => {}
        }
    }
    false
}

fn cannot(why: &str) -> String {
    format!("the recording does not replay in this gilscope: {why}")
}
