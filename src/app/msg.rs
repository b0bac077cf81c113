//! What goes into the app (messages) and what comes out (effects).

use ratatui::crossterm::event::KeyEvent;

use crate::app::HelpLayout;
use crate::experiment::spec::RunSpec;
use crate::experiment::supervisor::{Report, RunId};
use crate::monitor::Sample;

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
    /// The interpreter asked for by [`Effect::AskPython`] answered (`Ok`), or
    /// why it cannot serve as the real `CPython`.
    PythonAnswered(Result<(), String>),
    /// Time passed (the timeline scrolls).
    Tick,
    /// The last frame's lanes were this many cells wide.
    Viewport {
        lane_cells: usize,
        help: HelpLayout,
    },
    /// Interpreters were found (or not) for the models the chosen one
    /// cannot run: subinterpreters with a GIL each, free-threading.
    Interpreters {
        subinterpreters: bool,
        free_threaded: bool,
    },
    /// SIGTERM or SIGHUP.
    Terminate,
    /// A key pressed by whoever watches a replay: it steers the replay,
    /// never the recorded run (whose own keys come as `Key`).
    Viewer(KeyEvent),
    /// The loop saved the session on screen (to this path), or could not (why).
    Saved(Result<String, String>),
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
    /// Find out whether the real `CPython` can run (the answer comes back
    /// as [`Msg::PythonAnswered`]): asked only once the user wants it.
    AskPython,
    /// Write the session on screen to a recording file.
    Save,
    Quit,
}
