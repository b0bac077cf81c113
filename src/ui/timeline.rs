//! The lock-holder timeline: what each worker did, cell by cell, and who
//! held the GIL.
//!
//! One rule for every lane: a cell is drawn solid only when one thing
//! happened throughout it (one state; for the GIL lane, one holder). A cell
//! that mixes shows the mix: the running share as a block of eighths
//! (▁▂▃▄▅▆▇), never the full block, so regular 5 ms switching seen through
//! 250 ms cells reads as two half-full lanes, not as long solid holds. In
//! the GIL lane a cell in which the lock changed hands is ╳, and a second
//! row, where there is room, counts the takes. Every time here is on the
//! session's clock (paused stretches cut out).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};

use crate::app::{App, Mode, Session};
use crate::experiment::tally::{Lane, Tally};
use crate::experiment::track::{LEVELS_NS, Mix};
use crate::ui::{Theme, glyph};

/// The part of a run the timeline shows, on the session clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Where 0 s is: the start of this panel's run (of all runs, in a race).
    pub origin: u64,
    /// The first cell's index on the tally's grid, and where it starts.
    pub first: usize,
    pub start: u64,
    /// The track level (an index into `LEVELS_NS`), how many of its bins
    /// make a cell, and the cell in ns.
    pub level: usize,
    pub bins: usize,
    pub cell: u64,
    pub cells: usize,
    /// Now, or the run's end: no state reaches beyond it.
    pub now: u64,
    /// Panned away from the newest data (the user pressed ← or Home).
    pub panned: bool,
}

impl Window {
    /// The window of panel `model` for a lane `cells` wide, or None before
    /// its run started.
    pub fn of(app: &App, session: &Session, model: usize, cells: usize) -> Option<Window> {
        let tally = session.models.get(model)?.tally.as_ref()?;
        let cells = cells.max(1);
        let now = session.now(app.now);
        let (origin, end) = session.extent(model, now)?;
        // Every panel on one time scale: the level is chosen for the longest.
        let (level, bins) = session.scale_for(app.view.zoom, now, cells);
        let cell = LEVELS_NS[level] * bins as u64;
        let grid = tally.origin;
        let index = |t: u64| (t.saturating_sub(grid) / cell) as usize;
        let first_of_run = index(origin);
        // The newest cells shown are those the records reach (in a race,
        // any panel's), not now: a real `CPython`'s lanes come up to a tenth
        // of a second late, which at a fine zoom is the whole window.
        let reached = match session.mode {
            Mode::Race => session.models.iter().filter_map(|r| r.tally.as_ref()).map(|t| t.last_event).max(),
            Mode::OneAtATime => Some(tally.last_event),
        };
        let newest = reached.map_or(end, |r| end.min(r));
        let last = index(newest.saturating_sub(1).max(origin));
        // The run fills the lanes from the left, then the newest end stays in
        // view, unless the user panned.
        let latest = (last + 1).saturating_sub(cells).max(first_of_run);
        let first = match app.view.pan {
            Some(offset) => (first_of_run + (offset / cell) as usize).min(latest),
            None => latest,
        };
        Some(Window {
            origin,
            first,
            start: grid + first as u64 * cell,
            level,
            bins,
            cell,
            cells,
            now: end,
            panned: first < latest,
        })
    }

    pub fn width(&self) -> u64 {
        self.cell * self.cells as u64
    }
}

/// What worker `w` did in each cell of the window, as far as the run's
/// records tell, not up to now. Records come in batches (a real `CPython`'s
/// lanes wait for its GIL's reads, up to a tenth of a second), and what a
/// worker does after them is not known yet: drawn on to now, its state
/// would invent the newest cells at a fine zoom. A worker's state is drawn
/// up to the run's newest record, and a running one's only up to its own:
/// another worker's newer records may already show it taking the GIL
/// (a running worker writes a record at least every 15 ms of work).
pub fn mixes(tally: &Tally, w: usize, window: &Window) -> Vec<Mix> {
    let Some(worker) = tally.workers.get(w) else { return vec![Mix::default(); window.cells] };
    let known = window.now.min(tally.last_event);
    let known = if worker.track.lane() == Lane::Running { known.min(worker.seen_until) } else { known };
    (0..window.cells)
        .map(|c| worker.track.cells(window.level, (window.first + c) * window.bins, window.bins, known))
        .collect()
}

/// The eighth blocks, by running share: index k is k eighths full.
const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// How full a cell is drawn, in eighths: 8 only for a cell that ran
/// throughout, 1–7 for a mix (never 0 when it ran at all, never 8 when it
/// did not run throughout), 0 when it did not run.
pub fn eighths(mix: &Mix) -> usize {
    match mix.pure() {
        Some(Lane::Running) => 8,
        Some(_) => 0,
        None if mix.run <= 0.0 => 0,
        None => ((mix.running_share() * 8.0).round() as usize).clamp(1, 7),
    }
}

/// One character cell of a lane, with its style.
pub type Cell = (char, Style);

/// A worker's lane: its state's symbol where one state held the whole
/// cell, else the running share in eighths (over the colour of what else
/// it did), else the state that took most of it.
pub fn lane_cells(mixes: &[Mix], theme: Theme) -> Vec<Cell> {
    mixes
        .iter()
        .map(|mix| {
            if let Some(lane) = mix.pure() {
                return (glyph(lane), theme.lane(lane));
            }
            let Some(dominant) = mix.dominant() else { return (' ', Style::new()) };
            match eighths(mix) {
                0 => (glyph(dominant), theme.lane(dominant)),
                k => {
                    let other = if dominant == Lane::Running { Lane::Waiting } else { dominant };
                    (EIGHTHS[k], theme.lane(Lane::Running).patch(theme.behind(other)))
                }
            }
        })
        .collect()
}

/// Who held the GIL of one process in a cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Holding {
    /// Nobody ran: the lock stood free (or nothing happened yet).
    Free,
    /// One worker held it throughout the cell.
    Solid(u32),
    /// One worker held it for part of the cell (the share, 0–1).
    Part(u32, f64),
    /// It changed hands inside the cell: the share held, and the takes.
    Switching(f64, u32),
}

/// The GIL of one process, cell by cell, from its workers' lanes.
pub fn holdings(lanes: &[(u32, Vec<Mix>)], cells: usize) -> Vec<Holding> {
    (0..cells)
        .map(|c| {
            let running: Vec<(u32, &Mix)> =
                lanes.iter().filter(|(_, m)| m[c].run > 0.0).map(|(w, m)| (*w, &m[c])).collect();
            let covered = lanes.iter().map(|(_, m)| m[c].covered()).fold(0.0, f64::max);
            let held: f64 = running.iter().map(|(_, m)| m.run).sum();
            let share = if covered > 0.0 { (held / covered).min(1.0) } else { 0.0 };
            let takes: u32 = running.iter().map(|(_, m)| m.takes).sum();
            // One holder for the whole cell is one hold, as far as the lock
            // can tell, even if it entered the cell by taking it.
            let whole = 1.0 - 1.0 / 255.0;
            match running.as_slice() {
                [] => Holding::Free,
                [(w, mix)] if mix.takes <= 1 && share >= whole => Holding::Solid(*w),
                [(w, mix)] if mix.takes <= 1 => Holding::Part(*w, share),
                _ => Holding::Switching(share, takes),
            }
        })
        .collect()
}

/// The GIL lane: the holder's mark where a hold begins and its bar while it
/// lasts; a share in eighths where one holder had it part of the cell; ╳
/// where it changed hands.
pub fn gil_cells(holdings: &[Holding], theme: Theme) -> Vec<Cell> {
    let mut previous = None;
    holdings
        .iter()
        .map(|h| {
            let cell = match *h {
                Holding::Solid(w) if previous == Some(w) => ('▇', theme.worker(w)),
                Holding::Solid(w) => (worker_mark(w), theme.worker(w).add_modifier(Modifier::BOLD)),
                Holding::Part(w, share) => {
                    (EIGHTHS[((share * 8.0).round() as usize).clamp(1, 7)], theme.worker(w))
                }
                Holding::Switching(..) => ('╳', theme.switching()),
                Holding::Free => (' ', Style::new()),
            };
            previous = match *h {
                Holding::Solid(w) => Some(w),
                _ => None,
            };
            cell
        })
        .collect()
}

/// The GIL lane's second row: how many times the lock was taken in each cell
/// where it changed hands (1–9, + for ten or more).
pub fn take_counts(holdings: &[Holding], theme: Theme) -> Vec<Cell> {
    holdings
        .iter()
        .map(|h| match *h {
            Holding::Switching(_, n) if n >= 10 => ('+', theme.dim()),
            Holding::Switching(_, n) => (char::from_digit(n.max(1), 10).unwrap_or('+'), theme.dim()),
            _ => (' ', Style::new()),
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
    use crate::experiment::track::Track;

    const MS: u64 = 1_000_000;

    fn theme() -> Theme {
        Theme { color: false }
    }

    fn symbols(cells: &[Cell]) -> String {
        cells.iter().map(|(c, _)| *c).collect()
    }

    #[test]
    fn a_running_worker_is_drawn_only_as_far_as_its_own_records_go() {
        use crate::experiment::spec::{Experiment, Model, RunSpec};
        use crate::experiment::supervisor::Report;
        use crate::protocol::Record;
        let mut tally = Tally::new(RunSpec { experiment: Experiment::new(2), model: Model::Threads }, 0, 1);
        let mut rec = |record| tally.apply(Report::Record { run: 0, stream: 0, record });
        // T0 took the GIL at 1 ms; its lane's next records (its release at
        // 10 ms) have not come yet, while T1's have: it took the GIL at 10 ms
        // and ran to 30 ms.
        rec(Record::Started { t: MS, worker: 0, requested: 0 });
        rec(Record::Started { t: MS, worker: 1, requested: 0 });
        rec(Record::Take { t: MS, worker: 0 });
        rec(Record::Wait { t: MS, worker: 1 });
        rec(Record::Progress { t: 9 * MS, worker: 0, done: 1, total: 4_000_000 });
        rec(Record::Take { t: 10 * MS, worker: 1 });
        rec(Record::Progress { t: 30 * MS, worker: 1, done: 1, total: 4_000_000 });
        let window = Window {
            origin: 0,
            first: 0,
            start: 0,
            level: 0,
            bins: 1,
            cell: MS,
            cells: 50,
            now: 50 * MS,
            panned: false,
        };
        let (t0, t1) = (mixes(&tally, 0, &window), mixes(&tally, 1, &window));
        // Nobody is drawn running in the same cell as another, and nothing
        // is drawn after the newest record (30 ms), though now is 50 ms.
        for c in 0..50 {
            assert!(t0[c].run <= 0.0 || t1[c].run <= 0.0, "cell {c}: {:?} {:?}", t0[c], t1[c]);
        }
        assert!(t0[5].run > 0.9 && t0[8].run > 0.9, "T0 ran up to its last record: {:?} {:?}", t0[5], t0[8]);
        assert!(t0[12].covered() <= 0.0, "after 9 ms T0 is not known: {:?}", t0[12]);
        assert!(t1[20].run > 0.9);
        assert!(t1[35].covered() <= 0.0, "after the newest record nothing is known: {:?}", t1[35]);
    }

    #[test]
    fn the_whole_run_zoom_shows_a_finished_run_from_its_first_instant() {
        use crate::app::{Mode, Msg, Zoom};
        use crate::experiment::spec::Experiment;
        use crate::protocol::Record;
        use crate::scenario::{
            ITERATIONS, S, T0, baseline_cpu_run, fresh, header, key, send, sim_header, starts,
        };
        // A run asked for at `asked` whose program asks for its workers
        // 150 ms later (a real interpreter boots first): its time, and its
        // panel, start there, off the lanes' grid, which starts at `asked`.
        for tenth in 50..100 {
            let mut app = fresh(Experiment::new(2));
            app.set_mode(Mode::OneAtATime);
            let lone = starts(&key(&mut app, ' '));
            let models = starts(&baseline_cpu_run(&mut app, lone[0].0, T0, 3 * S));
            let run = models[0].0;
            let asked = T0 + 4 * S;
            let (first, wall) = (asked + 150 * MS, tenth * S / 10);
            app.update(asked, Msg::Started { run, requested_at: asked, pids: vec![2001] });
            header(&mut app, run, 0, sim_header(2001, 0, 2));
            let mut records = Vec::new();
            for worker in 0..2 {
                records.extend([
                    Record::Started { t: first, worker, requested: first },
                    Record::Take { t: first, worker },
                    Record::Progress { t: first + wall, worker, done: ITERATIONS, total: ITERATIONS },
                    Record::Finished { t: first + wall, worker },
                ]);
            }
            send(&mut app, run, 0, records);
            app.view.zoom = Zoom::WholeRun;
            let session = app.session.as_ref().expect("a session");
            let window = Window::of(&app, session, 0, 29).expect("a window");
            assert_eq!(window.origin, first);
            assert!(
                window.start <= window.origin,
                "a {wall} ns run: its first {} ms are left of the window",
                (window.start - window.origin) / MS
            );
        }
    }

    /// Two workers taking turns every `hold` ns for `until` ns.
    fn turns(hold: u64, until: u64) -> [Track; 2] {
        let mut tracks = [Track::new(0), Track::new(0)];
        let (mut t, mut holder) = (0, 0);
        tracks[1].enter(0, Lane::Waiting);
        while t < until {
            tracks[holder].enter(t, Lane::Running);
            tracks[1 - holder].enter(t, Lane::Waiting);
            t += hold;
            holder = 1 - holder;
        }
        tracks
    }

    #[test]
    fn regular_switching_through_coarse_cells_shows_the_mix_not_holds() {
        let tracks = turns(5 * MS, 2_000 * MS);
        // 250 ms cells: each worker ran half of every cell.
        let level = LEVELS_NS.iter().position(|&s| s == 250 * MS).unwrap_or(0);
        let mixes: Vec<Mix> = (0..7).map(|c| tracks[0].cell(level, c, 2_000 * MS)).collect();
        assert_eq!(symbols(&lane_cells(&mixes, theme())), "▄▄▄▄▄▄▄");
        let lanes =
            vec![(0, mixes), (1, (0..7).map(|c| tracks[1].cell(level, c, 2_000 * MS)).collect::<Vec<_>>())];
        let gil = holdings(&lanes, 7);
        assert_eq!(symbols(&gil_cells(&gil, theme())), "╳╳╳╳╳╳╳");
        assert_eq!(symbols(&take_counts(&gil, theme())), "+++++++");
    }

    #[test]
    fn at_a_millisecond_a_cell_the_holds_are_solid_and_named() {
        let tracks = turns(5 * MS, 20 * MS);
        let lanes: Vec<(u32, Vec<Mix>)> =
            (0..2).map(|w| (w as u32, (0..20).map(|c| tracks[w].cell(0, c, 20 * MS)).collect())).collect();
        // A hold that began exactly as its cell did is drawn ▇ there: a state
        // changed at that instant, and a solid cell promises none did.
        assert_eq!(symbols(&lane_cells(&lanes[0].1, theme())), "█████░░░░░▇████░░░░░");
        let gil = holdings(&lanes, 20);
        assert_eq!(symbols(&gil_cells(&gil, theme())), "0▇▇▇▇1▇▇▇▇0▇▇▇▇1▇▇▇▇");
    }

    /// A small deterministic generator: xorshift.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self, below: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % below.max(1)
        }
    }

    #[test]
    fn every_cell_is_within_an_eighth_of_the_truth_and_no_solid_run_outlasts_a_hold() {
        for seed in 1..300u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            // Holds from 20 µs to 60 ms, gaps (waiting) from 0 to 10 ms.
            let mut track = Track::new(0);
            // Holds as the track sees them: back-to-back ones are one hold.
            let mut holds: Vec<(u64, u64)> = Vec::new();
            let mut t = 0;
            while t < 400 * MS {
                let hold = 20_000 + rng.next(60 * MS);
                track.enter(t, Lane::Running);
                match holds.last_mut() {
                    Some(last) if last.1 == t => last.1 = t + hold,
                    _ => holds.push((t, t + hold)),
                }
                t += hold;
                let gap = rng.next(10 * MS);
                if gap > 0 {
                    track.enter(t, Lane::Waiting);
                    t += gap;
                }
            }
            let end = t;
            track.enter(end, Lane::Finished);
            for (level, &size) in LEVELS_NS.iter().enumerate().take(9) {
                let cells = (end / size) as usize;
                let mixes: Vec<Mix> = (0..cells).map(|c| track.cell(level, c, end)).collect();
                let drawn = lane_cells(&mixes, theme());
                for (c, mix) in mixes.iter().enumerate() {
                    let (from, to) = (c as u64 * size, (c as u64 + 1) * size);
                    let ran: u64 = holds.iter().map(|&(a, b)| b.min(to).saturating_sub(a.max(from))).sum();
                    let truth = ran as f64 / size as f64;
                    let shown = eighths(mix) as f64 / 8.0;
                    assert!(
                        (shown - truth).abs() <= 1.0 / 8.0 + 1e-6,
                        "seed {seed}, level {level}, cell {c}: drawn {} ({shown}) for a running share of {truth}",
                        drawn[c].0
                    );
                }
                // A run of solid cells lies inside one real hold.
                let mut c = 0;
                while c < cells {
                    if drawn[c].0 != '█' {
                        c += 1;
                        continue;
                    }
                    let first = c;
                    while c < cells && drawn[c].0 == '█' {
                        c += 1;
                    }
                    let (from, to) = (first as u64 * size, c as u64 * size);
                    assert!(
                        holds.iter().any(|&(a, b)| a <= from && b >= to),
                        "seed {seed}, level {level}: {} solid cells ({} ms) that no single hold covers",
                        c - first,
                        (to - from) / MS
                    );
                }
            }
        }
    }

    #[test]
    fn workers_get_one_character_each() {
        assert_eq!([worker_mark(0), worker_mark(10), worker_mark(36), worker_mark(99)], ['0', 'a', 'A', '+']);
    }
}
