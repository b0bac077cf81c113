//! The live view's main loop (`gilscope` without a subcommand): terminal
//! in, effects out.
//!
//! One thread (this one, the main thread) owns the terminal and every
//! running experiment. It waits on one `select!` over terminal input, worker
//! reports, OS samples, termination signals and a frame tick. The tick only
//! exists while something moves on screen, so an idle gilscope sleeps.
//!
//! Runs are started here, on the main thread, because their processes get
//! `PR_SET_PDEATHSIG` tied to the thread that spawned them.
//!
//! Every message reaches the app through a recording tape, so a finished
//! session can be saved (`R`) and replayed (`gilscope replay`).

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, after, never, select};
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event, KeyEventKind};

use crate::app::{App, DEFAULT_PACE, Effect, Msg, Options};
use crate::cli::ExperimentArgs;
use crate::clock::now_ns;
use crate::cpython::{Python, discover};
use crate::experiment::matrix::Need;
use crate::experiment::plan::Plan;
use crate::experiment::supervisor::{self, Report, RunId, Running};
use crate::monitor::{self, Sample};
use crate::protocol::Runtime;
use crate::recording::tape::{Context, Tape};
use crate::recording::{Machine, new_file_name};

/// Reports handled in one go before the screen gets a chance to redraw:
/// 128 workers send about 60,000 a second.
const REPORT_BATCH: usize = 100_000;

/// Whether to colour, given the `NO_COLOR` variable: the convention (no-color.org)
/// is that any value but an empty one turns colours off.
pub fn colour_wanted(no_color: Option<&std::ffi::OsStr>) -> bool {
    no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// `gilscope` without a subcommand.
pub fn main(args: &ExperimentArgs) -> ExitCode {
    open(args, None)
}

/// `gilscope lesson N`: the live view, opened at lesson `index` (from 0).
pub fn lesson(args: &ExperimentArgs, index: usize) -> ExitCode {
    open(args, Some(index))
}

fn open(args: &ExperimentArgs, lesson: Option<usize>) -> ExitCode {
    let mut plan = match Plan::measure() {
        Ok(plan) => plan,
        Err(why) => {
            eprintln!("gilscope: {why}");
            return ExitCode::FAILURE;
        }
    };
    // The runtime key (`c`) switches between the simulation and the real
    // interpreter whenever one answers; --runtime picks the one to start on.
    let first = args.runtime.runtimes()[0];
    let (found_tx, found_rx) = crossbeam_channel::bounded(1);
    let (runtimes, cpython_unavailable) = match Python::probe(&args.python) {
        Ok(python) => {
            // Interpreters for the models this one cannot run are looked for
            // meanwhile: probing each takes a while, the first frame should not wait.
            let main = python.clone();
            let _ = std::thread::Builder::new().name("discover".into()).spawn(move || {
                let find = |need: Need| {
                    if need.fits(&main) { Some(main.clone()) } else { discover::find(|p| need.fits(p)) }
                };
                let _ = found_tx.send((find(Need::Subinterpreters), find(Need::FreeThreaded)));
            });
            plan.python = Some(python);
            let other = if first == Runtime::Sim { Runtime::Cpython } else { Runtime::Sim };
            (vec![first, other], None)
        }
        Err(why) if first == Runtime::Cpython || args.runtime.runtimes().contains(&Runtime::Cpython) => {
            eprintln!("gilscope: --python: {why}");
            return ExitCode::from(2);
        }
        Err(why) => (vec![Runtime::Sim], Some(why)),
    };
    let color = colour_wanted(std::env::var_os("NO_COLOR").as_deref());
    let options = Options {
        color,
        runtimes,
        cpython_unavailable,
        cores: crate::cli::cores(),
        cpython_subinterpreters: false,
        cpython_free_threaded: false,
    };
    let mut app = App::new(args.experiment(DEFAULT_PACE, plan.iteration_ns()), options, now_ns());
    if let Some(models) = args.chosen_models() {
        app.models = models;
    }
    if let Some(index) = lesson {
        // Nothing runs yet: opening a lesson only sets the settings.
        app.open_lesson(index, &mut Vec::new());
    }
    let context = Context {
        machine: Machine::here(crate::cli::cores()),
        python: plan.python.as_ref().map(|p| (p.path.display().to_string(), p.version.clone())),
    };

    let (terminate_tx, terminate_rx) = crossbeam_channel::bounded(1);
    // SIGINT (outside raw mode), SIGTERM and SIGHUP: leave through the front door.
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = terminate_tx.try_send(());
    }) {
        eprintln!("gilscope: cannot handle termination signals ({e}); q still quits");
    }
    let (watch_tx, watch_rx) = crossbeam_channel::unbounded();
    let (sample_tx, sample_rx) = crossbeam_channel::bounded(4);
    if let Err(e) = monitor::spawn(watch_rx, sample_tx) {
        eprintln!("gilscope: cannot start the OS sampler: {e}");
        return ExitCode::FAILURE;
    }

    let mut terminal = match ratatui::try_init() {
        Ok(terminal) => terminal,
        Err(e) => {
            ratatui::restore();
            eprintln!(
                "gilscope: the interactive view needs a terminal ({e}); `gilscope run` works without one"
            );
            return ExitCode::FAILURE;
        }
    };
    let input = match spawn_input() {
        Ok(input) => input,
        Err(e) => {
            ratatui::restore();
            eprintln!("gilscope: cannot read the keyboard: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut world = World {
        plan,
        runs: HashMap::new(),
        watch: watch_tx,
        reports: crossbeam_channel::unbounded(),
        found: found_rx,
        tape: Tape::default(),
        context,
    };
    let outcome = main_loop(&mut terminal, app, &mut world, &input, &sample_rx, &terminate_rx);
    // Workers first: killing them takes no terminal.
    world.runs.clear();
    ratatui::restore();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gilscope: the terminal failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads terminal events on a thread of its own: `event::read` blocks.
pub(super) fn spawn_input() -> std::io::Result<Receiver<Event>> {
    let (tx, rx) = crossbeam_channel::bounded(64);
    std::thread::Builder::new().name("input".into()).spawn(move || {
        while let Ok(event) = event::read() {
            if tx.send(event).is_err() {
                break;
            }
        }
    })?;
    Ok(rx)
}

/// What the effects act on: the machine's side of the app.
struct World {
    plan: Plan,
    /// Dropping a `Running` kills its processes.
    runs: HashMap<RunId, Running>,
    watch: Sender<Vec<u32>>,
    reports: (Sender<Report>, Receiver<Report>),
    /// The interpreters found for subinterpreters and free-threading, once looked for.
    found: Receiver<(Option<Python>, Option<Python>)>,
    /// Keeps the session on screen, to save it.
    tape: Tape,
    context: Context,
}

impl World {
    /// Carries out effects, feeding what they cause back into the app.
    /// `show` draws the app before processes are started: starting many
    /// takes a while, and the screen should say so meanwhile.
    /// Returns false once the app asked to quit.
    fn carry_out(&mut self, app: &mut App, effects: Vec<Effect>, show: &mut dyn FnMut(&App)) -> bool {
        let mut queue: std::collections::VecDeque<Effect> = effects.into();
        let mut go_on = true;
        let mut shown = false;
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Start { run, spec } => {
                    if !shown {
                        show(app);
                        shown = true;
                    }
                    let started = self
                        .plan
                        .launches(&spec)
                        .and_then(|l| supervisor::start(&l, run, &self.reports.0).map_err(|e| e.to_string()));
                    let msg = match started {
                        Ok(running) => {
                            let msg = Msg::Started {
                                run,
                                requested_at: running.requested_at,
                                pids: running.pids().to_vec(),
                            };
                            self.runs.insert(run, running);
                            msg
                        }
                        Err(why) => Msg::StartFailed { run, why },
                    };
                    queue.extend(self.tape.feed(app, now_ns(), msg));
                }
                Effect::Pause(run) => {
                    if let Some(r) = self.runs.get(&run) {
                        r.pause();
                    }
                }
                Effect::Resume(run) => {
                    if let Some(r) = self.runs.get(&run) {
                        r.resume();
                    }
                }
                Effect::Kill(run) => {
                    if let Some(mut r) = self.runs.remove(&run) {
                        r.kill();
                    }
                }
                Effect::Watch(pids) => {
                    let _ = self.watch.send(pids);
                }
                Effect::Save => {
                    let saved = self.save(app);
                    queue.extend(app.update(now_ns(), Msg::Saved(saved)));
                }
                Effect::Quit => go_on = false,
            }
        }
        go_on
    }

    /// Saves the finished session to a new file in the current folder.
    fn save(&self, app: &App) -> Result<String, String> {
        let recording = self.tape.recording(app, &self.context)?;
        let path = new_file_name(std::path::Path::new("."));
        recording.save(&path)?;
        Ok(path.display().to_string())
    }
}

fn main_loop(
    terminal: &mut DefaultTerminal,
    mut app: App,
    world: &mut World,
    input: &Receiver<Event>,
    samples: &Receiver<Sample>,
    terminate: &Receiver<()>,
) -> std::io::Result<()> {
    let reports = world.reports.1.clone();
    let mut found = world.found.clone();
    // A channel that closed is replaced by one that never fires, so the
    // select does not spin on it.
    let mut input = input.clone();
    let mut samples = samples.clone();
    let mut dirty = true;
    let mut last_frame: Option<Instant> = None;
    loop {
        let frame = app.frame_interval();
        let since = last_frame.map_or(frame, |t| t.elapsed());
        if dirty && since >= frame {
            let mut cells = app.lane_cells;
            terminal.draw(|frame| {
                cells = crate::ui::lane_cells(&app, frame.area());
                crate::ui::render(frame, &app);
            })?;
            if cells != app.lane_cells {
                // The zoom and pan keys must know what the screen holds.
                app.update(now_ns(), Msg::Viewport { lane_cells: cells });
            }
            last_frame = Some(Instant::now());
            dirty = false;
        }
        let wait = frame.saturating_sub(last_frame.map_or(frame, |t| t.elapsed()));
        let animating = app.animating();
        let tick = if dirty || animating { after(wait) } else { never() };
        // While frames tick, reports wait for the next one and are taken in a
        // batch: one wakeup a frame instead of one per record (thousands a
        // second). Their times come from the workers' clocks, so waiting
        // changes no figure. Otherwise each report is taken as it comes.
        let report_wakeups = if animating { never() } else { reports.clone() };
        let msg = select! {
            recv(input) -> event => match event {
                Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => Msg::Key(key),
                Ok(Event::Resize(..)) => {
                    dirty = true;
                    continue;
                }
                Ok(_) => continue,
                // The terminal is gone: nobody is left to watch.
                Err(_) => {
                    input = never();
                    Msg::Terminate
                }
            },
            recv(report_wakeups) -> report => match report {
                Ok(report) => Msg::Report(report),
                Err(_) => continue,
            },
            recv(samples) -> sample => if let Ok(sample) = sample { Msg::Sample(sample) } else {
                samples = never();
                continue;
            },
            recv(terminate) -> _ => Msg::Terminate,
            recv(found) -> interpreters => {
                found = never();
                let Ok((newer, free_threaded)) = interpreters else { continue };
                let msg = Msg::Interpreters { subinterpreters: newer.is_some(), free_threaded: free_threaded.is_some() };
                world.plan.newer_python = newer;
                world.plan.free_threaded_python = free_threaded;
                msg
            },
            recv(tick) -> _ => Msg::Tick,
        };
        let now = now_ns();
        let batch = matches!(msg, Msg::Report(_) | Msg::Tick);
        let mut effects = world.tape.feed(&mut app, now, msg);
        if batch {
            for report in reports.try_iter().take(REPORT_BATCH) {
                effects.extend(world.tape.feed(&mut app, now, Msg::Report(report)));
            }
        }
        let mut draw_error = None;
        let mut show = |app: &App| {
            if let Err(e) = terminal.draw(|frame| crate::ui::render(frame, app)) {
                draw_error = Some(e);
            }
        };
        if !world.carry_out(&mut app, effects, &mut show) {
            return Ok(());
        }
        if let Some(e) = draw_error {
            return Err(e);
        }
        // Whatever came in may show; a tick only comes while something moves.
        dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_set_and_not_empty_turns_colours_off() {
        assert!(colour_wanted(None));
        assert!(colour_wanted(Some("".as_ref())));
        assert!(!colour_wanted(Some("1".as_ref())));
        assert!(!colour_wanted(Some("yes".as_ref())));
    }
}
