//! The live view's main loop (`gilscope` without a subcommand): terminal
//! in, effects out.
//!
//! One thread (this one, the main thread) owns the terminal and every
//! running experiment. It waits on one `select!` over terminal input, worker
//! reports, OS samples, termination signals and a frame tick. The tick only
//! exists while something moves on screen, so an idle gilscope sleeps.
//!
//! Runs start on threads of their own (the supervisor's), which live as long
//! as their processes: the main loop never waits for a process to start, so
//! it keeps drawing and answers `q` at once whatever is starting.
//!
//! Every message reaches the app through a recording tape, so a finished
//! session can be saved (`R`) and replayed (`gilscope replay`).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, after, never, select};
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use ratatui::layout::Rect;
use ratatui::{DefaultTerminal, Terminal, TerminalOptions, Viewport};

use crate::app::{App, DEFAULT_PACE, Effect, Msg, Options};
use crate::cli::ExperimentArgs;
use crate::clock::now_ns;
use crate::commands::say;
use crate::cpython::{Python, discover};
use crate::experiment::matrix::Need;
use crate::experiment::plan::Plan;
use crate::experiment::silence_limit;
use crate::experiment::supervisor::{self, RunId, RunStart, Running};
use crate::monitor::{self, Sample};
use crate::protocol::Runtime;
use crate::recording::tape::{Context, Tape};
use crate::recording::{Machine, new_file_name};
use crate::signals;

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
    // Drawn into a pipe or a file, the screen would be lost and the keys
    // would go nowhere.
    if !std::io::stdout().is_terminal() {
        say("the live view needs a terminal on stdout; `gilscope run` prints its figures anywhere");
        return ExitCode::from(2);
    }
    let mut plan = match Plan::measure() {
        Ok(plan) => plan,
        Err(why) => {
            say(&why);
            return ExitCode::FAILURE;
        }
    };
    let mut notice = plan.notes.first().cloned();
    // The runtime key (`c`) switches between the simulation and the real
    // interpreter. Without --runtime the view opens on the real one where
    // it can run: it is asked on a thread of its own once the screen is up,
    // and the simulation shows meanwhile (or for good, with the reason, if
    // it cannot). With --runtime sim it is asked when `c` is first pressed.
    let choice = args.runtime();
    let first = choice.runtimes()[0];
    let (found_tx, found_rx) = crossbeam_channel::bounded(1);
    let runtimes = if choice.runtimes().contains(&Runtime::Cpython) {
        match Python::probe(&args.python) {
            Ok(python) => {
                notice = plan.use_python(python.clone()).or(notice);
                discover_for(python, &found_tx);
                let other = if first == Runtime::Sim { Runtime::Cpython } else { Runtime::Sim };
                vec![first, other]
            }
            Err(why) => {
                say(&format!("--python: {why}"));
                return ExitCode::from(2);
            }
        }
    } else {
        vec![Runtime::Sim]
    };
    let color = colour_wanted(std::env::var_os("NO_COLOR").as_deref());
    let options = Options { color, runtimes, cores: crate::cli::cores(), ..Options::default() };
    let mut app = App::new(args.experiment(DEFAULT_PACE, plan.iteration_ns()), options, now_ns());
    app.notice = notice;
    if let Some(models) = args.chosen_models() {
        app.models = models;
    }
    if let Some(index) = lesson {
        // Nothing runs yet: opening a lesson only sets the settings.
        app.open_lesson(index, &mut Vec::new());
    }
    let real_by_default = args.runtime.is_none();
    if real_by_default {
        app.open_on_real();
    } else if app.options.runtimes.contains(&Runtime::Cpython) {
        // `discover_for` above is looking already.
        app.looking_for_interpreters();
    }

    // SIGINT (outside raw mode), SIGTERM and SIGHUP: leave through the front door.
    let terminate = signals::redirect();
    let (watch_tx, watch_rx) = crossbeam_channel::unbounded();
    let (sample_tx, sample_rx) = crossbeam_channel::bounded(4);
    if let Err(e) = monitor::spawn(watch_rx, sample_tx) {
        say(&format!("cannot start the OS sampler: {e}"));
        return ExitCode::FAILURE;
    }

    let (mut terminal, input) = match open_terminal(
        "the interactive view needs a terminal ({e}); `gilscope run` works without one",
    ) {
        Ok(opened) => opened,
        Err(why) => {
            say(&why);
            return ExitCode::FAILURE;
        }
    };
    let (answers_tx, answers) = crossbeam_channel::bounded(1);
    let mut world = World {
        plan,
        python: args.python.clone(),
        answers: answers_tx,
        found: found_tx,
        runs: HashMap::new(),
        watch: watch_tx,
        events: supervisor::channel(),
        tape: Tape::default(),
        machine: Machine::here(crate::cli::cores()),
    };
    if real_by_default {
        world.ask_python();
    }
    let channels = Channels { input, samples: sample_rx, terminate, answers, found: found_rx };
    let outcome = main_loop(&mut terminal, app, &mut world, channels);
    // Workers first: killing them takes no terminal. Then whatever else
    // was started (an interpreter still being asked, and its children).
    world.runs.clear();
    crate::children::kill_every_group();
    ratatui::restore();
    match outcome {
        Ok(None) => ExitCode::SUCCESS,
        // Ended by a signal: the status a shell expects of it.
        Ok(Some(signal)) => ExitCode::from(signals::exit_status(signal)),
        Err(e) => {
            say(&format!("the terminal failed: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Where the main loop's messages come from, beside the workers' reports.
struct Channels {
    input: Receiver<Event>,
    samples: Receiver<Sample>,
    /// Termination signals, by number.
    terminate: Receiver<libc::c_int>,
    /// The interpreter's answer, when it was asked whether it can run.
    answers: Receiver<Result<Python, String>>,
    /// The interpreters for the models the chosen one cannot run, once looked for.
    found: Receiver<Found>,
}

/// Interpreters for subinterpreters with a GIL each, and for free-threading.
type Found = (Option<Python>, Option<Python>);

/// Looks, on a thread of its own, for interpreters that run the models
/// `main` cannot: probing each takes a while, and the screen goes on meanwhile.
fn discover_for(main: Python, found: &Sender<Found>) {
    let answer = found.clone();
    let spawned = std::thread::Builder::new().name("discover".into()).spawn(move || {
        let find =
            |need: Need| if need.fits(&main) { Some(main.clone()) } else { discover::find(|p| need.fits(p)) };
        let _ = answer.try_send((find(Need::Subinterpreters), find(Need::FreeThreaded)));
    });
    // Without the thread nothing is found, and nothing waits for it.
    if spawned.is_err() {
        let _ = found.try_send((None, None));
    }
}

/// Takes over the terminal (raw mode, alternate screen) and starts reading
/// its keys; on failure the terminal is given back and the line to say is
/// `no_terminal` with `{e}` replaced by the cause.
///
/// The viewport is fixed and follows the terminal's resize events (see
/// [`resize`]): a full-screen one asks the terminal for its size before every
/// frame, which crossterm does by opening `/dev/tty` each time, about a
/// tenth of a frame's cost.
pub(super) fn open_terminal(no_terminal: &str) -> Result<(DefaultTerminal, Receiver<Event>), String> {
    let failed = |e: std::io::Error| {
        ratatui::restore();
        no_terminal.replace("{e}", &e.to_string())
    };
    let full_screen = ratatui::try_init().map_err(failed)?;
    drop(full_screen);
    let (width, height) = ratatui::crossterm::terminal::size().map_err(failed)?;
    let viewport = Viewport::Fixed(Rect::new(0, 0, width, height));
    let mut terminal =
        Terminal::with_options(CrosstermBackend::new(std::io::stdout()), TerminalOptions { viewport })
            .map_err(failed)?;
    // Shown again when the terminal is dropped.
    terminal.hide_cursor().map_err(failed)?;
    let input = spawn_input().map_err(|e| {
        ratatui::restore();
        format!("cannot read the keyboard: {e}")
    })?;
    Ok((terminal, input))
}

/// Fits the fixed viewport to a terminal now `width`×`height`.
pub(super) fn resize(terminal: &mut DefaultTerminal, width: u16, height: u16) -> std::io::Result<()> {
    terminal.resize(Rect::new(0, 0, width, height))
}

/// Reads terminal events on a thread of its own: `event::read` blocks.
fn spawn_input() -> std::io::Result<Receiver<Event>> {
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
    /// The interpreter `c` asks for (`--python`).
    python: std::path::PathBuf,
    answers: Sender<Result<Python, String>>,
    /// Dropping a `Running` kills its processes.
    runs: HashMap<RunId, Running>,
    watch: Sender<Vec<u32>>,
    /// Where the interpreters found for subinterpreters and free-threading go.
    found: Sender<Found>,
    events: (Sender<supervisor::Event>, Receiver<supervisor::Event>),
    /// Keeps the session on screen, to save it.
    tape: Tape,
    machine: Machine,
}

impl World {
    /// Carries out effects, feeding what they cause back into the app.
    /// Runs asked for together start together, as one race, on threads of
    /// their own: this returns at once, and their processes come up as
    /// `Event::Started`. Returns false once the app asked to quit.
    fn carry_out(&mut self, app: &mut App, effects: Vec<Effect>) -> bool {
        let mut queue: std::collections::VecDeque<Effect> = effects.into();
        let mut go_on = true;
        let mut race = Vec::new();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Start { run, spec } => match self.plan.launches(&spec) {
                    Ok(launches) => race.push(RunStart { run, launches, silence: silence_limit(&spec) }),
                    Err(why) => queue.extend(self.tape.feed(app, now_ns(), Msg::StartFailed { run, why })),
                },
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
                Effect::AskPython => self.ask_python(),
                Effect::Save => {
                    let saved = self.save(app);
                    queue.extend(app.update(now_ns(), Msg::Saved(saved)));
                }
                Effect::Quit => go_on = false,
            }
        }
        if go_on && !race.is_empty() {
            for running in supervisor::start(race, &self.events.0) {
                self.runs.insert(running.run, running);
            }
        }
        go_on
    }

    /// What one event of the supervisor means to the app.
    fn hear(&self, event: supervisor::Event, msgs: &mut Vec<Msg>) {
        match event {
            supervisor::Event::Started { run, pids } => {
                // A run killed while it started is no news.
                if let Some(running) = self.runs.get(&run) {
                    msgs.push(Msg::Started { run, requested_at: running.requested_at, pids });
                }
            }
            supervisor::Event::StartFailed { run, why } => msgs.push(Msg::StartFailed { run, why }),
            supervisor::Event::Reports(reports) => msgs.extend(reports.into_iter().map(Msg::Report)),
        }
    }
}

impl World {
    /// Saves the finished session to a new file in the current folder.
    fn save(&self, app: &App) -> Result<String, String> {
        let context = Context {
            machine: self.machine.clone(),
            python: self.plan.python.as_ref().map(|p| (p.path.display().to_string(), p.version.clone())),
        };
        let recording = self.tape.recording(app, &context)?;
        let path = new_file_name(std::path::Path::new("."));
        recording.save(&path)?;
        Ok(path.display().to_string())
    }

    /// Asks the interpreter whether it can run, on a thread of its own (it
    /// may take up to `cpython::PROBE_LIMIT`): the screen goes on meanwhile.
    /// The thread waits for the interpreter, so the interpreter's
    /// `PR_SET_PDEATHSIG` holds as long as it runs.
    fn ask_python(&self) {
        let (path, answers) = (self.python.clone(), self.answers.clone());
        let asked = std::thread::Builder::new().name("ask-python".into()).spawn(move || {
            let _ = answers.send(Python::probe(&path));
        });
        if let Err(e) = asked {
            let _ = self.answers.try_send(Err(format!("cannot ask it: {e}")));
        }
    }
}

/// Draws a frame, and tells the app what the screen held: the zoom, pan
/// and help keys must know.
/// Draws one frame of `app`, and tells it at `now` when the frame found the
/// screen's lanes or help laid out otherwise than it knew.
pub(super) fn draw(terminal: &mut DefaultTerminal, app: &mut App, now: u64) -> std::io::Result<()> {
    if let msg @ Msg::Viewport { lane_cells, help } = present(terminal, app)?
        && (lane_cells, help) != (app.lane_cells, app.help_layout)
    {
        app.update(now, msg);
    }
    Ok(())
}

/// Draws one frame of `app`; returns what the frame found of the screen
/// (a [`Msg::Viewport`]). The cursor was hidden once, when the terminal was
/// opened: ratatui's `draw` hides it again at every frame, one more write
/// to the terminal each time.
fn present(terminal: &mut DefaultTerminal, app: &App) -> std::io::Result<Msg> {
    let mut frame = terminal.get_frame();
    let viewport = crate::ui::viewport(app, frame.area());
    crate::ui::render(&mut frame, app);
    terminal.flush()?;
    terminal.swap_buffers();
    ratatui::backend::Backend::flush(terminal.backend_mut())?;
    Ok(viewport)
}

/// Runs the app until it quits; the termination signal that made it quit, if one did.
fn main_loop(
    terminal: &mut DefaultTerminal,
    mut app: App,
    world: &mut World,
    channels: Channels,
) -> std::io::Result<Option<libc::c_int>> {
    let events = world.events.1.clone();
    let Channels { mut input, mut samples, terminate, answers, mut found } = channels;
    let mut signalled = None;
    let mut calibration_note = None;
    let mut dirty = true;
    // A key's answer is drawn at once, not at the next frame's turn.
    let mut key_pressed = false;
    let mut last_frame: Option<Instant> = None;
    loop {
        let frame = app.frame_interval();
        let since = last_frame.map_or(frame, |t| t.elapsed());
        if dirty && (since >= frame || key_pressed) {
            key_pressed = false;
            draw(terminal, &mut app, now_ns())?;
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
        let event_wakeups = if animating { never() } else { events.clone() };
        // OS samples too: each wake-up of this thread costs about a tenth
        // of a frame's work.
        let sample_wakeups = if animating { never() } else { samples.clone() };
        let mut msgs = Vec::new();
        select! {
            recv(input) -> event => match event {
                Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => {
                    key_pressed = true;
                    msgs.push(Msg::Key(key));
                }
                Ok(Event::Resize(width, height)) => {
                    resize(terminal, width, height)?;
                    dirty = true;
                    continue;
                }
                Ok(_) => continue,
                // The terminal is gone: nobody is left to watch.
                Err(_) => {
                    input = never();
                    msgs.push(Msg::Terminate);
                }
            },
            recv(event_wakeups) -> event => match event {
                Ok(event) => world.hear(event, &mut msgs),
                Err(_) => continue,
            },
            recv(sample_wakeups) -> sample => if let Ok(sample) = sample { msgs.push(Msg::Sample(sample)) } else {
                samples = never();
                continue;
            },
            recv(terminate) -> signal => {
                signalled = signal.ok();
                msgs.push(Msg::Terminate);
            }
            recv(answers) -> answer => match answer {
                Ok(Ok(python)) => {
                    discover_for(python.clone(), &world.found);
                    app.looking_for_interpreters();
                    calibration_note = world.plan.use_python(python);
                    msgs.push(Msg::PythonAnswered(Ok(())));
                }
                Ok(Err(why)) => msgs.push(Msg::PythonAnswered(Err(why))),
                Err(_) => continue,
            },
            recv(found) -> interpreters => {
                found = never();
                let Ok((newer, free_threaded)) = interpreters else { continue };
                msgs.push(Msg::Interpreters { subinterpreters: newer.is_some(), free_threaded: free_threaded.is_some() });
                world.plan.newer_python = newer;
                world.plan.free_threaded_python = free_threaded;
            }
            recv(tick) -> _ => {
                msgs.push(Msg::Tick);
                msgs.extend(samples.try_iter().map(Msg::Sample));
            }
        }
        // Everything the workers said meanwhile, up to a batch: the channel
        // is drained as fast as they write, and the screen still redraws.
        if matches!(
            msgs.first(),
            Some(Msg::Report(_) | Msg::Started { .. } | Msg::StartFailed { .. } | Msg::Tick)
        ) {
            while msgs.len() < REPORT_BATCH {
                let Ok(event) = events.try_recv() else { break };
                world.hear(event, &mut msgs);
            }
        }
        let now = now_ns();
        let mut effects = Vec::new();
        for msg in msgs {
            effects.extend(world.tape.feed(&mut app, now, msg));
        }
        // What the interpreter's answer means for the calibration, said once the switch is made.
        if let Some(note) = calibration_note.take() {
            app.notice = Some(note);
        }
        if !world.carry_out(&mut app, effects) {
            return Ok(signalled);
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
