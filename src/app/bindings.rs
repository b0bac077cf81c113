//! Every key of the live view, in one table. Dispatch, the bottom bar, the
//! help overlay and the README's key table are all read from it, so they
//! cannot disagree (a test checks the README).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::App;
use crate::app::playback::viewer_may;
use crate::app::settings::{SWITCH_STEPS, WORKER_STEPS, step};
use crate::experiment::spec::MAX_WORKERS;

/// What a key asks the app to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    RunPause,
    Reset,
    FewerWorkers,
    MoreWorkers,
    ShorterSwitch,
    LongerSwitch,
    Workload,
    /// Takes model `n` of `model::NAMED` in or out of the comparison.
    ToggleModel(usize),
    /// The subinterpreters' GIL: one each, or shared.
    SubinterpreterGil,
    StartMethod,
    Scoreboard,
    Mode,
    Slower,
    Faster,
    ZoomIn,
    ZoomOut,
    PanBack,
    PanForth,
    PanStart,
    PanLatest,
    Runtime,
    NextLesson,
    PreviousLesson,
    Save,
    Help,
    Quit,
}

/// One key of a binding.
pub struct Key {
    /// How the key is written: "space", "-", "Ctrl-C".
    pub label: &'static str,
    /// The key codes that press it (`-` also answers to `_`, the same key
    /// shifted; `?` to F1).
    codes: &'static [KeyCode],
    /// Pressed with Ctrl.
    ctrl: bool,
    pub action: Action,
    /// Shown in the bottom bar (the other keys of the binding are in `?`).
    in_bar: bool,
}

/// Keys that belong together, with what they do.
pub struct Binding {
    pub keys: &'static [Key],
    /// The word in the bottom bar.
    bar: &'static str,
    /// The line in the help overlay and the README.
    pub help: &'static str,
    /// Lower stays longer in the bottom bar when room runs out.
    priority: u8,
}

const fn key(label: &'static str, codes: &'static [KeyCode], action: Action) -> Key {
    Key { label, codes, ctrl: false, action, in_bar: true }
}

pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: &[key("space", &[KeyCode::Char(' ')], Action::RunPause)],
        bar: "run",
        help: "run · pause (the workers really stop: SIGSTOP) · resume",
        priority: 0,
    },
    Binding {
        keys: &[key("r", &[KeyCode::Char('r')], Action::Reset)],
        bar: "reset",
        help: "reset: stop the run, clear the figures",
        priority: 5,
    },
    Binding {
        keys: &[
            key("-", &[KeyCode::Char('-'), KeyCode::Char('_')], Action::FewerWorkers),
            key("+", &[KeyCode::Char('+'), KeyCode::Char('=')], Action::MoreWorkers),
        ],
        bar: "workers",
        help: "fewer / more workers",
        priority: 2,
    },
    Binding {
        keys: &[
            key("[", &[KeyCode::Char('[')], Action::ShorterSwitch),
            key("]", &[KeyCode::Char(']')], Action::LongerSwitch),
        ],
        bar: "switch",
        help: "shorter / longer switch interval (0.1 ms – 1 s)",
        priority: 4,
    },
    Binding {
        keys: &[key("w", &[KeyCode::Char('w')], Action::Workload)],
        bar: "workload",
        help: "workload: cpu → io → mixed",
        priority: 1,
    },
    Binding {
        keys: &[
            key("1", &[KeyCode::Char('1')], Action::ToggleModel(0)),
            key("2", &[KeyCode::Char('2')], Action::ToggleModel(1)),
            key("3", &[KeyCode::Char('3')], Action::ToggleModel(2)),
            key("4", &[KeyCode::Char('4')], Action::ToggleModel(3)),
        ],
        bar: "models",
        help: "threading / multiprocessing / subinterpreters / free-threaded: in or out",
        priority: 3,
    },
    Binding {
        keys: &[key("g", &[KeyCode::Char('g')], Action::SubinterpreterGil)],
        bar: "GILs",
        help: "subinterpreters: a GIL each / all sharing one (the legacy control)",
        priority: 4,
    },
    Binding {
        keys: &[key("k", &[KeyCode::Char('k')], Action::StartMethod)],
        bar: "start",
        help: "multiprocessing's start method: fork → forkserver → spawn (real CPython)",
        priority: 4,
    },
    Binding {
        keys: &[key("b", &[KeyCode::Char('b')], Action::Scoreboard)],
        bar: "scores",
        help: "the scoreboard: start cost, memory, processes, threads, GILs, speedup",
        priority: 3,
    },
    Binding {
        keys: &[key("m", &[KeyCode::Char('m')], Action::Mode)],
        bar: "mode",
        help: "race (all at once) / one at a time (fair timings)",
        priority: 3,
    },
    Binding {
        keys: &[
            key("s", &[KeyCode::Char('s')], Action::Slower),
            key("S", &[KeyCode::Char('S')], Action::Faster),
        ],
        bar: "pace",
        help: "slower / faster pace",
        priority: 4,
    },
    Binding {
        keys: &[
            key("z", &[KeyCode::Char('z')], Action::ZoomIn),
            key("Z", &[KeyCode::Char('Z')], Action::ZoomOut),
        ],
        bar: "zoom",
        help: "zoom the timeline in / out (1 ms a cell up to the whole run)",
        priority: 2,
    },
    Binding {
        keys: &[
            key("←", &[KeyCode::Left], Action::PanBack),
            key("→", &[KeyCode::Right], Action::PanForth),
            Key {
                label: "Home",
                codes: &[KeyCode::Home],
                ctrl: false,
                action: Action::PanStart,
                in_bar: false,
            },
            Key {
                label: "End",
                codes: &[KeyCode::End],
                ctrl: false,
                action: Action::PanLatest,
                in_bar: false,
            },
        ],
        bar: "pan",
        help: "pan back / forth along the run (Home: its start, End: the newest)",
        priority: 3,
    },
    Binding {
        keys: &[key("c", &[KeyCode::Char('c')], Action::Runtime)],
        bar: "runtime",
        help: "runtime: simulated CPython / the real python3",
        priority: 2,
    },
    Binding {
        keys: &[
            key("l", &[KeyCode::Char('l')], Action::NextLesson),
            key("L", &[KeyCode::Char('L')], Action::PreviousLesson),
        ],
        bar: "lesson",
        help: "next / previous lesson: a question, and settings that answer it",
        priority: 4,
    },
    Binding {
        keys: &[key("R", &[KeyCode::Char('R')], Action::Save)],
        bar: "save",
        help: "save the finished run here, for `gilscope replay FILE`",
        priority: 5,
    },
    Binding {
        keys: &[key("?", &[KeyCode::Char('?'), KeyCode::F(1)], Action::Help)],
        bar: "help",
        help: "help: every key, then what each figure means",
        priority: 0,
    },
    Binding {
        keys: &[
            key("q", &[KeyCode::Char('q')], Action::Quit),
            Key { label: "Esc", codes: &[KeyCode::Esc], ctrl: false, action: Action::Quit, in_bar: false },
            Key {
                label: "Ctrl-C",
                codes: &[KeyCode::Char('c')],
                ctrl: true,
                action: Action::Quit,
                in_bar: false,
            },
        ],
        bar: "quit",
        help: "quit",
        priority: 0,
    },
];

/// The action a key press asks for, if any.
pub fn action(key: &KeyEvent) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    BINDINGS
        .iter()
        .flat_map(|b| b.keys)
        .find(|k| k.ctrl == ctrl && k.codes.contains(&key.code))
        .map(|k| k.action)
}

/// Whether `action` does something now; a key that does not is neither
/// acted on nor shown in the bar.
pub fn enabled(app: &App, action: Action) -> bool {
    let e = &app.experiment;
    match action {
        Action::Reset => app.session.is_some(),
        Action::FewerWorkers => step(&WORKER_STEPS, e.workers, false).is_some(),
        Action::MoreWorkers => step(&WORKER_STEPS, e.workers, true).is_some_and(|n| n <= MAX_WORKERS),
        // Without a GIL there is no interval to switch at.
        Action::ShorterSwitch => e.gil && step(&SWITCH_STEPS, e.switch_interval, false).is_some(),
        Action::LongerSwitch => e.gil && step(&SWITCH_STEPS, e.switch_interval, true).is_some(),
        Action::ZoomIn => app.zoom_step(true).is_some(),
        Action::ZoomOut => app.zoom_step(false).is_some(),
        Action::PanBack | Action::PanStart => app.pan_step(true).is_some(),
        Action::PanForth => app.pan_step(false).is_some(),
        Action::PanLatest => app.view.pan.is_some(),
        Action::NextLesson => app.lesson_step(true).is_some(),
        Action::PreviousLesson => app.lesson_step(false).is_some(),
        Action::Save => app.session.as_ref().is_some_and(|s| !s.active()),
        Action::ToggleModel(n) => {
            // At least one model stays.
            let model = crate::experiment::model::NAMED[n.min(3)];
            !(app.models.len() == 1 && app.has_model(model))
        }
        Action::SubinterpreterGil => app.models.iter().any(|m| m.own_interpreters()),
        Action::StartMethod => {
            e.runtime == crate::protocol::Runtime::Cpython
                && app.models.contains(&crate::experiment::spec::Model::Processes)
        }
        Action::RunPause
        | Action::Workload
        | Action::Scoreboard
        | Action::Mode
        | Action::Slower
        | Action::Faster
        | Action::Runtime
        | Action::Help
        | Action::Quit => true,
    }
}

/// One entry of the bottom bar.
pub struct BarEntry {
    pub keys: String,
    pub word: &'static str,
    pub priority: u8,
}

/// The bottom bar: every binding with a key that works now (in a replay,
/// those the viewer may press).
pub fn bar(app: &App) -> Vec<BarEntry> {
    let works = |action| match app.playback {
        None => enabled(app, action),
        // A replay that ended has nothing left to pause.
        Some(p) => enabled(app, action) && viewer_may(action) && !(action == Action::RunPause && p.ended()),
    };
    BINDINGS
        .iter()
        .filter_map(|b| {
            // The lesson keys show during a lesson; `?` lists them always.
            let lesson_key = |k: &&Key| {
                !matches!(k.action, Action::NextLesson | Action::PreviousLesson) || app.lesson.is_some()
            };
            let keys: String = b
                .keys
                .iter()
                .filter(|k| k.in_bar && works(k.action))
                .filter(lesson_key)
                .map(|k| k.label)
                .collect();
            let word = match b.keys[0].action {
                Action::RunPause if app.playback.is_some_and(|p| p.paused) => "resume replay",
                Action::RunPause if app.playback.is_some() => "pause replay",
                Action::RunPause if app.paused() => "resume",
                Action::RunPause if app.busy() => "pause",
                Action::Help
                    if app.help == Some(crate::app::HelpPage::Keys)
                        && app.help_layout == crate::app::HelpLayout::Paged =>
                {
                    "figures"
                }
                Action::Help if app.help.is_some() => "close help",
                _ => b.bar,
            };
            (!keys.is_empty()).then_some(BarEntry { keys, word, priority: b.priority })
        })
        .collect()
}

impl Binding {
    /// The keys as the help overlay writes them: "- +", "q Esc Ctrl-C".
    pub fn keys_label(&self) -> String {
        self.keys.iter().map(|k| k.label).collect::<Vec<_>>().join(" ")
    }

    /// The binding's row in the README's key table.
    #[cfg(test)]
    pub fn readme_row(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(|k| format!("`{}`", k.label)).collect();
        format!("| {} | {} |", keys.join(" "), self.help)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_code_means_one_thing() {
        let mut seen = Vec::new();
        for k in BINDINGS.iter().flat_map(|b| b.keys) {
            for code in k.codes {
                assert!(!seen.contains(&(*code, k.ctrl)), "{code:?} (ctrl {}) is bound twice", k.ctrl);
                seen.push((*code, k.ctrl));
            }
        }
    }

    #[test]
    fn ctrl_c_quits_and_c_switches_the_runtime() {
        let c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(&c), Some(Action::Runtime));
        assert_eq!(action(&ctrl_c), Some(Action::Quit));
        assert_eq!(action(&KeyEvent::new(KeyCode::Char('S'), KeyModifiers::SHIFT)), Some(Action::Faster));
    }

    #[test]
    fn the_readme_lists_every_key_as_the_table_says() {
        let readme = include_str!("../../README.md");
        let rows: Vec<&str> = readme
            .lines()
            .skip_while(|l| !l.starts_with("| key | does |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let expected: Vec<String> = BINDINGS.iter().map(Binding::readme_row).collect();
        assert_eq!(rows, expected, "the README's key table differs from src/app/bindings.rs");
    }
}
