//! One stream's records turned back into what each worker did when: a list
//! of state slices per worker (running, waiting for the GIL, in I/O) that
//! tile its life from its first instruction to its end, the GIL's holds, and
//! the drop requests.
//!
//! The tally keeps binned tracks, which are right for a screen but cannot
//! say where a state began to the nanosecond; a trace viewer needs exactly
//! that, so it is rebuilt here from the records themselves. The rules are
//! the tally's: a worker waits from its start until it takes the GIL, runs
//! until it releases it to a waiter (then waits) or to I/O (then is in I/O),
//! and ends at `finished`. A stream without `dropreq` records loses only the
//! drop-request marks.

use std::collections::BTreeMap;

use crate::protocol::{LaneSource, Record, ReleaseReason};

/// What a worker is doing during a slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Holding the GIL and running (or running freely with the GIL off).
    Running,
    /// Ready to run, waiting for the GIL (or, inferred, not running).
    Waiting,
    /// Blocked in I/O, GIL released.
    Io,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Waiting => "waiting for the GIL",
            State::Io => "in I/O",
        }
    }
}

/// `from .. to` (ns) in one state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    pub state: State,
    pub from: u64,
    pub to: u64,
}

/// One worker's life as slices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerSlices {
    pub started: Option<u64>,
    pub finished: Option<u64>,
    /// In time order, each beginning where the one before ended.
    pub slices: Vec<Slice>,
    /// The state the worker is in now, and since when.
    open: Option<(State, u64)>,
}

impl WorkerSlices {
    /// Time in slices, in ns.
    pub fn total_ns(&self) -> u64 {
        self.slices.iter().map(|s| s.to - s.from).sum()
    }

    fn enter(&mut self, t: u64, state: State) {
        match self.open {
            Some((now, _)) if now == state => {}
            Some((now, since)) => {
                let t = t.max(since);
                if t > since {
                    self.slices.push(Slice { state: now, from: since, to: t });
                }
                self.open = Some((state, t));
            }
            // Nothing before the first instruction belongs to the worker.
            None if self.started.is_some() => self.open = Some((state, t)),
            None => {}
        }
    }

    fn close(&mut self, t: u64) {
        if let Some((state, since)) = self.open.take()
            && t > since
        {
            self.slices.push(Slice { state, from: since, to: t });
        }
    }
}

/// One hold of the GIL: `worker` had it `from .. to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    pub worker: u32,
    pub from: u64,
    pub to: u64,
}

/// What one stream (one process and its GIL) did.
#[derive(Clone, Debug, Default)]
pub struct Slicer {
    pub workers: BTreeMap<u32, WorkerSlices>,
    /// Every worker's holds, in the order they ended.
    pub holds: Vec<Hold>,
    /// The OS process each worker said it runs in (a stream may speak for
    /// several, as `CPython`'s multiprocessing parent does).
    pub pids: BTreeMap<u32, u32>,
    /// Since when each worker holds the GIL, while it does. Per worker,
    /// because an inferred stream sends each thread's records in batches.
    holding: BTreeMap<u32, u64>,
    /// Where each process's lanes came from, where gilscope said
    /// (the real `CPython`'s; a stream without a word is as its header says).
    pub lanes: BTreeMap<u32, LaneSource>,
    /// The newest time any record carried.
    pub last: u64,
}

impl Slicer {
    pub fn record(&mut self, record: &Record) {
        if let Some(t) = record.time() {
            self.last = self.last.max(t);
        }
        match *record {
            Record::Started { t, worker, .. } => {
                let w = self.workers.entry(worker).or_default();
                w.started = Some(t);
                w.enter(t, State::Waiting);
            }
            Record::Wait { t, worker } => {
                self.end_hold(worker, t);
                self.worker(worker).enter(t, State::Waiting);
            }
            Record::Take { t, worker } => {
                self.worker(worker).enter(t, State::Running);
                self.holding.entry(worker).or_insert(t);
            }
            Record::Release { t, worker, reason } => {
                self.end_hold(worker, t);
                match reason {
                    ReleaseReason::DropRequest | ReleaseReason::Inferred | ReleaseReason::Switched => {
                        self.worker(worker).enter(t, State::Waiting);
                    }
                    ReleaseReason::Io => self.worker(worker).enter(t, State::Io),
                    // Still its own code running until `finished`.
                    ReleaseReason::Finished => {}
                }
            }
            Record::IoBegin { t, worker } => self.worker(worker).enter(t, State::Io),
            Record::Finished { t, worker } => {
                self.end_hold(worker, t);
                let w = self.worker(worker);
                w.close(t);
                w.finished = Some(t);
            }
            Record::Process { worker, pid, .. } => {
                self.pids.insert(worker, pid);
            }
            Record::Lanes { pid, ref source, .. } => {
                self.lanes.insert(pid, source.clone());
            }
            Record::Reply { .. }
            | Record::Progress { .. }
            | Record::Cpu { .. }
            | Record::End { .. }
            | Record::Thread { .. }
            | Record::Gil { .. }
            | Record::Error { .. } => {}
        }
    }

    fn worker(&mut self, worker: u32) -> &mut WorkerSlices {
        self.workers.entry(worker).or_default()
    }

    fn end_hold(&mut self, worker: u32, t: u64) {
        if let Some(from) = self.holding.remove(&worker)
            && t > from
        {
            self.holds.push(Hold { worker, from, to: t });
        }
    }

    /// Ends what is still open at the stream's last record (a run cut short).
    pub fn close(&mut self) {
        let last = self.last;
        for worker in self.holding.keys().copied().collect::<Vec<_>>() {
            self.end_hold(worker, last);
        }
        for w in self.workers.values_mut() {
            w.close(last);
        }
    }

    /// The processes whose GIL several workers share, each with its workers.
    pub fn shared_gils(&self) -> BTreeMap<u32, Vec<u32>> {
        let mut by_pid: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (&worker, &pid) in &self.pids {
            by_pid.entry(pid).or_default().push(worker);
        }
        by_pid.retain(|_, workers| workers.len() > 1);
        by_pid
    }

    /// The holds of `workers` (threads of one process) in time order, with
    /// any overlap cut away so they make one lane: inferred timelines can put
    /// two threads' stamps a little over each other. (With the GIL off holds
    /// overlap freely: no lane to draw.)
    pub fn gil_lane(&self, workers: &[u32]) -> Vec<Hold> {
        let mut holds: Vec<Hold> =
            self.holds.iter().filter(|h| workers.contains(&h.worker)).copied().collect();
        holds.sort_by_key(|h| h.from);
        let mut lane: Vec<Hold> = Vec::with_capacity(holds.len());
        for mut h in holds {
            if let Some(prev) = lane.last() {
                h.from = h.from.max(prev.to);
            }
            if h.to > h.from {
                lane.push(h);
            }
        }
        lane
    }
}

/// Slices one stream's records.
pub fn slice<'a>(records: impl IntoIterator<Item = &'a Record>) -> Slicer {
    let mut slicer = Slicer::default();
    for r in records {
        slicer.record(r);
    }
    slicer.close();
    slicer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(w: &WorkerSlices) -> Vec<(State, u64, u64)> {
        w.slices.iter().map(|s| (s.state, s.from, s.to)).collect()
    }

    #[test]
    fn two_threads_taking_turns_tile_their_lives_and_the_gil_lane() {
        let s = slice(&[
            Record::Started { t: 10, worker: 0, requested: 5 },
            Record::Started { t: 12, worker: 1, requested: 5 },
            Record::Take { t: 20, worker: 0 },
            Record::Wait { t: 20, worker: 1 },
            Record::Release { t: 71, worker: 0, reason: ReleaseReason::DropRequest },
            Record::Take { t: 72, worker: 1 },
            Record::Wait { t: 73, worker: 0 },
            Record::Release { t: 100, worker: 1, reason: ReleaseReason::Finished },
            Record::Take { t: 101, worker: 0 },
            Record::Finished { t: 102, worker: 1 },
            Record::Release { t: 150, worker: 0, reason: ReleaseReason::Finished },
            Record::Finished { t: 150, worker: 0 },
        ]);
        let (w0, w1) = (&s.workers[&0], &s.workers[&1]);
        assert_eq!(
            states(w0),
            [
                (State::Waiting, 10, 20),
                (State::Running, 20, 71),
                (State::Waiting, 71, 101),
                (State::Running, 101, 150)
            ]
        );
        assert_eq!(states(w1), [(State::Waiting, 12, 72), (State::Running, 72, 102)]);
        assert_eq!(w0.total_ns(), 150 - 10, "the slices cover the worker's whole life");
        assert_eq!(
            s.holds,
            [
                Hold { worker: 0, from: 20, to: 71 },
                Hold { worker: 1, from: 72, to: 100 },
                Hold { worker: 0, from: 101, to: 150 }
            ]
        );
    }

    #[test]
    fn io_is_a_state_of_its_own_and_a_reply_waits_for_the_gil() {
        let s = slice(&[
            Record::Started { t: 0, worker: 0, requested: 0 },
            Record::Take { t: 1, worker: 0 },
            Record::Release { t: 2, worker: 0, reason: ReleaseReason::Io },
            Record::IoBegin { t: 3, worker: 0 },
            Record::Wait { t: 10, worker: 0 },
            Record::Take { t: 15, worker: 0 },
            Record::Finished { t: 20, worker: 0 },
        ]);
        assert_eq!(
            states(&s.workers[&0]),
            [
                (State::Waiting, 0, 1),
                (State::Running, 1, 2),
                (State::Io, 2, 10),
                (State::Waiting, 10, 15),
                (State::Running, 15, 20)
            ]
        );
    }

    #[test]
    fn a_stream_cut_short_ends_at_its_last_record() {
        let s = slice(&[
            Record::Started { t: 0, worker: 0, requested: 0 },
            Record::Take { t: 5, worker: 0 },
            Record::Progress { t: 9, worker: 0, done: 1, total: 2 },
        ]);
        assert_eq!(states(&s.workers[&0]), [(State::Waiting, 0, 5), (State::Running, 5, 9)]);
        assert_eq!(s.workers[&0].finished, None);
    }

    #[test]
    fn overlapping_inferred_holds_are_cut_into_one_lane() {
        let s = Slicer {
            holds: vec![Hold { worker: 1, from: 50, to: 90 }, Hold { worker: 0, from: 0, to: 60 }],
            ..Slicer::default()
        };
        assert_eq!(
            s.gil_lane(&[0, 1]),
            [Hold { worker: 0, from: 0, to: 60 }, Hold { worker: 1, from: 60, to: 90 }]
        );
    }

    #[test]
    fn only_workers_of_one_process_share_a_gil() {
        let s = slice(&[
            Record::Process { t: 0, worker: 0, pid: 10 },
            Record::Process { t: 0, worker: 1, pid: 11 },
            Record::Process { t: 0, worker: 2, pid: 11 },
        ]);
        assert_eq!(s.shared_gils(), BTreeMap::from([(11, vec![1, 2])]));
    }
}
