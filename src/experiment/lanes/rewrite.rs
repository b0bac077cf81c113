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

/// The holder from `t` on, and the interpreter's switch counter as the
/// first sample read it while this lasted (None: no sample fell in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Change {
    t: u64,
    holder: Option<u32>,
    switch_number: Option<u64>,
}

/// What was read of one GIL, kept where it changed: who held it, from the
/// samples or (exact) from every take and release; and the interpreter's
/// own switch counter, from the samples.
#[derive(Clone, Debug, Default)]
pub struct GilTrack {
    /// The holder's changes, in time order.
    changes: Vec<Change>,
    /// The newest sample.
    latest: Option<GilState>,
    /// The holder comes from exact events, not from the samples: events
    /// and samples wait here until both are in up to the same time, and
    /// are then taken in time order.
    exact: bool,
    events: std::collections::VecDeque<(u64, Option<u32>)>,
    samples: std::collections::VecDeque<GilState>,
    /// Exact events are all in up to here.
    events_until: u64,
    /// Everything up to here has been taken in order.
    settled: u64,
    /// No more reads will come.
    ended: bool,
}

impl GilTrack {
    /// A GIL sampled for its holder and its switch counter.
    pub fn sampled() -> GilTrack {
        GilTrack::default()
    }

    /// A GIL whose holder comes from exact events, sampled for its switch
    /// counter only.
    pub fn exact() -> GilTrack {
        GilTrack { exact: true, ..GilTrack::default() }
    }

    /// One more sample (samples come in time order; an older one is ignored).
    pub fn read(&mut self, state: GilState) {
        if self.latest.is_some_and(|l| state.t < l.t) {
            return;
        }
        self.latest = Some(state);
        if self.exact {
            self.samples.push_back(state);
            self.settle();
        } else {
            self.change(state.t, state.holder);
            self.counted(state.switch_number);
            self.settled = state.t;
        }
    }

    /// An exact event: from `t` on, `holder` holds the GIL (None: nobody).
    /// Events come in time order, all of them up to a horizon the caller
    /// then moves with [`GilTrack::events_in_until`].
    pub fn event(&mut self, t: u64, holder: Option<u32>) {
        if self.events.back().is_none_or(|&(at, _)| at <= t) && t >= self.settled {
            self.events.push_back((t, holder));
        }
    }

    /// Every exact event up to `t` is in.
    pub fn events_in_until(&mut self, t: u64) {
        self.events_until = self.events_until.max(t);
        self.settle();
    }

    /// No more reads will come: what waits is taken in.
    pub fn end(&mut self) {
        self.ended = true;
        self.settle();
    }

    /// Takes the events and samples known complete, in time order.
    fn settle(&mut self) {
        let limit = if self.ended { u64::MAX } else { self.events_until.min(self.latest.map_or(0, |l| l.t)) };
        loop {
            let event = self.events.front().map(|e| e.0).filter(|&t| t <= limit);
            let sample = self.samples.front().map(|s| s.t).filter(|&t| t <= limit);
            match (event, sample) {
                (Some(e), s) if s.is_none_or(|s| e <= s) => {
                    let Some((t, holder)) = self.events.pop_front() else { break };
                    self.change(t, holder);
                }
                (_, Some(_)) => {
                    let Some(state) = self.samples.pop_front() else { break };
                    self.counted(state.switch_number);
                }
                _ => break,
            }
        }
        self.settled = self.settled.max(limit);
    }

    fn change(&mut self, t: u64, holder: Option<u32>) {
        if self.changes.last().is_none_or(|c| c.holder != holder) {
            self.changes.push(Change { t, holder, switch_number: None });
        }
    }

    /// A sample read the counter at `n` while the newest change lasted.
    fn counted(&mut self, n: u64) {
        if let Some(last) = self.changes.last_mut() {
            last.switch_number.get_or_insert(n);
        }
    }

    /// Up to when the holder is known: merging may go this far.
    pub fn known_until(&self) -> u64 {
        if self.ended { u64::MAX } else { self.settled }
    }

    /// The newest sample's time.
    pub fn latest_t(&self) -> Option<u64> {
        self.latest.map(|l| l.t)
    }

    /// Over `from..=to`: how far the interpreter's own switch counter moved,
    /// and how many hand-overs the holder's changes show (the named holder
    /// changing from one thread to another; a free GIL between two holders
    /// is no hand-over of its own). Both are counted between the same two
    /// holds (the first and the last in the span that a sample read the
    /// counter in), so they differ only by hand-overs the changes missed:
    /// holds too short to fall on a sample, for sampled lanes. None where no
    /// read of the counter falls in the span: nothing was counted there, which
    /// is not zero hand-overs.
    pub fn handovers(&self, from: u64, to: u64) -> Option<(u64, u64)> {
        let read = |i: &usize| {
            let c = self.changes[*i];
            (from..=to).contains(&c.t) && c.holder.is_some() && c.switch_number.is_some()
        };
        let Some(i) = (0..self.changes.len()).find(read) else {
            return self.unchanged_over(from, to);
        };
        let j = (0..self.changes.len()).rev().find(read)?;
        let (first, last) = (self.changes[i], self.changes[j]);
        let switches = last.switch_number.unwrap_or(0).saturating_sub(first.switch_number.unwrap_or(0));
        let mut holder = first.holder;
        let mut seen = 0;
        for c in &self.changes[i + 1..=j] {
            if let Some(tid) = c.holder {
                if holder.is_some_and(|h| h != tid) {
                    seen += 1;
                }
                holder = Some(tid);
            }
        }
        Some((switches, seen))
    }

    /// Where nothing changed in `from..=to`: a hold read before the span
    /// that reads went on seeing into it lasted through it, with no hand-over
    /// and the counter still. (A worker alone on its GIL is often first read
    /// holding it a moment before it says it began; nothing changes after.)
    fn unchanged_over(&self, from: u64, to: u64) -> Option<(u64, u64)> {
        if from > to || self.changes.iter().any(|c| (from..=to).contains(&c.t)) {
            return None;
        }
        let before = self.changes.iter().rev().find(|c| c.t < from)?;
        let read_into_it = self.latest.is_some_and(|l| l.t >= from);
        (before.holder.is_some() && before.switch_number.is_some() && read_into_it).then_some((0, 0))
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

    fn gil(&mut self, change: Change, out: &mut Vec<Record>) {
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
            // blocking call returned): the stamp was taken holding the GIL,
            // whatever a sample a little before it said.
            Record::Take { t, worker } if matches!(self.own, Own::NotStarted | Own::Io) => {
                self.own = Own::AtWork;
                self.holds = true;
                self.began.get_or_insert(t);
                out.push(Record::Take { t, worker });
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
        let mut gil = GilTrack::sampled();
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
                // Its own stamp at 10 was taken holding the GIL: the sample
                // at 5 is older news.
                Record::Take { t: 10, worker: 0 },
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
        let mut gil = GilTrack::sampled();
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
        read(&mut gil, 45, Some(8), 4);
        read(&mut gil, 48, Some(7), 5);
        gil.end();
        let mut out = Vec::new();
        w.merge(&gil, false, &mut out);
        assert_eq!(
            out,
            vec![
                Record::Take { t: 1, worker: 1 },
                Record::Release { t: 10, worker: 1, reason: ReleaseReason::Io },
                Record::IoBegin { t: 10, worker: 1 },
                Record::Take { t: 40, worker: 1 },
                Record::Release { t: 45, worker: 1, reason: ReleaseReason::Switched },
                Record::Take { t: 48, worker: 1 },
                Record::Release { t: 50, worker: 1, reason: ReleaseReason::Finished },
                Record::Finished { t: 50, worker: 1 },
            ]
        );
        assert!(w.done());
    }

    #[test]
    fn hand_overs_are_counted_between_named_holders_in_the_window() {
        let mut gil = GilTrack::sampled();
        read(&mut gil, 0, Some(1), 10);
        read(&mut gil, 5, Some(2), 11);
        read(&mut gil, 9, None, 11);
        read(&mut gil, 10, Some(3), 12);
        read(&mut gil, 15, None, 12);
        read(&mut gil, 16, Some(3), 12);
        read(&mut gil, 20, Some(2), 14);
        read(&mut gil, 30, Some(1), 15);
        assert_eq!(gil.handovers(0, 100), Some((5, 4)), "from holder 1: to 2, to 3, to 2, to 1");
        assert_eq!(gil.handovers(4, 25), Some((3, 2)), "from holder 2 (read at 5): to 3, to 2");
        assert_eq!(gil.handovers(9, 21), Some((2, 1)), "free at the start: counted from holder 3 on");
        // A span no read falls in counted nothing: not zero hand-overs. (On a
        // 16-core machine a panel of 16 CPython threads said "switches 0
        // (CPython's count)" while its GIL lane showed hundreds of them.)
        assert_eq!(gil.handovers(31, 100), None);
        assert_eq!(gil.handovers(30, 20), None, "an empty span");
    }

    #[test]
    fn a_lone_hold_read_just_before_the_span_and_on_through_it_counts_no_hand_over() {
        // A worker alone on its GIL, first read holding it 1 µs before its
        // work began: the holder never changes again. Its span used to count
        // nothing at all, and the run lost its sampling figures (CI failed on
        // a multiprocessing run with `samples_per_s` null).
        let mut gil = GilTrack::sampled();
        read(&mut gil, 999, Some(7), 3);
        for t in (2_000..=300_000).step_by(1_000) {
            read(&mut gil, t, Some(7), 3);
        }
        assert_eq!(gil.handovers(1_000, 290_000), Some((0, 0)));
        // Reads that stopped before the span still count nothing in it.
        assert_eq!(gil.handovers(400_000, 500_000), None);
        // A GIL read free before the span: no hold to speak for it.
        let mut free = GilTrack::sampled();
        read(&mut free, 999, None, 3);
        read(&mut free, 5_000, None, 3);
        assert_eq!(free.handovers(1_000, 4_000), None);
    }

    #[test]
    fn exact_hand_overs_are_counted_between_holds_a_sample_read_the_counter_in() {
        // Exact events: a flurry of short holds as the workers start, then
        // steady 5 ms holds; the samples (every 100 µs) read the counter only.
        let mut gil = GilTrack::exact();
        let mut counter = 0;
        let events = [(1_001, 1), (1_010, 2), (1_020, 1), (1_030, 2), (6_000, 1), (11_000, 2), (16_000, 1)];
        let mut next = events.iter().peekable();
        let mut holder = None;
        for t in (0..20_000).step_by(100) {
            while let Some(&&(at, tid)) = next.peek() {
                if at > t {
                    break;
                }
                gil.event(at, Some(tid));
                if holder.is_some_and(|h| h != tid) {
                    counter += 1;
                }
                holder = Some(tid);
                next.next();
            }
            gil.events_in_until(t);
            gil.read(GilState { t, holder, switch_number: counter });
        }
        // The flurry's first three holds fell between two samples: counted
        // from the hold of 2 read at 1,100, to 1, to 2, to 1.
        assert_eq!(gil.handovers(0, 20_000), Some((3, 3)));
        assert_eq!(gil.handovers(0, 15_000), Some((2, 2)), "up to the hold of 2 from 11,000");
    }
}
