//! Lanes from what was read of a GIL: each worker's own records merged, in
//! time order, with the holder as gilscope read it.
//!
//! Pure: no process, no clock. A [`GilTrack`] keeps the changes of one GIL's
//! holder as read (a sample, or an exact event); a [`LaneWorker`] holds one
//! worker's own records until the GIL's reads have caught up with them,
//! then turns both into the records the tally draws: *running* where the
//! worker's thread holds the GIL, *in I/O* where its own records say so,
//! *waiting* otherwise while it has work. The worker's inferred releases and
//! takes (gaps in its stamps) are dropped: the reads replace them.

use crate::protocol::{Record, ReleaseReason};

/// The GIL at one read: who holds it (an OS thread id; None while it is
/// free or its holder cannot be named) and the interpreter's own switch
/// counter then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GilState {
    pub t: u64,
    pub holder: Option<u32>,
    pub switch_number: u64,
}

/// The reads of one GIL, kept where they change.
#[derive(Clone, Debug, Default)]
pub struct GilTrack {
    /// Every read whose holder or switch counter differed from the one
    /// before, in time order.
    changes: Vec<GilState>,
    /// The newest read.
    latest: Option<GilState>,
    /// No more reads will come.
    pub ended: bool,
}

impl GilTrack {
    /// One more read (reads come in time order; an older one is ignored).
    pub fn read(&mut self, state: GilState) {
        if self.latest.is_some_and(|l| state.t < l.t) {
            return;
        }
        let changed =
            self.latest.is_none_or(|l| l.holder != state.holder || l.switch_number != state.switch_number);
        if changed {
            self.changes.push(state);
        }
        self.latest = Some(state);
    }

    /// Up to when the reads are known: merging may go this far.
    pub fn known_until(&self) -> u64 {
        if self.ended { u64::MAX } else { self.latest.map_or(0, |l| l.t) }
    }

    /// The newest read's time.
    pub fn latest_t(&self) -> Option<u64> {
        self.latest.map(|l| l.t)
    }

    fn state_at(&self, t: u64) -> Option<GilState> {
        let i = self.changes.partition_point(|c| c.t <= t);
        i.checked_sub(1).map(|i| self.changes[i])
    }

    /// Over `from..=to`, from the first read there that changed and named
    /// a holder: how far the interpreter's own switch counter moved, and
    /// how many hand-overs the reads saw (the named holder changing from
    /// one thread to another; a free GIL between two holders is no
    /// hand-over of its own). Both count over the same reads, so they
    /// differ only by holds too short to fall on a read.
    pub fn handovers(&self, from: u64, to: u64) -> (u64, u64) {
        let Some(first) =
            self.changes.iter().copied().find(|c| c.t >= from && c.t <= to && c.holder.is_some())
        else {
            return (0, 0);
        };
        let last = self.state_at(to).filter(|l| l.t >= first.t).unwrap_or(first);
        let switches = last.switch_number.saturating_sub(first.switch_number);
        let mut holder = first.holder;
        let mut seen = 0;
        for c in self.changes.iter().filter(|c| c.t > first.t && c.t <= to) {
            if let Some(tid) = c.holder {
                if holder.is_some_and(|h| h != tid) {
                    seen += 1;
                }
                holder = Some(tid);
            }
        }
        (switches, seen)
    }
}

/// Where a worker is, as its own records say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Own {
    /// Started, waiting for the start gun.
    NotStarted,
    /// Its work is under way: running or waiting, as the GIL says.
    AtWork,
    /// In a blocking call, without the GIL.
    Io,
    Finished,
}

/// One worker whose lane comes from a read GIL.
#[derive(Clone, Debug)]
pub struct LaneWorker {
    pub worker: u32,
    /// Its OS thread.
    pub tid: u32,
    own: Own,
    /// Its thread holds the GIL, as last read.
    holds: bool,
    /// Its own records not merged yet, in the order it wrote them.
    pending: std::collections::VecDeque<Record>,
    /// Its newest own record's time.
    own_until: u64,
    /// The next GIL change to merge.
    cursor: usize,
    /// When its work began (its first take), and ended.
    pub began: Option<u64>,
    pub finished: Option<u64>,
}

impl LaneWorker {
    pub fn new(worker: u32, tid: u32) -> LaneWorker {
        LaneWorker {
            worker,
            tid,
            own: Own::NotStarted,
            holds: false,
            pending: std::collections::VecDeque::new(),
            own_until: 0,
            cursor: 0,
            began: None,
            finished: None,
        }
    }

    /// One of its own records, to merge later.
    pub fn own(&mut self, record: Record) {
        if let Some(t) = record.time() {
            self.own_until = self.own_until.max(t);
        }
        self.pending.push_back(record);
    }

    /// Its work is over and every record of it merged.
    pub fn done(&self) -> bool {
        self.own == Own::Finished && self.pending.is_empty()
    }

    /// Merges its own records and the GIL's changes up to where both are
    /// known (everything, with `all`), in time order, into `out`.
    pub fn merge(&mut self, gil: &GilTrack, all: bool, out: &mut Vec<Record>) {
        let until = if all { u64::MAX } else { self.own_until.min(gil.known_until()) };
        loop {
            let own_t = self.pending.front().map(|r| r.time().unwrap_or(0));
            let gil_t = gil.changes.get(self.cursor).map(|c| c.t);
            match (own_t, gil_t) {
                (Some(o), g) if o <= until && g.is_none_or(|g| o <= g) => {
                    let Some(record) = self.pending.pop_front() else { break };
                    self.mine(record, out);
                }
                (_, Some(g)) if g <= until && self.own != Own::Finished => {
                    let change = gil.changes[self.cursor];
                    self.cursor += 1;
                    self.gil(change, out);
                }
                (_, Some(_)) if self.own == Own::Finished => self.cursor = gil.changes.len(),
                _ => break,
            }
        }
    }

    fn gil(&mut self, change: GilState, out: &mut Vec<Record>) {
        let holds = change.holder == Some(self.tid);
        if self.own == Own::AtWork && holds != self.holds {
            let (t, worker) = (change.t, self.worker);
            out.push(if holds {
                Record::Take { t, worker }
            } else {
                Record::Release { t, worker, reason: ReleaseReason::Switched }
            });
        }
        self.holds = holds;
    }

    fn mine(&mut self, record: Record, out: &mut Vec<Record>) {
        match record {
            // Its stamps say it runs Python again (the gun fired, the
            // blocking call returned): at work, running if the GIL says so.
            Record::Take { t, worker } if matches!(self.own, Own::NotStarted | Own::Io) => {
                self.own = Own::AtWork;
                self.began.get_or_insert(t);
                out.push(if self.holds { Record::Take { t, worker } } else { Record::Wait { t, worker } });
            }
            // A gap in its stamps: what the GIL said replaces the guess.
            Record::Take { .. } | Record::Release { reason: ReleaseReason::Inferred, .. } => {}
            Record::Release { reason: ReleaseReason::Io, .. } | Record::IoBegin { .. } => {
                self.own = Own::Io;
                out.push(record);
            }
            Record::Finished { t, .. } => {
                self.own = Own::Finished;
                self.finished = Some(t);
                out.push(record);
            }
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(gil: &mut GilTrack, t: u64, holder: Option<u32>, switch_number: u64) {
        gil.read(GilState { t, holder, switch_number });
    }

    #[test]
    fn a_cpu_worker_runs_where_its_thread_holds_the_gil_and_waits_elsewhere() {
        let mut gil = GilTrack::default();
        let mut w = LaneWorker::new(0, 100);
        w.own(Record::Take { t: 10, worker: 0 });
        w.own(Record::Release { t: 30, worker: 0, reason: ReleaseReason::Inferred });
        w.own(Record::Take { t: 50, worker: 0 });
        w.own(Record::Progress { t: 60, worker: 0, done: 1, total: 2 });
        read(&mut gil, 5, Some(999), 1);
        read(&mut gil, 12, Some(100), 2);
        read(&mut gil, 31, None, 2);
        read(&mut gil, 32, Some(101), 3);
        read(&mut gil, 49, Some(100), 4);
        read(&mut gil, 55, Some(100), 4);
        let mut out = Vec::new();
        w.merge(&gil, false, &mut out);
        assert_eq!(
            out,
            vec![
                Record::Wait { t: 10, worker: 0 },
                Record::Take { t: 12, worker: 0 },
                Record::Release { t: 31, worker: 0, reason: ReleaseReason::Switched },
                Record::Take { t: 49, worker: 0 },
            ],
            "the progress at 60 waits for reads that far"
        );
        read(&mut gil, 70, Some(100), 4);
        out.clear();
        w.merge(&gil, false, &mut out);
        assert_eq!(out, vec![Record::Progress { t: 60, worker: 0, done: 1, total: 2 }]);
    }

    #[test]
    fn io_is_the_workers_own_word_and_the_gil_does_not_move_it() {
        let mut gil = GilTrack::default();
        let mut w = LaneWorker::new(1, 7);
        read(&mut gil, 0, Some(7), 1);
        for r in [
            Record::Take { t: 1, worker: 1 },
            Record::Release { t: 10, worker: 1, reason: ReleaseReason::Io },
            Record::IoBegin { t: 10, worker: 1 },
            Record::Take { t: 40, worker: 1 },
            Record::Release { t: 50, worker: 1, reason: ReleaseReason::Finished },
            Record::Finished { t: 50, worker: 1 },
        ] {
            w.own(r);
        }
        read(&mut gil, 11, None, 1);
        read(&mut gil, 20, Some(8), 2);
        read(&mut gil, 41, Some(7), 3);
        gil.ended = true;
        let mut out = Vec::new();
        w.merge(&gil, false, &mut out);
        assert_eq!(
            out,
            vec![
                Record::Take { t: 1, worker: 1 },
                Record::Release { t: 10, worker: 1, reason: ReleaseReason::Io },
                Record::IoBegin { t: 10, worker: 1 },
                Record::Wait { t: 40, worker: 1 },
                Record::Take { t: 41, worker: 1 },
                Record::Release { t: 50, worker: 1, reason: ReleaseReason::Finished },
                Record::Finished { t: 50, worker: 1 },
            ]
        );
        assert!(w.done());
    }

    #[test]
    fn hand_overs_are_counted_between_named_holders_in_the_window() {
        let mut gil = GilTrack::default();
        read(&mut gil, 0, Some(1), 10);
        read(&mut gil, 5, Some(2), 11);
        read(&mut gil, 9, None, 11);
        read(&mut gil, 10, Some(3), 12);
        read(&mut gil, 15, None, 12);
        read(&mut gil, 16, Some(3), 12);
        read(&mut gil, 20, Some(2), 14);
        read(&mut gil, 30, Some(1), 15);
        assert_eq!(gil.handovers(0, 100), (5, 4), "from holder 1: to 2, to 3, to 2, to 1");
        assert_eq!(gil.handovers(4, 25), (3, 2), "from holder 2 (read at 5): to 3, to 2");
        assert_eq!(gil.handovers(9, 21), (2, 1), "free at the start: counted from holder 3 on");
    }
}
