//! The values the keys step through, and the live view's defaults.

use std::time::Duration;

/// How slowed down the demo runs by default: about 4 s for one worker of
/// 4,000,000 iterations, so a class can follow a run.
pub const DEFAULT_PACE: u32 = 15;

/// The steps of `[` and `]`, like `sys.setswitchinterval` values a teacher
/// would try (`CPython`'s default is 5 ms).
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
    Duration::from_secs(1),
];

/// The steps of `s`: how many times slower than `CPython` an iteration runs.
pub const PACE_STEPS: [u32; 9] = [1, 2, 5, 10, 15, 20, 30, 50, 100];

/// The steps of `-` and `+`: one at a time while it matters, then faster.
pub const WORKER_STEPS: [u32; 18] = [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256];

/// How much time one cell of a lane stands for: a level of the tracks
/// (an index into `experiment::track::LEVELS_NS`, 1 ms up to a minute), or
/// the whole run squeezed in (the finest level it fits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zoom {
    Level(usize),
    WholeRun,
}

/// A quarter second a cell: a demo run fills a lane of an 80-column screen.
pub const DEFAULT_ZOOM: Zoom = Zoom::Level(7);
/// 20 ms a cell: an unpaced `CPython` run of 4,000,000 iterations fills a lane.
pub const CPYTHON_ZOOM: Zoom = Zoom::Level(4);

/// The zoom a run of `e` opens at: paced runs last as long under either
/// runtime (the simulation's iterations are slower, the interpreter runs
/// more of them); an unpaced real interpreter's last about a second.
pub fn zoom_for(e: &crate::experiment::spec::Experiment) -> Zoom {
    if e.runtime == crate::protocol::Runtime::Cpython && e.pace <= 1 { CPYTHON_ZOOM } else { DEFAULT_ZOOM }
}

/// What part of the run the timeline shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub zoom: Zoom,
    /// Where the window starts, in ns from the run's start; None follows
    /// the newest data.
    pub pan: Option<u64>,
    /// The user zoomed or panned during this session: a finished run is
    /// then left as they set it, else it is fitted to the window.
    pub touched: bool,
}

impl Default for View {
    fn default() -> Self {
        View { zoom: DEFAULT_ZOOM, pan: None, touched: false }
    }
}

/// The pages of the `?` overlay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelpPage {
    /// Every key, and the lane symbols.
    Keys,
    /// What each figure on screen is, and how it is measured.
    Figures,
}

/// How the `?` overlay fits the screen, as the last frame drew it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HelpLayout {
    /// One page at a time: keys, then figures.
    #[default]
    Paged,
    /// Both pages at once: one `?` opens it, the next closes it.
    Whole,
}

/// How the models share the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// All at once, side by side: a visible race on shared cores.
    Race,
    /// One model after the other: each has the cores to itself, so the
    /// timings are honest.
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

/// The next value of `steps` above (`up`) or below `current`, if any.
pub fn step<T: Copy + PartialOrd>(steps: &[T], current: T, up: bool) -> Option<T> {
    if up {
        steps.iter().find(|&&s| s > current).copied()
    } else {
        steps.iter().rev().find(|&&s| s < current).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_go_to_the_next_value_and_stop_at_the_ends() {
        assert_eq!(step(&WORKER_STEPS, 8, true), Some(12));
        assert_eq!(step(&WORKER_STEPS, 9, false), Some(8));
        assert_eq!(step(&WORKER_STEPS, 256, true), None);
        assert_eq!(step(&WORKER_STEPS, 1, false), None);
    }
}
