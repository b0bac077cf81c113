//! The lanes stage: between a run's streams and whoever reads its reports,
//! it replaces the real `CPython`'s inferred GIL lanes with measured ones.
//!
//! A worker of a watched stream names its OS thread (`thread`) before its
//! work begins; the stage then reads that thread's GIL from the process's
//! memory ([`watch`]: sampled, or every take and release where uprobes are
//! allowed) and holds the worker's records until the reads have
//! caught up with them, merging both into its lane ([`rewrite`]). The
//! supervisor fires the start gun only once every worker was taken in, so
//! the first hand-over is read like the others. Where a GIL cannot be read,
//! the stage says why in a `lanes … inferred` record and lets that process's
//! records through as they are: a wrong lane is worse than an inferred one.
//! It also writes what it read of each GIL (`gil` records): the
//! interpreter's own switch count while the workers worked, the hand-overs
//! the reads saw, and how many reads it took.

pub mod rewrite;
pub mod watch;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::clock::now_ns;
use crate::experiment::supervisor::{Report, RunId};
use crate::protocol::{LaneSource, Record};
use rewrite::{GilState, GilTrack, LaneWorker};
use watch::Watch;

/// How often the stage says what it read of each GIL while the run goes on.
const GIL_REPORT_EVERY: Duration = Duration::from_millis(250);

/// One GIL read, and the workers whose lanes it makes.
struct Gil {
    stream: usize,
    pid: u32,
    interp: u64,
    watch: Watch,
    track: GilTrack,
    /// The holder as the exact events left it.
    holder: Option<u32>,
    workers: Vec<u32>,
    /// Its final counts have been written.
    closed: bool,
    /// The hand-overs last said, so that a run that stands still (paused)
    /// gets no new word.
    said: Option<(u64, u64)>,
}

/// The lanes stage of one run.
pub struct LaneStage {
    run: RunId,
    gils: Vec<Gil>,
    /// Workers whose lanes come from a read GIL: which GIL, and their lane.
    workers: HashMap<u32, (usize, LaneWorker)>,
    /// Processes whose GIL could not be read, and why.
    unread: BTreeMap<u32, String>,
    /// Processes whose lanes' source was said.
    said: Vec<u32>,
    last_report: Instant,
    /// Workers of watched streams that named their thread, not yet taken
    /// in: (stream, worker, pid, tid, interpreter).
    named: Vec<(usize, u32, u32, u32, u64)>,
    /// How many workers the run's watched streams speak for.
    expected: usize,
}

impl LaneStage {
    /// The stage of run `run`, whose watched streams speak for `expected`
    /// workers.
    pub fn new(run: RunId, expected: usize) -> LaneStage {
        LaneStage {
            named: Vec::new(),
            expected,
            run,
            gils: Vec::new(),
            workers: HashMap::new(),
            unread: BTreeMap::new(),
            said: Vec::new(),
            last_report: Instant::now(),
        }
    }

    /// Some GIL is still being read.
    pub fn active(&self) -> bool {
        self.gils.iter().any(|g| !g.closed)
    }

    /// How soon the GILs read want their probes drained again, from how
    /// much of its ring buffer the busiest thread filled since the last
    /// drain: twice `every` under a sixteenth, `every` under an eighth, else
    /// half of it. Each round wakes the reading thread (a tenth of the real
    /// view's CPU at 40 rounds a second); a ring holds 4,096 events.
    pub fn drain_within(&self, every: Duration) -> Duration {
        let fullest =
            self.gils.iter().filter(|g| !g.closed).map(|g| g.watch.fullest_ring()).fold(0.0, f64::max);
        match fullest {
            f if f < 1.0 / 16.0 => every * 2,
            f if f < 1.0 / 8.0 => every,
            _ => every / 2,
        }
    }

    /// Takes one report of stream `stream` (`watched`: its GIL lanes are to
    /// be read) and puts what is ready of it into `out`. Returns how many
    /// workers were taken in (their GIL found, or why not): the start gun
    /// may count them. Workers are taken in together, once every one of the
    /// run's watched workers named its thread (or a stream ended first):
    /// reading a process's symbols costs CPU, which the workers still
    /// starting, and timing their start, should not share.
    pub fn pass(&mut self, report: Report, watched: bool, out: &mut Vec<Report>) -> usize {
        match report {
            Report::Record { stream, record: Record::Thread { t, worker, pid, tid, interp }, .. }
                if watched =>
            {
                out.push(self.report(stream, Record::Thread { t, worker, pid, tid, interp }));
                self.named.push((stream, worker, pid, tid, interp));
                if self.named.len() >= self.expected { self.take_in_named(out) } else { 0 }
            }
            Report::Record { stream, record, .. } => {
                match record.worker().and_then(|w| self.workers.get_mut(&w)) {
                    Some((_, lane)) => lane.own(record),
                    None => out.push(self.report(stream, record)),
                }
                0
            }
            Report::Ended { stream, .. } => {
                // A stream that ended early holds no one back.
                let taken = self.take_in_named(out);
                self.close_stream(stream, out);
                out.push(report);
                taken
            }
            Report::Hello { .. } => {
                out.push(report);
                0
            }
        }
    }

    /// Takes in every worker that named its thread so far.
    fn take_in_named(&mut self, out: &mut Vec<Report>) -> usize {
        let named = std::mem::take(&mut self.named);
        for &(stream, worker, pid, tid, interp) in &named {
            // A worker alone in its interpreter hands its GIL to nobody:
            // sampled, a thousand reads a second show all there is, for a
            // tenth of the CPU ten thousand would take from the workers.
            let alone = named.iter().filter(|n| n.2 == pid && n.4 == interp).count() == 1;
            self.take_in(stream, (worker, alone), pid, tid, interp, out);
        }
        named.len()
    }

    /// Takes the samples read since the last call and merges every lane as
    /// far as they go; now and then says what was read of each GIL.
    pub fn tick(&mut self, out: &mut Vec<Report>) {
        for g in 0..self.gils.len() {
            if !self.gils[g].closed {
                self.read_samples(g);
                self.merge(g, false, out);
            }
        }
        if self.last_report.elapsed() >= GIL_REPORT_EVERY {
            self.last_report = Instant::now();
            for g in 0..self.gils.len() {
                if !self.gils[g].closed {
                    self.say_counts(g, false, out);
                }
            }
        }
    }

    fn report(&self, stream: usize, record: Record) -> Report {
        Report::Record { run: self.run, stream, record }
    }

    /// Worker `worker` runs on thread `tid` of interpreter `interp` of
    /// process `pid`: finds that GIL (or why it cannot be read).
    fn take_in(
        &mut self,
        stream: usize,
        (worker, alone): (u32, bool),
        pid: u32,
        tid: u32,
        interp: u64,
        out: &mut Vec<Report>,
    ) {
        if self.unread.contains_key(&pid) {
            return;
        }
        let (found, new_gil) = match self.gils.iter().position(|g| g.pid == pid && g.interp == interp) {
            Some(g) => (Ok(g), false),
            None => (self.attach(stream, pid, interp, alone), true),
        };
        match found {
            Ok(g) => {
                // Its takes are seen from its first on: probed before its work begins.
                self.gils[g].watch.follow_new_threads();
                self.gils[g].workers.push(worker);
                self.workers.insert(worker, (g, LaneWorker::new(worker, tid)));
                // Said for each GIL found (a process of subinterpreters has
                // several): the start gun waited for each, and the tally
                // leaves that wait out of the model's time.
                if new_gil || !self.said.contains(&pid) {
                    if !self.said.contains(&pid) {
                        self.said.push(pid);
                    }
                    let source = self.gils[g].watch.source();
                    out.push(self.report(stream, Record::Lanes { t: now_ns(), pid, source }));
                }
            }
            Err(why) => {
                // The process's lanes are as weak as its weakest GIL: it is
                // said inferred, and this worker keeps its stamps' lane.
                self.unread.insert(pid, why.clone());
                self.said.push(pid);
                let source = LaneSource::Inferred { why };
                out.push(self.report(stream, Record::Lanes { t: now_ns(), pid, source }));
            }
        }
    }

    fn attach(&mut self, stream: usize, pid: u32, interp: u64, alone: bool) -> Result<usize, String> {
        let reader = watch::reader(pid, interp, watch::ATTACH_WITHIN).map_err(|f| f.reason)?;
        // Interpreters sharing one GIL (the legacy subinterpreters) share its watch.
        if let Some(g) =
            self.gils.iter().position(|g| g.pid == pid && g.watch.address == reader.gil_address())
        {
            return Ok(g);
        }
        // Uprobes see every take_gil of the process, whichever GIL it is
        // for: a worker in an interpreter of its own is sampled instead.
        let exact = watch::exact_wanted() && interp == 0;
        let watch = Watch::start(reader, exact, alone).map_err(|f| f.reason)?;
        let track = if watch.exact() { GilTrack::exact() } else { GilTrack::sampled() };
        self.gils.push(Gil {
            stream,
            pid,
            interp,
            watch,
            track,
            holder: None,
            said: None,
            workers: Vec::new(),
            closed: false,
        });
        Ok(self.gils.len() - 1)
    }

    /// Takes what was read of GIL `g` since the last call: its samples, and
    /// its exact events where it has probes.
    fn read_samples(&mut self, g: usize) {
        let gil = &mut self.gils[g];
        let ended = gil.watch.ended();
        // Its last batch came before it ended.
        let mut samples = Vec::new();
        gil.watch.take_samples(&mut samples);
        for s in samples {
            gil.track.read(GilState { t: s.t, holder: s.gil.holder_tid, switch_number: s.gil.switch_number });
        }
        if let Some((events, until)) = gil.watch.take_events(ended) {
            for e in &events {
                if let Some(holder) = watch::holder_after(e, gil.holder) {
                    gil.holder = holder;
                    gil.track.event(e.t, holder);
                }
            }
            gil.track.events_in_until(until);
        }
        if ended {
            gil.track.end();
        }
    }

    /// Merges the lanes of GIL `g`'s workers (all of them, with `all`);
    /// once every one of them finished, stops reading it and says so.
    fn merge(&mut self, g: usize, all: bool, out: &mut Vec<Report>) {
        let (stream, mut merged) = (self.gils[g].stream, Vec::new());
        for w in &self.gils[g].workers {
            if let Some((_, lane)) = self.workers.get_mut(w) {
                lane.merge(&self.gils[g].track, all, &mut merged);
            }
        }
        out.extend(merged.into_iter().map(|r| self.report(stream, r)));
        let done = self.gils[g].workers.iter().all(|w| self.workers.get(w).is_some_and(|(_, l)| l.done()));
        if done || all {
            self.gils[g].watch.stop();
            self.read_samples(g);
            self.say_counts(g, true, out);
            self.gils[g].closed = true;
        }
    }

    /// A `gil` record: what was read of GIL `g` while all its workers
    /// worked (from the last one's start to the first one's end, so that
    /// threads starting and ending, whose short holds fall between two
    /// samples, are not counted by one side only).
    /// Says nothing new where the counts did not move, unless `last`.
    fn say_counts(&mut self, g: usize, last: bool, out: &mut Vec<Report>) {
        let gil = &self.gils[g];
        let lanes: Vec<&LaneWorker> =
            gil.workers.iter().filter_map(|w| self.workers.get(w).map(|(_, l)| l)).collect();
        let Some(from) =
            lanes.iter().map(|l| l.began).collect::<Option<Vec<u64>>>().and_then(|b| b.into_iter().max())
        else {
            return;
        };
        let to = match lanes.iter().filter_map(|l| l.finished).min() {
            Some(first_end) => first_end,
            None => gil.track.latest_t().unwrap_or(from),
        };
        // No read of the counter between them: nothing to say, rather than
        // a count of zero.
        let Some((switches, seen)) = gil.track.handovers(from, to) else { return };
        if !last && gil.said == Some((switches, seen)) {
            return;
        }
        let stats = gil.watch.stats();
        // Exact lanes come from probes: their samples only read the counter.
        let samples = if gil.watch.exact() { 0 } else { stats.taken };
        let record = Record::Gil {
            // Stamped with the reads it counts: it moves no run's clock on.
            t: to,
            pid: gil.pid,
            interp: gil.interp,
            switches,
            seen,
            samples,
            span_ns: stats.elapsed_ns(),
            cpu_ns: stats.cpu_ns,
        };
        let stream = gil.stream;
        self.gils[g].said = Some((switches, seen));
        out.push(self.report(stream, record));
    }

    /// Stream `stream` ended: every lane it made is merged to its end.
    fn close_stream(&mut self, stream: usize, out: &mut Vec<Report>) {
        for g in 0..self.gils.len() {
            if self.gils[g].stream == stream && !self.gils[g].closed {
                self.gils[g].watch.stop();
                self.read_samples(g);
                self.gils[g].track.end();
                self.merge(g, true, out);
            }
        }
    }
}
