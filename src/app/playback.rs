//! The app replaying a recording: the recorded messages come in as they
//! came live (their keys included, acting as they did: a recorded pause
//! pauses), and whoever watches steers the replay with keys of their own
//! ([`Msg::Viewer`](crate::app::Msg::Viewer)): zoom, pan, help, quit, and
//! space to pause the replay itself. Nothing they press changes the
//! recorded run.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind};

use crate::app::bindings::{self, Action};
use crate::app::{App, Effect};

/// Where a replay stands; the replay's loop keeps it up to date.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Playback {
    /// Recorded time played per real second.
    pub speed: f64,
    /// How far into the recording, and how long it is (ns).
    pub at_ns: u64,
    pub length_ns: u64,
    /// The viewer paused the replay (not the recorded run).
    pub paused: bool,
}

impl Playback {
    pub fn ended(&self) -> bool {
        self.at_ns >= self.length_ns
    }
}

/// What a viewer may do to a replay: look around (the scoreboard too), and
/// pause it.
pub fn viewer_may(action: Action) -> bool {
    matches!(
        action,
        Action::RunPause
            | Action::Scoreboard
            | Action::ZoomIn
            | Action::ZoomOut
            | Action::PanBack
            | Action::PanForth
            | Action::PanStart
            | Action::PanLatest
            | Action::Help
            | Action::Quit
    )
}

impl App {
    /// A key pressed by whoever watches the replay.
    pub(super) fn viewer_key(&mut self, key: KeyEvent, effects: &mut Vec<Effect>) {
        if key.kind != KeyEventKind::Press {
            return;
        }
        self.notice = None;
        if self.help.is_some() && key.code == KeyCode::Esc {
            self.help = None;
            return;
        }
        let Some(action) = bindings::action(&key) else { return };
        if !viewer_may(action) {
            self.notice = Some("a replay shows what was recorded: its settings stay as they were".to_owned());
            return;
        }
        if !bindings::enabled(self, action) {
            return;
        }
        match action {
            Action::RunPause => {
                if let Some(p) = &mut self.playback {
                    p.paused = !p.paused;
                }
            }
            action => self.act(action, effects),
        }
    }
}
