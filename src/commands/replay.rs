//! `gilscope replay FILE`: a recording shown in the live view, as it ran.
//!
//! The recorded messages are fed into the app at the times they arrived
//! (`--speed` times faster), so the screen is the live view's own: same
//! lanes, figures and results, the same zoom and pan keys. Space pauses the
//! replay, not the recorded run. Nothing is started: no worker, no python,
//! no OS sampler.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crossbeam_channel::{after, never, select};
use ratatui::crossterm::event::{Event, KeyEventKind};

use crate::app::{Effect, Msg, Options};
use crate::cli::ReplayArgs;
use crate::commands::live::{colour_wanted, open_terminal, resize};
use crate::commands::say;
use crate::recording::Recording;
use crate::recording::replay::Player;

/// One frame every this long while the replay plays.
const FRAME: Duration = Duration::from_millis(33);

pub fn main(args: &ReplayArgs) -> ExitCode {
    let recording = match Recording::load(&args.file) {
        Ok(recording) => recording,
        Err(e) => {
            say(&format!("{e}"));
            return ExitCode::from(e.exit_code);
        }
    };
    // After the file: what is wrong with it is the first thing to hear.
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        say("a replay needs a terminal on stdout; `gilscope export` writes a recording as a trace anywhere");
        return ExitCode::from(2);
    }
    let h = &recording.header;
    let python = h.interpreter.python_version.as_ref().map_or(String::new(), |v| format!(", python {v}"));
    let origin = format!("recorded {} on {}{python}", h.saved_at, h.machine.describe());
    let color = colour_wanted(std::env::var_os("NO_COLOR").as_deref());
    let mut player = match Player::new(recording, &Options { color, ..Options::default() }) {
        Ok(player) => player,
        Err(why) => {
            say(&format!("{}: {why}", args.file.display()));
            return ExitCode::FAILURE;
        }
    };
    if let Some(p) = &mut player.app_mut().playback {
        p.speed = args.speed;
    }
    player.app_mut().notice = Some(origin);

    // SIGINT (outside raw mode), SIGTERM and SIGHUP: leave through the front door.
    let terminate = crate::signals::redirect();
    let (mut terminal, input) =
        match open_terminal("a replay needs a terminal ({e}); `gilscope export` works without one") {
            Ok(opened) => opened,
            Err(why) => {
                say(&why);
                return ExitCode::FAILURE;
            }
        };
    let outcome = play(&mut terminal, &mut player, args.speed, &input, &terminate);
    ratatui::restore();
    match outcome {
        Ok(None) => ExitCode::SUCCESS,
        // Ended by a signal: the status a shell expects of it.
        Ok(Some(signal)) => ExitCode::from(crate::signals::exit_status(signal)),
        Err(why) => {
            say(&format!("{}: {why}", args.file.display()));
            ExitCode::FAILURE
        }
    }
}

/// How much of the recording has played: `base` at `mark`, then `speed`
/// times real time unless paused.
struct Clock {
    base: u64,
    mark: Instant,
    speed: f64,
    paused: bool,
}

impl Clock {
    fn played(&self, length: u64) -> u64 {
        let since = if self.paused { 0.0 } else { self.mark.elapsed().as_nanos() as f64 * self.speed };
        (self.base + since as u64).min(length)
    }

    fn set_paused(&mut self, paused: bool, length: u64) {
        if paused != self.paused {
            self.base = self.played(length);
            self.mark = Instant::now();
            self.paused = paused;
        }
    }
}

fn play(
    terminal: &mut ratatui::DefaultTerminal,
    player: &mut Player,
    speed: f64,
    input: &crossbeam_channel::Receiver<Event>,
    terminate: &crossbeam_channel::Receiver<libc::c_int>,
) -> Result<Option<libc::c_int>, String> {
    let mut signalled = None;
    let length = player.end_at - player.start_at;
    let mut clock = Clock { base: 0, mark: Instant::now(), speed, paused: false };
    let mut input = input.clone();
    loop {
        let position = clock.played(length);
        let now = player.start_at + position;
        player.play_until(now)?;
        let app = player.app_mut();
        if let Some(p) = &mut app.playback {
            p.at_ns = position;
        }
        super::live::draw(terminal, app, now).map_err(|e| format!("the terminal failed: {e}"))?;
        let ended = position >= length && player.done();
        let tick = if clock.paused || ended { never() } else { after(FRAME) };
        let msg = select! {
            recv(input) -> event => match event {
                Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => Msg::Viewer(key),
                Ok(Event::Resize(width, height)) => {
                    resize(terminal, width, height).map_err(|e| format!("the terminal failed: {e}"))?;
                    continue;
                }
                Ok(_) => continue,
                Err(_) => {
                    input = never();
                    Msg::Terminate
                }
            },
            recv(terminate) -> signal => {
                signalled = signal.ok();
                Msg::Terminate
            }
            recv(tick) -> _ => continue,
        };
        let app = player.app_mut();
        let effects = app.update(now, msg);
        if effects.contains(&Effect::Quit) {
            return Ok(signalled);
        }
        let paused = app.playback.is_some_and(|p| p.paused);
        clock.set_paused(paused, length);
    }
}
