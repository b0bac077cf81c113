//! What one worker did, kept so the screen can show it at any zoom at a cost
//! that depends on the screen's size, never on how long the run has been
//! going or how often the GIL changed hands.
//!
//! A track is a pyramid of fixed-size bins, one level per zoom (1 ms a bin up
//! to a minute). Each bin holds the share of its time the worker spent
//! running, waiting for the GIL and in I/O, and how many times it changed
//! state and took the GIL inside the bin — enough to draw the mix of a cell
//! honestly. State changes arrive in time order for one worker, so each bin
//! is summed exactly (in nanoseconds) while it is the newest, and rounded
//! once when the worker moves past it. A level costs 5 bytes per bin; when a
//! run grows beyond its memory budget the finest levels are let go, and the
//! zooms they served say so.

use crate::experiment::tally::Lane;

/// Nanoseconds a bin stands for, finest first: the zooms of the timeline.
pub const LEVELS_NS: [u64; 15] = [
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_000_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// A full bin, in the units of a bin's shares.
const FULL: u64 = 255;

/// One finished bin: shares of its time (in 255ths), and what happened in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bin {
    pub run: u8,
    pub wait: u8,
    pub io: u8,
    /// State changes inside the bin (saturating).
    pub entries: u8,
    /// Times the worker took the GIL (started running) inside the bin.
    pub takes: u8,
}

/// The newest bin of a level, summed exactly until the worker moves past it.
#[derive(Clone, Debug, Default)]
struct Open {
    index: usize,
    ns: [u64; 3],
    entries: u32,
    takes: u32,
}

#[derive(Clone, Debug)]
struct Level {
    size: u64,
    bins: Vec<Bin>,
    open: Open,
    /// Let go to keep memory bounded: this zoom cannot be drawn any more.
    dropped: bool,
}

impl Level {
    fn new(size: u64) -> Self {
        Level { size, bins: Vec::new(), open: Open::default(), dropped: false }
    }

    /// Rounds the open bin into the finished ones and opens bin `index`.
    fn move_to(&mut self, index: usize) {
        if index <= self.open.index {
            return;
        }
        let open = std::mem::take(&mut self.open);
        if !self.dropped {
            if self.bins.len() < open.index {
                self.bins.resize(open.index, Bin::default());
            }
            let share = |ns: u64| ((ns * FULL + self.size / 2) / self.size).min(FULL) as u8;
            self.bins.push(Bin {
                run: share(open.ns[0]),
                wait: share(open.ns[1]),
                io: share(open.ns[2]),
                entries: open.entries.min(255) as u8,
                takes: open.takes.min(255) as u8,
            });
        }
        self.open.index = index;
    }

    /// Adds `from .. to` (ns since the origin) in state `slot`.
    fn add(&mut self, from: u64, to: u64, slot: usize) {
        let mut t = from;
        while t < to {
            let index = (t / self.size) as usize;
            let end = ((index as u64 + 1) * self.size).min(to);
            self.move_to(index);
            self.open.ns[slot] += end - t;
            t = end;
        }
    }

    fn note_entry(&mut self, at: u64, change: bool, take: bool) {
        self.move_to((at / self.size) as usize);
        if change {
            self.open.entries += 1;
        }
        if take {
            self.open.takes += 1;
        }
    }

    /// The bin `index` as far as it is known (the open one exactly).
    fn bin(&self, index: usize) -> Mix {
        let mut mix = Mix::default();
        if index == self.open.index {
            let f = |ns: u64| ns as f64 / self.size as f64;
            mix.run = f(self.open.ns[0]);
            mix.wait = f(self.open.ns[1]);
            mix.io = f(self.open.ns[2]);
            mix.entries = self.open.entries;
            mix.takes = self.open.takes;
        } else if let Some(bin) = self.bins.get(index) {
            let f = |share: u8| f64::from(share) / FULL as f64;
            mix.run = f(bin.run);
            mix.wait = f(bin.wait);
            mix.io = f(bin.io);
            mix.entries = u32::from(bin.entries);
            mix.takes = u32::from(bin.takes);
        }
        mix
    }
}

/// What a worker did during one cell, as shares of the cell's time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Mix {
    pub run: f64,
    pub wait: f64,
    pub io: f64,
    pub done: f64,
    pub failed: f64,
    /// State changes inside the cell.
    pub entries: u32,
    /// GIL takes inside the cell.
    pub takes: u32,
}

impl Mix {
    /// The share of the cell the worker was anywhere at all.
    pub fn covered(&self) -> f64 {
        self.run + self.wait + self.io + self.done + self.failed
    }

    /// The running share of the time covered, 0 ..= 1.
    pub fn running_share(&self) -> f64 {
        let covered = self.covered();
        if covered <= 0.0 { 0.0 } else { (self.run / covered).clamp(0.0, 1.0) }
    }

    /// One state for the whole cell, and no change inside it.
    pub fn pure(&self) -> Option<Lane> {
        if self.entries > 0 {
            return None;
        }
        let states = [
            (self.run, Lane::Running),
            (self.wait, Lane::Waiting),
            (self.io, Lane::Io),
            (self.done, Lane::Finished),
            (self.failed, Lane::Failed),
        ];
        // Rounding leaves a 255th at most; a state that took all but that is the cell's.
        let full = 1.0 - 1.0 / FULL as f64;
        states.iter().find(|(share, _)| *share >= full).map(|(_, lane)| *lane)
    }

    /// The state that took most of the cell, if any took part of it.
    pub fn dominant(&self) -> Option<Lane> {
        let states = [
            (self.run, Lane::Running),
            (self.wait, Lane::Waiting),
            (self.io, Lane::Io),
            (self.done, Lane::Finished),
            (self.failed, Lane::Failed),
        ];
        states.iter().filter(|(s, _)| *s > 0.0).max_by(|a, b| a.0.total_cmp(&b.0)).map(|(_, l)| *l)
    }

    fn add_state(&mut self, lane: Lane, share: f64) {
        match lane {
            Lane::Running => self.run += share,
            Lane::Waiting => self.wait += share,
            Lane::Io => self.io += share,
            Lane::Finished => self.done += share,
            Lane::Failed => self.failed += share,
            Lane::NotStarted => {}
        }
    }
}

/// One worker's states over time, at every zoom.
#[derive(Clone, Debug)]
pub struct Track {
    /// Where bin 0 of every level starts (the session's start, so that the
    /// panels of a race line up).
    origin: u64,
    levels: Vec<Level>,
    /// The state the worker is in, and since when.
    current: Option<(Lane, u64)>,
}

impl Track {
    pub fn new(origin: u64) -> Self {
        Track { origin, levels: LEVELS_NS.iter().map(|&s| Level::new(s)).collect(), current: None }
    }

    /// The worker's state now.
    pub fn lane(&self) -> Lane {
        self.current.map_or(Lane::NotStarted, |(lane, _)| lane)
    }

    /// Since when the worker has been in its current state.
    pub fn since(&self) -> Option<u64> {
        self.current.map(|(_, since)| since)
    }

    /// The worker entered `lane` at `t` (no earlier than its last change).
    /// Returns the span that ended, if one did: (state, from, to).
    pub fn enter(&mut self, t: u64, lane: Lane) -> Option<(Lane, u64, u64)> {
        let t = t.max(self.origin);
        let ended = match self.current {
            Some((now, _)) if now == lane => return None,
            // Finished and failed are for good.
            Some((Lane::Finished | Lane::Failed, _)) => return None,
            Some((previous, since)) => {
                let t = t.max(since);
                self.commit(previous, since, t);
                Some((previous, since, t))
            }
            None => None,
        };
        let t = self.current.map_or(t, |(_, since)| t.max(since));
        // The worker's first state is its start, not a change within its time.
        let change = self.current.is_some();
        for level in &mut self.levels {
            level.note_entry(t - self.origin, change, lane == Lane::Running);
        }
        self.current = Some((lane, t));
        ended
    }

    fn commit(&mut self, lane: Lane, from: u64, to: u64) {
        let slot = match lane {
            Lane::Running => 0,
            Lane::Waiting => 1,
            Lane::Io => 2,
            Lane::NotStarted | Lane::Finished | Lane::Failed => return,
        };
        let (from, to) = (from - self.origin, to - self.origin);
        for level in &mut self.levels {
            level.add(from, to, slot);
        }
    }

    /// Whether the zoom of `level` can still be drawn.
    pub fn has_level(&self, level: usize) -> bool {
        self.levels.get(level).is_some_and(|l| !l.dropped)
    }

    /// Lets the finest level still kept go; false when only the coarsest is left.
    pub fn shed_finest(&mut self) -> bool {
        let kept = self.levels.iter().filter(|l| !l.dropped).count();
        let Some(level) = self.levels.iter_mut().find(|l| !l.dropped).filter(|_| kept > 1) else {
            return false;
        };
        level.dropped = true;
        level.bins = Vec::new();
        true
    }

    /// Memory the bins take.
    pub fn bytes(&self) -> usize {
        self.levels.iter().map(|l| l.bins.capacity() * std::mem::size_of::<Bin>()).sum()
    }

    /// What the worker did during bin `index` of `level` (bins counted
    /// from the origin), up to `now`.
    pub fn cell(&self, level: usize, index: usize, now: u64) -> Mix {
        self.cells(level, index, 1, now)
    }

    /// What the worker did during `bins` bins of `level` from bin `first`,
    /// as shares of their time together, up to `now`.
    pub fn cells(&self, level: usize, first: usize, bins: usize, now: u64) -> Mix {
        let Some(l) = self.levels.get(level) else { return Mix::default() };
        let bins = bins.max(1);
        let mut mix = Mix::default();
        for index in first..first + bins {
            let bin = l.bin(index);
            mix.run += bin.run;
            mix.wait += bin.wait;
            mix.io += bin.io;
            mix.entries += bin.entries;
            mix.takes += bin.takes;
        }
        let n = bins as f64;
        (mix.run, mix.wait, mix.io) = (mix.run / n, mix.wait / n, mix.io / n);
        let size = l.size * bins as u64;
        let from = self.origin + first as u64 * l.size;
        let to = from + size;
        // The state the worker is in now is not in the bins yet.
        if let Some((lane, since)) = self.current {
            let end = match lane {
                Lane::Finished | Lane::Failed => to,
                _ => now.min(to),
            };
            let overlap = end.saturating_sub(since.max(from));
            mix.add_state(lane, overlap as f64 / size as f64);
        }
        mix
    }
}

/// The cell that fits `span` ns into `cells`: the whole-run zoom, as a
/// level and a number of its bins per cell (at least 8 where the level
/// allows it, so the cell is close to the exact fit).
pub fn fit(span: u64, cells: usize) -> (usize, usize) {
    let cell = span.max(1).div_ceil(cells.max(1) as u64);
    let level = LEVELS_NS.iter().rposition(|&size| size * 8 <= cell).unwrap_or(0);
    (level, cell.div_ceil(LEVELS_NS[level]) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_bin_holds_the_shares_of_its_states() {
        let mut track = Track::new(0);
        track.enter(0, Lane::Running);
        track.enter(MS / 4, Lane::Waiting);
        track.enter(MS, Lane::Running);
        track.enter(3 * MS, Lane::Finished);
        let first = track.cell(0, 0, 10 * MS);
        assert!((first.run - 0.25).abs() < 0.01 && (first.wait - 0.75).abs() < 0.01, "{first:?}");
        assert_eq!(first.pure(), None, "two states");
        let second = track.cell(0, 1, 10 * MS);
        assert_eq!(second.pure(), None, "the worker took the GIL as the bin began");
        let third = track.cell(0, 2, 10 * MS);
        assert_eq!(third.pure(), Some(Lane::Running));
        assert_eq!(track.cell(0, 7, 10 * MS).pure(), Some(Lane::Finished));
        let coarse = track.cell(2, 0, 10 * MS);
        assert!((coarse.run - (0.25 + 2.0) / 5.0).abs() < 0.01, "{coarse:?}");
        assert_eq!(coarse.takes, 2);
    }

    #[test]
    fn the_current_state_reaches_up_to_now_and_no_further() {
        let mut track = Track::new(0);
        track.enter(MS / 2, Lane::Io);
        let cell = track.cell(0, 1, MS + MS / 4);
        assert!((cell.io - 0.25).abs() < 1e-9, "{cell:?}");
        assert_eq!(track.cell(0, 3, MS + MS / 4), Mix::default());
    }

    #[test]
    fn shedding_a_level_frees_it_and_keeps_the_coarser_ones() {
        let mut track = Track::new(0);
        for i in 0..1000 {
            track.enter(i * MS, if i % 2 == 0 { Lane::Running } else { Lane::Waiting });
        }
        let before = track.bytes();
        assert!(track.shed_finest());
        assert!(!track.has_level(0) && track.has_level(1));
        assert!(track.bytes() < before);
        assert!((track.cell(1, 10, 2_000 * MS).run - 0.5).abs() < 0.01);
    }
}
