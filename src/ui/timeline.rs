//! The lock-holder timeline: which state each worker was in, cell by cell.
//!
//! A lane is built by sampling the worker's spans over the visible window:
//! each cell covers an equal slice of time and shows the state that took most
//! of that slice. Every time here is on the session's clock, paused stretches
//! already cut out, so a pause leaves no false gap or false run in the lanes.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};

use crate::app::{App, Mode, Session, ZOOMS, Zoom};
use crate::experiment::tally::{Lane, Span as StateSpan};
use crate::ui::{Theme, glyph};

/// The states a cell can be made of, in `Durations` order.
pub const STATES: [Lane; 5] = [Lane::Running, Lane::Waiting, Lane::Io, Lane::Finished, Lane::Failed];

/// Time (ns) spent in each of `STATES` during one cell.
pub type Durations = [u64; 5];

fn index(lane: Lane) -> Option<usize> {
    STATES.iter().position(|s| *s == lane)
}

/// The part of a run the timeline shows, on the session clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Where 0 s is: the start of the run (of both runs, in a race).
    pub origin: u64,
    pub start: u64,
    /// Nanoseconds a cell stands for.
    pub cell: u64,
    pub cells: usize,
    /// The time up to which open spans reach: now, or the run's end.
    pub end: u64,
}

impl Window {
    /// The window of panel `model` for a lane `cells` wide, or None before
    /// its run started.
    pub fn of(app: &App, session: &Session, model: usize, cells: usize) -> Option<Window> {
        let tally = session.models.get(model)?.tally.as_ref()?;
        let started = session.models.iter().filter_map(|r| r.tally.as_ref());
        let now = session.now(app.now);
        let (origin, end) = match session.mode {
            Mode::Race => {
                let origin = started.clone().map(|t| t.requested_at).min().unwrap_or(tally.requested_at);
                let end = if session.active() {
                    now
                } else {
                    started.map(|t| t.last_event).max().unwrap_or(tally.last_event)
                };
                (origin, end)
            }
            Mode::OneAtATime => {
                let end = if session.models[model].over { tally.last_event } else { now };
                (tally.requested_at, end)
            }
        };
        let cells = cells.max(1);
        let end = end.max(origin);
        let span = end - origin;
        let cell = match ZOOMS[app.zoom] {
            Zoom::Cell(d) => d.as_nanos() as u64,
            // At least a millisecond across, so a run that just began is not one cell.
            Zoom::WholeRun => span.max(1_000_000).div_ceil(cells as u64),
        };
        let width = cell * cells as u64;
        // The run fills the lanes from the left, then scrolls.
        let start = if span <= width { origin } else { end - width };
        Some(Window { origin, start, cell, cells, end })
    }

    pub fn width(&self) -> u64 {
        self.cell * self.cells as u64
    }
}

/// How long a worker spent in each state during each cell of the window.
pub fn sample(spans: &[StateSpan], window: &Window) -> Vec<Durations> {
    let mut out = vec![[0u64; 5]; window.cells];
    let dt = window.cell.max(1);
    let (from, to) = (window.start, window.start + window.width());
    let end_of = |s: &StateSpan| s.to.unwrap_or(window.end).min(window.end);
    // Spans are in time order and do not overlap: skip those over before the window.
    let first = spans.partition_point(|s| end_of(s) <= from);
    for span in &spans[first..] {
        let a = span.from.max(from);
        if a >= to {
            break;
        }
        let b = end_of(span).min(to);
        let Some(state) = index(span.lane) else { continue };
        if b <= a {
            continue;
        }
        let mut t = a;
        while t < b {
            let cell = ((t - from) / dt) as usize;
            let cell_end = (from + (cell as u64 + 1) * dt).min(b);
            out[cell][state] += cell_end - t;
            t = cell_end;
        }
    }
    out
}

/// The state that took most of a cell; None for a cell with no data (before
/// the worker started, or in the future).
pub fn dominant(d: &Durations) -> Option<Lane> {
    let (i, most) = d.iter().enumerate().max_by_key(|(i, v)| (**v, usize::MAX - i))?;
    (*most > 0).then_some(STATES[i])
}

/// Who held the GIL of one process in each cell: the worker that ran most of
/// the cell, if running took more of it than the lock stood free.
pub fn holders(lanes: &[(u32, Vec<Durations>)], cells: usize) -> Vec<Option<u32>> {
    (0..cells)
        .map(|c| {
            let covered: u64 = lanes.iter().map(|(_, d)| d[c].iter().sum::<u64>()).max().unwrap_or(0);
            let (worker, held) = lanes.iter().map(|(w, d)| (*w, d[c][0])).max_by_key(|(_, h)| *h)?;
            let total_held: u64 = lanes.iter().map(|(_, d)| d[c][0]).sum();
            let free = covered.saturating_sub(total_held);
            (held > 0 && total_held >= free).then_some(worker)
        })
        .collect()
}

/// One character cell of a lane, with its style.
pub type Cell = (char, Style);

/// A lane, cell by cell: the dominant state's symbol.
pub fn lane_cells(cells: &[Durations], theme: Theme) -> Vec<Cell> {
    cells
        .iter()
        .map(|d| {
            let lane = dominant(d).unwrap_or(Lane::NotStarted);
            (glyph(lane), theme.lane(lane))
        })
        .collect()
}

/// The GIL lane: the holder's digit where a hold begins, a bar while it lasts.
pub fn gil_cells(holders: &[Option<u32>], theme: Theme) -> Vec<Cell> {
    let mut previous = None;
    holders
        .iter()
        .map(|h| {
            let cell = match *h {
                Some(w) if previous == Some(w) => ('▇', theme.worker(w)),
                Some(w) => (worker_mark(w), theme.worker(w).add_modifier(Modifier::BOLD)),
                None => (' ', Style::new()),
            };
            previous = *h;
            cell
        })
        .collect()
}

/// The GIL lane's further rows: the holder's colour, no digits.
pub fn gil_bar_cells(holders: &[Option<u32>], theme: Theme) -> Vec<Cell> {
    holders
        .iter()
        .map(|h| match *h {
            Some(w) => ('▇', theme.worker(w)),
            None => (' ', Style::new()),
        })
        .collect()
}

/// One character per worker: 0–9, then a–z, then A–Z.
pub fn worker_mark(w: u32) -> char {
    const MARKS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    MARKS.get(w as usize).map_or('+', |&b| b as char)
}

/// Writes cells straight into the buffer from `(x, y)`, clipped to `area`.
/// Lanes are most of a large screen; going around ratatui's text layout
/// (grapheme segmentation, width lookups) for them halves a frame's time.
pub fn paint(buf: &mut Buffer, area: Rect, x: u16, y: u16, cells: &[Cell]) {
    if y >= area.bottom() {
        return;
    }
    for (i, (symbol, style)) in cells.iter().enumerate() {
        let Some(cx) = x.checked_add(i as u16).filter(|cx| *cx < area.right()) else { break };
        buf[(cx, y)].set_char(*symbol).set_style(*style);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn span(from: u64, to: Option<u64>, lane: Lane) -> StateSpan {
        StateSpan { from, to, lane }
    }

    #[test]
    fn each_cell_shows_the_state_that_took_most_of_it() {
        let spans = [
            span(0, Some(6), Lane::Running),
            span(6, Some(10), Lane::Waiting),
            span(10, Some(13), Lane::Running),
            span(13, None, Lane::Io),
        ];
        let w = Window { origin: 0, start: 0, cell: 10, cells: 4, end: 25 };
        let cells = sample(&spans, &w);
        let lanes: Vec<Option<Lane>> = cells.iter().map(dominant).collect();
        assert_eq!(lanes, [Some(Lane::Running), Some(Lane::Io), Some(Lane::Io), None]);
        assert_eq!(cells[0], [6, 4, 0, 0, 0]);
        assert_eq!(cells[1], [3, 0, 7, 0, 0]);
        assert_eq!(cells[2], [0, 0, 5, 0, 0], "the open span reaches up to now, not beyond");
    }

    #[test]
    fn the_gil_lane_names_the_holder_and_leaves_free_time_blank() {
        let a = vec![[8, 2, 0, 0, 0], [1, 0, 9, 0, 0], [0, 10, 0, 0, 0]];
        let b = vec![[2, 8, 0, 0, 0], [0, 0, 10, 0, 0], [0, 0, 0, 10, 0]];
        assert_eq!(holders(&[(0, a), (1, b)], 3), [Some(0), None, None]);
    }

    #[test]
    fn workers_get_one_character_each() {
        assert_eq!([worker_mark(0), worker_mark(10), worker_mark(36), worker_mark(99)], ['0', 'a', 'A', '+']);
    }
}
