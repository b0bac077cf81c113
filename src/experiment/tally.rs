//! Turns a run's reports into state and figures: per-worker lanes, progress,
//! start costs, GIL waits, and at the end the run's results.
//!
//! Both the headless `run` command and the live view feed reports in here, so
//! the figures they show are computed once, the same way. Times are on the
//! caller's clock: the live view cuts paused stretches out before records
//! arrive here, so nothing here knows about pauses.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::experiment::memory::Memory;
use crate::experiment::spec::{Experiment, RunSpec};
use crate::experiment::stats::{Histogram, percentile};
use crate::experiment::supervisor::Report;
use crate::experiment::track::Track;
use crate::format::thousands;
use crate::protocol::{Hello, LaneSource, Record, ReleaseReason, Timeline};
use crate::sim::workload::Role;

/// What a worker is doing, as its lane shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    NotStarted,
    /// Holding the GIL (or running freely with the GIL off).
    Running,
    /// Ready to run, waiting for the GIL.
    Waiting,
    /// Blocked in I/O, GIL released.
    Io,
    Finished,
    Failed,
}

/// One worker: its states over time, its progress and its own figures.
#[derive(Clone, Debug)]
pub struct WorkerTrack {
    pub track: Track,
    pub done: u64,
    pub total: u64,
    /// When the worker was asked for, and when it ran its first instruction.
    pub requested: Option<u64>,
    pub started_at: Option<u64>,
    pub pid: Option<u32>,
    pub finished_at: Option<u64>,
    /// CPU time of the worker's own thread, reported as it finished.
    pub cpu_ns: Option<u64>,
    /// When the current wait for the GIL began.
    wait_since: Option<u64>,
    /// Records about this worker so far, and the newest one's time.
    records: u64,
    pub seen_until: u64,
    /// Time its lane showed it running, and waiting for the GIL.
    pub ran_ns: u64,
    pub waited_ns: u64,
}

impl WorkerTrack {
    fn new(origin: u64) -> Self {
        WorkerTrack {
            track: Track::new(origin),
            done: 0,
            total: 0,
            requested: None,
            started_at: None,
            pid: None,
            finished_at: None,
            cpu_ns: None,
            wait_since: None,
            records: 0,
            seen_until: 0,
            ran_ns: 0,
            waited_ns: 0,
        }
    }

    pub fn lane(&self) -> Lane {
        self.track.lane()
    }

    /// From its request to its first instruction.
    pub fn start_cost_ns(&self) -> Option<u64> {
        Some(self.started_at?.saturating_sub(self.requested?))
    }

    /// The share of its time at work (running or waiting for the GIL, I/O
    /// aside) that its lane showed it running; None before any.
    pub fn held_share(&self) -> Option<f64> {
        let at_work = self.ran_ns + self.waited_ns;
        (at_work > 0).then(|| self.ran_ns as f64 / at_work as f64)
    }
}

/// Where a run's GIL lanes come from, all its processes together (the
/// weakest of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lanes {
    /// Every take and release as it happened: the simulated lock's own
    /// records, or uprobes on the real interpreter's `take_gil`/`drop_gil`.
    Exact,
    /// The real interpreter's GIL, read from its memory every `period_ns`.
    Measured { period_ns: u64 },
    /// Guessed from the worker's progress stamps (every `resolution_ns`),
    /// and why nothing better could be had, where gilscope said.
    Inferred { resolution_ns: Option<u64>, why: Option<String> },
}

impl Lanes {
    /// How much a lane can be trusted: inferred < measured < exact.
    pub fn rank(&self) -> u8 {
        match self {
            Lanes::Inferred { .. } => 0,
            Lanes::Measured { .. } => 1,
            Lanes::Exact => 2,
        }
    }

    /// `exact`, `measured` or `inferred`.
    pub fn name(&self) -> &'static str {
        match self {
            Lanes::Exact => "exact",
            Lanes::Measured { .. } => "measured",
            Lanes::Inferred { .. } => "inferred",
        }
    }

    /// How it reads beside a lane: "exact", "measured (sampled every 100 µs)",
    /// "inferred (stamps every 48 µs)".
    pub fn describe(&self) -> String {
        match self {
            Lanes::Exact => "exact".to_owned(),
            Lanes::Measured { period_ns } => {
                format!("measured (sampled every {} µs)", (period_ns + 500) / 1000)
            }
            Lanes::Inferred { resolution_ns: Some(ns), .. } => {
                format!("inferred (stamps every {} µs)", (ns + 500) / 1000)
            }
            Lanes::Inferred { resolution_ns: None, .. } => "inferred".to_owned(),
        }
    }
}

/// What gilscope read of one GIL of the real interpreter while the workers
/// worked (a `gil` record: the latest counts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GilRead {
    /// How far the interpreter's own `switch_number` moved.
    pub switches: u64,
    /// Hand-overs the lanes' source saw meanwhile.
    pub seen: u64,
    /// Samples taken (0 where uprobes saw every event instead).
    pub samples: u64,
    pub span_ns: u64,
    /// The watcher's own CPU time.
    pub cpu_ns: u64,
}

/// One I/O request's reply: how long it took, and whether other workers of
/// the run were still at work meanwhile (the latency a convoy shows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub latency_ns: u64,
    pub contended: bool,
}

/// Per-process figures from its `end` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessEnd {
    pub cpu_ns: u64,
    pub max_rss_kb: u64,
    pub switches: u64,
    /// Where the interpreter counts them (the simulation does).
    pub drop_requests: Option<u64>,
}

/// Everything known about one run so far.
#[derive(Clone, Debug)]
pub struct Tally {
    pub spec: RunSpec,
    /// Where cell 0 of every lane starts.
    pub origin: u64,
    /// When the supervisor asked for the first process.
    pub requested_at: u64,
    /// The earliest worker request (a thread or process start), the moment
    /// a Python program would start its clock. Interpreter boot before it
    /// is not the model's cost.
    pub first_request: Option<u64>,
    pub workers: Vec<WorkerTrack>,
    /// Each stream's header: the workers it speaks for, and how it knows.
    pub hellos: BTreeMap<usize, Hello>,
    pub ends: BTreeMap<u32, ProcessEnd>,
    streams: usize,
    streams_ended: usize,
    pub failure: Option<String>,
    pub waits: u64,
    pub wait_total_ns: u64,
    pub wait_max_ns: u64,
    pub replies: Vec<Reply>,
    /// How long a worker held the GIL before it had to let go to a waiter.
    pub holds: Histogram,
    /// The newest timestamp any record carried.
    pub last_event: u64,
    /// The processes' memory at its peak, where someone read it (headless runs).
    pub memory: Option<Memory>,
    /// Where each process's lanes come from, as gilscope's lanes stage said
    /// (the real `CPython`'s; the simulation's are the lock's own).
    pub lanes_of: BTreeMap<u32, LaneSource>,
    /// When the lanes stage last took a process in (found its GIL, or gave
    /// up): the start gun waits for it, so the time from the last worker's
    /// start until then is gilscope's own, not the model's.
    taken_in_at: Option<u64>,
    /// What gilscope read of each GIL, by process and interpreter.
    pub gils_read: BTreeMap<(u32, u64), GilRead>,
    /// Hand-overs of GILs whose takes are the lock's own, in its order
    /// (exact streams): a take by another worker than the stream's last.
    lane_handovers: u64,
    last_taker: BTreeMap<usize, u32>,
    /// When the work last moved forward (progress reported, a worker
    /// finished): records that move nothing do not keep a run alive.
    last_advance: u64,
}

impl Tally {
    pub fn new(spec: RunSpec, requested_at: u64, streams: usize) -> Self {
        Tally::with_origin(spec, requested_at, streams, requested_at)
    }

    /// A tally whose lanes count their cells from `origin` (the live view
    /// puts every run of a session on one grid, so race panels line up).
    pub fn with_origin(spec: RunSpec, requested_at: u64, streams: usize, origin: u64) -> Self {
        let origin = origin.min(requested_at);
        let workers = vec![WorkerTrack::new(origin); spec.experiment.workers as usize];
        Tally {
            origin,
            spec,
            requested_at,
            first_request: None,
            workers,
            hellos: BTreeMap::new(),
            ends: BTreeMap::new(),
            streams,
            streams_ended: 0,
            failure: None,
            waits: 0,
            wait_total_ns: 0,
            wait_max_ns: 0,
            replies: Vec::new(),
            holds: Histogram::default(),
            last_event: requested_at,
            memory: None,
            lanes_of: BTreeMap::new(),
            taken_in_at: None,
            gils_read: BTreeMap::new(),
            lane_handovers: 0,
            last_taker: BTreeMap::new(),
            last_advance: requested_at,
        }
    }

    /// True once the run failed, every stream ended, or the work is done:
    /// whatever a worker would still send could only be a record too many.
    pub fn is_over(&self) -> bool {
        self.streams_ended >= self.streams || self.failure.is_some() || self.complete()
    }

    /// Every worker finished, and every process that ran one or started a
    /// stream sent its `end`.
    fn complete(&self) -> bool {
        self.hellos.len() >= self.streams
            && self.workers.iter().all(|w| w.finished_at.is_some())
            && self.workers.iter().filter_map(|w| w.pid).all(|pid| self.ends.contains_key(&pid))
            && self.hellos.values().all(|h| self.ends.contains_key(&h.pid))
    }

    pub fn succeeded(&self) -> bool {
        self.is_over() && self.failure.is_none()
    }

    /// How the workers' own streams draw the GIL lanes (exact unless a
    /// stream said otherwise): what [`Tally::lanes`] falls back to.
    pub fn timeline(&self) -> Timeline {
        self.hellos.values().map(|h| h.timeline).find(|t| *t != Timeline::Exact).unwrap_or(Timeline::Exact)
    }

    /// Where the run's GIL lanes come from, all its worker processes
    /// together (the weakest); None before any stream spoke.
    pub fn lanes(&self) -> Option<Lanes> {
        if self.hellos.is_empty() {
            return None;
        }
        let resolution_ns = match self.timeline() {
            Timeline::Exact => return Some(Lanes::Exact),
            Timeline::Inferred { resolution_ns } => Some(resolution_ns),
        };
        let mut pids: Vec<u32> = self.workers.iter().filter_map(|w| w.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        let read: Vec<&LaneSource> = pids.iter().filter_map(|p| self.lanes_of.get(p)).collect();
        let inferred = |why: Option<String>| Some(Lanes::Inferred { resolution_ns, why });
        if let Some(LaneSource::Inferred { why }) = read.iter().find(|l| l.rank() == 0) {
            return inferred(Some(why.clone()));
        }
        // A worker process gilscope has said nothing of is not read (yet).
        if pids.is_empty() || read.len() < pids.len() {
            return inferred(None);
        }
        match read.iter().min_by_key(|l| l.rank()) {
            Some(LaneSource::Measured { period_ns }) => Some(Lanes::Measured { period_ns: *period_ns }),
            _ => Some(Lanes::Exact),
        }
    }

    /// The interpreters' own count of GIL hand-overs while the workers
    /// worked, and how many of them the lanes' source saw, where gilscope
    /// read them; None where it did not.
    pub fn switches_read(&self) -> Option<(u64, u64)> {
        if self.gils_read.is_empty() || !matches!(self.lanes(), Some(Lanes::Exact | Lanes::Measured { .. })) {
            return None;
        }
        Some(self.gils_read.values().fold((0, 0), |(n, s), g| (n + g.switches, s + g.seen)))
    }

    /// Hand-overs counted from exact streams' takes in the lock's order (the
    /// simulation's), so far.
    pub fn lane_handovers(&self) -> u64 {
        self.lane_handovers
    }

    /// Distinct OS processes that ran workers (as the workers reported).
    pub fn process_count(&self) -> usize {
        let mut pids: Vec<u32> = self.workers.iter().filter_map(|w| w.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        pids.len()
    }

    /// Whether the run's interpreters run without a GIL: asked for, or
    /// reported by an interpreter about itself (a free-threaded `CPython` runs
    /// without it whatever was asked).
    pub fn gil_off(&self) -> bool {
        self.spec.gil_off() || self.hellos.values().any(|h| !h.gil)
    }

    /// Marks the run failed, with a message for the user.
    pub fn fail(&mut self, why: String, t: u64) {
        if self.failure.is_none() {
            self.failure = Some(why);
        }
        for w in &mut self.workers {
            if w.lane() != Lane::Finished {
                w.track.enter(t, Lane::Failed);
            }
        }
    }

    /// Worker `w` enters `lane` at `t`; a hold that ends in a wait is counted.
    fn enter(&mut self, w: u32, t: u64, lane: Lane) {
        let Some(worker) = self.workers.get_mut(w as usize) else { return };
        match worker.track.enter(t, lane) {
            Some((Lane::Running, from, to)) => {
                worker.ran_ns += to - from;
                if lane == Lane::Waiting {
                    self.holds.add(to - from);
                }
            }
            Some((Lane::Waiting, from, to)) => worker.waited_ns += to - from,
            _ => {}
        }
    }

    /// How many GILs the run's interpreters reported among them: one per
    /// process that ran workers, unless a process said it has more (an
    /// interpreter each); 0 without a GIL. None before any stream spoke.
    pub fn gil_count(&self) -> Option<u32> {
        if self.hellos.is_empty() {
            return None;
        }
        if self.gil_off() {
            return Some(0);
        }
        if self.hellos.values().any(|h| h.gils.is_some()) {
            return Some(self.hellos.values().map(|h| h.gils.unwrap_or(1)).sum());
        }
        // A CPython multiprocessing parent speaks for children that each have their own.
        Some(u32::try_from(self.process_count().max(self.hellos.len())).unwrap_or(u32::MAX))
    }

    /// Memory the lanes take.
    pub fn lane_bytes(&self) -> usize {
        self.workers.iter().map(|w| w.track.bytes()).sum()
    }

    /// Lets the finest zoom still kept go in every lane (memory bounds).
    pub fn shed_finest(&mut self) -> bool {
        let mut any = false;
        for w in &mut self.workers {
            any |= w.track.shed_finest();
        }
        any
    }

    pub fn apply(&mut self, report: Report) {
        match report {
            Report::Hello { stream, hello, .. } => {
                self.hellos.insert(stream, hello);
            }
            Report::Record { stream, record, .. } => {
                self.count_handover(stream, &record);
                self.record(&record);
                self.fail_if_stalled();
            }
            Report::Ended { outcome, .. } => {
                self.streams_ended += 1;
                let t = self.last_event;
                match outcome {
                    Err(why) => self.fail(why, t),
                    Ok(()) if self.streams_ended >= self.streams => {
                        if let Some(why) = self.incomplete() {
                            self.fail(why, t);
                        }
                    }
                    Ok(()) => {}
                }
            }
        }
    }

    /// Only the lock's own takes, in the order it gave them out, are
    /// hand-overs: not an inferred stream's (batches per worker), not a
    /// process with a GIL per interpreter, not threads without a GIL.
    fn count_handover(&mut self, stream: usize, record: &Record) {
        let Record::Take { worker, .. } = *record else { return };
        let exact = self
            .hellos
            .get(&stream)
            .is_some_and(|h| h.gil && h.timeline == Timeline::Exact && h.gils.is_none_or(|g| g <= 1));
        if exact
            && let Some(previous) = self.last_taker.insert(stream, worker)
            && previous != worker
        {
            self.lane_handovers += 1;
        }
    }

    /// Fails a run whose workers keep talking without getting anywhere for
    /// longer than a silent one would be allowed.
    fn fail_if_stalled(&mut self) {
        let limit = super::silence_limit(&self.spec);
        let stalled = std::time::Duration::from_nanos(self.last_event.saturating_sub(self.last_advance));
        if stalled > limit && self.failure.is_none() {
            let t = self.last_event;
            self.fail(
                format!(
                    "the workers made no progress in {} s, though they kept sending records",
                    limit.as_secs()
                ),
                t,
            );
        }
    }

    /// Why a run whose streams all closed cleanly still cannot be trusted.
    fn incomplete(&self) -> Option<String> {
        if let Some(w) = self.workers.iter().position(|w| w.finished_at.is_none()) {
            return Some(format!("worker {w} stopped without finishing (truncated stream)"));
        }
        let pids = self.process_count();
        if self.ends.len() < pids {
            return Some(format!("{} of {pids} worker processes sent no end record", pids - self.ends.len()));
        }
        None
    }

    fn worker(&mut self, w: u32) -> Option<&mut WorkerTrack> {
        let found = self.workers.get_mut(w as usize);
        if found.is_none() && self.failure.is_none() {
            self.failure =
                Some(format!("a worker spoke of worker {w}, but this run has {}", self.workers.len()));
        }
        self.workers.get_mut(w as usize)
    }

    /// How much work worker `w` was given: iterations, or requests.
    fn work_of(&self, w: u32) -> u64 {
        let e = &self.spec.experiment;
        match e.workload.role(w) {
            Role::Cpu => e.work_iterations(),
            Role::Io => u64::from(e.work_requests()),
        }
    }

    /// The most records worker `w`'s work can produce: at most a GIL hand-over
    /// (release, wait, take) and a progress record per loop iteration, a few
    /// records per I/O request, and a handful more. Generous on purpose: it
    /// only stops a stream that would never end.
    fn record_limit(&self, w: u32) -> u64 {
        let e = &self.spec.experiment;
        let iterations = match e.workload.role(w) {
            Role::Cpu => e.work_iterations(),
            Role::Io => u64::from(e.work_requests()).saturating_mul(e.reply_iterations.saturating_add(8)),
        };
        iterations.saturating_mul(5).saturating_add(256)
    }

    /// Why `record` cannot be part of this run's work, if it cannot.
    fn impossible(&self, record: &Record) -> Option<String> {
        let Some(w) = record.worker() else {
            return match *record {
                Record::End { pid, .. } if self.ends.contains_key(&pid) => {
                    Some(format!("process {pid} sent two end records"))
                }
                _ => None,
            };
        };
        let track = self.workers.get(w as usize)?;
        if track.finished_at.is_some() {
            return Some(format!("worker {w} sent a record after it finished"));
        }
        if track.records >= self.record_limit(w) {
            return Some(format!(
                "worker {w} sent more records than its work can produce ({})",
                thousands(self.record_limit(w))
            ));
        }
        match *record {
            Record::Started { .. } if track.started_at.is_some() => Some(format!("worker {w} started twice")),
            Record::Progress { done, total, .. } if total != self.work_of(w) => Some(format!(
                "worker {w} reported {} of {} units of work, but was asked for {}",
                thousands(done),
                thousands(total),
                thousands(self.work_of(w))
            )),
            _ => None,
        }
    }

    /// Counts a record and moves the newest times it brings, the run's and
    /// its worker's.
    fn note_time(&mut self, record: &Record) {
        let t = record.time();
        if let Some(w) = record.worker().and_then(|w| self.workers.get_mut(w as usize)) {
            w.records += 1;
            w.seen_until = w.seen_until.max(t.unwrap_or(0));
        }
        if let Some(t) = t {
            self.last_event = self.last_event.max(t);
        }
    }

    fn record(&mut self, record: &Record) {
        if let Some(why) = self.impossible(record) {
            let t = self.last_event;
            return self.fail(why, t);
        }
        self.note_time(record);
        match *record {
            Record::Started { t, worker, requested } => {
                self.first_request = Some(self.first_request.map_or(requested, |f| f.min(requested)));
                if let Some(w) = self.worker(worker) {
                    w.requested = Some(requested);
                    w.started_at = Some(t);
                }
                // Started, but its work begins at the start gun, once every
                // worker of the race has started: until its first wait or
                // take, it neither runs nor waits for a GIL.
                self.enter(worker, t, Lane::NotStarted);
            }
            Record::Process { worker, pid, .. } => {
                if let Some(w) = self.worker(worker) {
                    w.pid = Some(pid);
                }
            }
            Record::Wait { t, worker } => {
                if let Some(w) = self.worker(worker) {
                    // A forced dropper has been waiting since its release.
                    w.wait_since.get_or_insert(t);
                }
                self.enter(worker, t, Lane::Waiting);
            }
            Record::Take { t, worker } => {
                let since = self.worker(worker).and_then(|w| w.wait_since.take());
                self.enter(worker, t, Lane::Running);
                if let Some(since) = since {
                    let ns = t.saturating_sub(since);
                    self.waits += 1;
                    self.wait_total_ns += ns;
                    self.wait_max_ns = self.wait_max_ns.max(ns);
                }
            }
            Record::Release { t, worker, reason } => match reason {
                // From here the worker waits: forced switching holds it until
                // another thread took the GIL, then it queues up again (its
                // `wait` record comes then). An inferred gap is time not running.
                ReleaseReason::DropRequest | ReleaseReason::Inferred | ReleaseReason::Switched => {
                    if let Some(w) = self.worker(worker) {
                        w.wait_since = Some(t);
                    }
                    self.enter(worker, t, Lane::Waiting);
                }
                ReleaseReason::Io => self.enter(worker, t, Lane::Io),
                ReleaseReason::Finished => {}
            },
            Record::IoBegin { t, worker } => self.enter(worker, t, Lane::Io),
            Record::Reply { t, worker, latency_ns } => {
                // Contended: some other worker of the run was still at work.
                let asked = t.saturating_sub(latency_ns);
                let contended = self.workers.iter().enumerate().any(|(w, track)| {
                    w != worker as usize
                        && track.started_at.is_some_and(|s| s <= t)
                        && track.finished_at.is_none_or(|f| f > asked)
                });
                self.replies.push(Reply { latency_ns, contended });
            }
            Record::Progress { worker, done, total, .. } => {
                let mut advanced = false;
                if let Some(w) = self.worker(worker) {
                    advanced = done > w.done;
                    w.done = w.done.max(done);
                    w.total = total;
                }
                if advanced {
                    self.last_advance = self.last_event;
                }
            }
            Record::Finished { t, worker } => {
                if let Some(w) = self.worker(worker) {
                    w.finished_at = Some(t);
                    w.done = w.total;
                }
                self.last_advance = self.last_event;
                self.enter(worker, t, Lane::Finished);
            }
            Record::Cpu { worker, cpu_ns, .. } => {
                if let Some(w) = self.worker(worker) {
                    w.cpu_ns = Some(cpu_ns);
                }
            }
            Record::End { pid, cpu_ns, max_rss_kb, switches, drop_requests, .. } => {
                self.ends.insert(pid, ProcessEnd { cpu_ns, max_rss_kb, switches, drop_requests });
            }
            Record::Lanes { t, pid, ref source } => {
                // A process's lanes are as weak as its weakest GIL's.
                if !matches!(self.lanes_of.get(&pid), Some(LaneSource::Inferred { .. })) {
                    self.lanes_of.insert(pid, source.clone());
                }
                self.taken_in_at = Some(self.taken_in_at.map_or(t, |at| at.max(t)));
            }
            Record::Gil { pid, interp, switches, seen, samples, span_ns, cpu_ns, .. } => {
                self.gils_read.insert((pid, interp), GilRead { switches, seen, samples, span_ns, cpu_ns });
            }
            // The stream's end reports an error with the exit status; the
            // threads matter to gilscope's lanes stage only.
            Record::Error { .. } | Record::Thread { .. } => {}
        }
    }

    /// Wall time so far (or in total, once finished).
    /// Where the run's time starts: its program's first request for a
    /// worker, once known, else gilscope's request to start it (an
    /// interpreter's boot before the first request is no model's cost).
    pub fn time_starts_at(&self) -> u64 {
        self.first_request.unwrap_or(self.requested_at)
    }

    pub fn wall_ns(&self, now: u64) -> u64 {
        let end = if self.workers.iter().all(|w| w.finished_at.is_some()) {
            self.workers.iter().filter_map(|w| w.finished_at).max().unwrap_or(now)
        } else {
            now
        };
        end.saturating_sub(self.time_starts_at()).saturating_sub(self.held_for_lanes_ns())
    }

    /// How long the workers, all started, waited at the start gun while
    /// gilscope found their GILs (reading an interpreter's symbols takes tens
    /// of milliseconds): left out of the wall time, as a pause is, since no
    /// Python program waits for it.
    pub fn held_for_lanes_ns(&self) -> u64 {
        let Some(taken_in) = self.taken_in_at else { return 0 };
        let Some(last_start) = self.workers.iter().map(|w| w.started_at).max().flatten() else { return 0 };
        if self.workers.iter().any(|w| w.started_at.is_none()) {
            return 0;
        }
        taken_in.saturating_sub(last_start)
    }

    /// Overall progress, 0.0 ..= 1.0.
    pub fn progress(&self) -> f64 {
        let (done, total) = self.workers.iter().fold((0u64, 0u64), |(d, t), w| (d + w.done, t + w.total));
        if total == 0 { 0.0 } else { done as f64 / total as f64 }
    }

    /// What starting a worker costs, measured the same way for every model:
    /// from the first start request until the last worker ran its first
    /// instruction, divided by the workers. Threads that must win the GIL
    /// back from the ones already running pay for it here, as processes pay
    /// for their fork. None until every worker started.
    pub fn start_cost_ns(&self) -> Option<u64> {
        let first = self.first_request?;
        let mut last = 0;
        for w in &self.workers {
            last = last.max(w.started_at?);
        }
        Some(last.saturating_sub(first) / self.workers.len().max(1) as u64)
    }

    /// The replies that met other workers at work, sorted by latency.
    pub fn contended_latencies_ns(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.replies.iter().filter(|r| r.contended).map(|r| r.latency_ns).collect();
        v.sort_unstable();
        v
    }

    /// Every reply's latency, sorted (a lone worker's are all uncontended).
    pub fn latencies_ns(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.replies.iter().map(|r| r.latency_ns).collect();
        v.sort_unstable();
        v
    }

    pub fn mean_wait_ns(&self) -> u64 {
        self.wait_total_ns.checked_div(self.waits).unwrap_or(0)
    }

    /// How often a GIL changed hands, as the processes counted it in their
    /// `end` records (0 until they end; the live view counts takes itself).
    pub fn switches(&self) -> u64 {
        self.ends.values().map(|e| e.switches).sum()
    }

    /// How often a waiter asked a GIL's holder to drop it, where the
    /// interpreters counted (None for the real `CPython`, which cannot tell).
    pub fn drop_requests(&self) -> Option<u64> {
        self.ends.values().map(|e| e.drop_requests).sum()
    }

    /// From the first worker's request to the last worker's first
    /// instruction: how long starting them all took (they wait for each
    /// other, then begin their work together).
    pub fn starting_ns(&self) -> Option<u64> {
        let last = self.workers.iter().map(|w| w.started_at).collect::<Option<Vec<u64>>>()?;
        Some(last.into_iter().max()?.saturating_sub(self.first_request?))
    }

    /// The run's results, once it finished cleanly: one round, its speedup
    /// and cleanliness left for whoever compares it with a baseline.
    pub fn result(&self) -> Option<RunResult> {
        if !self.succeeded() {
            return None;
        }
        let wall_ns = self.wall_ns(self.last_event).max(1);
        let cpu_ns: u64 = self.ends.values().map(|e| e.cpu_ns).sum();
        // Cores used counts the workers' own threads, so an interpreter's boot
        // and a parent process's bookkeeping do not pass for parallel work.
        let worker_cpu_ns: Option<u64> = self.workers.iter().map(|w| w.cpu_ns).sum();
        let starts: Vec<u64> = self.workers.iter().filter_map(WorkerTrack::start_cost_ns).collect();
        let gil = !self.gil_off();
        // A lone worker's replies meet nobody; a model's count only beside others.
        let latencies =
            if self.workers.len() > 1 { self.contended_latencies_ns() } else { self.latencies_ns() };
        let ms = |ns: f64| ns / 1e6;
        let lanes = self.lanes().unwrap_or(Lanes::Inferred { resolution_ns: None, why: None });
        // The interpreters' own count where it was read; else what the
        // processes counted (the simulation's lock; the real CPython's
        // inferred takes), which is also what the lanes show.
        let (gil_switches, gil_switches_in_lanes) = self.switches_read().unwrap_or_else(|| {
            let counted = self.switches();
            (counted, counted)
        });
        let sampled: Vec<&GilRead> = self.gils_read.values().filter(|g| g.samples > 0).collect();
        let samples_per_s = match lanes {
            Lanes::Measured { .. } if !sampled.is_empty() => {
                let rate = |g: &&GilRead| g.samples as f64 / (g.span_ns.max(1) as f64 / 1e9);
                Some(sampled.iter().map(rate).sum::<f64>() / sampled.len() as f64)
            }
            _ => None,
        };
        let share = |g: &GilRead| g.cpu_ns as f64 / g.span_ns.max(1) as f64;
        let watcher_cores =
            (!self.gils_read.is_empty()).then(|| self.gils_read.values().map(share).sum::<f64>());
        let watcher_cpu = watcher_cores.map(|c| c / self.gils_read.len() as f64);
        Some(RunResult {
            model: self.spec.model.name(),
            label: RunSpec {
                experiment: Experiment { gil, ..self.spec.experiment.clone() },
                model: self.spec.model,
            }
            .label(),
            runtime: self.hellos.values().next().map_or("sim", |h| h.runtime.as_str()),
            gil,
            workers: self.spec.experiment.workers,
            processes: self.process_count() as u32,
            gils: self.gil_count().unwrap_or(0),
            python: None,
            start_method: None,
            wall_s: wall_ns as f64 / 1e9,
            baseline_s: None,
            speedup: None,
            speedup_min: None,
            speedup_max: None,
            speedup_limit: f64::from(self.spec.experiment.workers),
            work_speed: None,
            rounds: 1,
            cores_used: worker_cpu_ns.unwrap_or(cpu_ns) as f64 / wall_ns as f64,
            cpu_s: cpu_ns as f64 / 1e9,
            start_us: self.start_cost_ns().unwrap_or(0) as f64 / 1e3,
            start_us_max: starts.iter().copied().max().unwrap_or(0) as f64 / 1e3,
            started_s: self.starting_ns().unwrap_or(0) as f64 / 1e9,
            peak_rss_kb: self.ends.values().map(|e| e.max_rss_kb).sum(),
            memory: self.memory,
            lanes: lanes.name(),
            lanes_fallback: match &lanes {
                Lanes::Inferred { why, .. }
                    if self.spec.experiment.runtime == crate::protocol::Runtime::Cpython =>
                {
                    Some(why.clone().unwrap_or_else(|| "the GIL was not read".to_owned()))
                }
                _ => None,
            },
            sample_period_us: match lanes {
                Lanes::Measured { period_ns } => Some(period_ns as f64 / 1e3),
                _ => None,
            },
            samples_per_s,
            watcher_cpu,
            watcher_cores,
            gil_switches,
            gil_switches_in_lanes,
            held_share: self.workers.iter().map(|w| w.held_share().unwrap_or(0.0)).collect(),
            gil_drop_requests: self.drop_requests(),
            gil_waits: self.waits,
            gil_wait_mean_ms: self.mean_wait_ns() as f64 / 1e6,
            gil_wait_max_ms: self.wait_max_ns as f64 / 1e6,
            hold_ms: self
                .holds
                .percentile_ns(50.0)
                .zip(self.holds.percentile_ns(90.0))
                .map(|(median, p90)| Holds { median: ms(median), p90: ms(p90), count: self.holds.count() }),
            io_latency_ms: Latency::of(&latencies),
            outside_load: 0.0,
            clean: true,
            doubts: Vec::new(),
        })
    }
}

/// A finished run's figures, all measured. Figures over several rounds are
/// medians, with the speedup's least and most beside it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunResult {
    pub model: &'static str,
    pub label: String,
    pub runtime: &'static str,
    pub gil: bool,
    pub workers: u32,
    /// OS processes that ran workers.
    pub processes: u32,
    /// GILs among the workers, as the interpreters reported (0: none).
    pub gils: u32,
    /// The real interpreter's version, for a `CPython` run.
    pub python: Option<String>,
    /// How multiprocessing started its processes (a `CPython` processes run).
    pub start_method: Option<&'static str>,
    pub wall_s: f64,
    /// The workers' jobs one after another, each alone, under this run's
    /// runtime, measured in the same round.
    pub baseline_s: Option<f64>,
    /// `baseline_s` / `wall_s`: the median over the rounds.
    pub speedup: Option<f64>,
    pub speedup_min: Option<f64>,
    pub speedup_max: Option<f64>,
    /// The most a speedup can physically be: min(workers, cores).
    pub speedup_limit: f64,
    pub rounds: u32,
    /// CPU time of the worker threads / wall time: what noise does not move.
    pub cores_used: f64,
    /// CPU-bound work only: the speedup ÷ the cores used, that is how fast
    /// the workers' CPU time did their work against the lone worker's (1.0:
    /// as fast as alone; 0.75: a quarter of each CPU second was lost, to
    /// cores that slow each other down or a machine that slowed down).
    pub work_speed: Option<f64>,
    /// CPU time of the worker processes, all their threads, boot included.
    pub cpu_s: f64,
    /// Start cost per worker: from the first request to the last worker's
    /// first instruction, divided by the workers.
    pub start_us: f64,
    /// The longest single worker's request → first instruction.
    pub start_us_max: f64,
    /// From the first worker's request to the last one's first instruction:
    /// how long starting them all took. The workers wait for each other
    /// there, then begin together; the wall time includes it.
    pub started_s: f64,
    /// Sum of the processes' peak resident memory (each one's own high-water mark).
    pub peak_rss_kb: u64,
    /// Resident, proportional and unique memory of the processes at their
    /// peak, as /proc read them while the run went (headless runs).
    pub memory: Option<Memory>,
    /// Where the GIL lanes come from: `exact` (the simulated lock's own
    /// records, or uprobes on the real one), `measured` (the real GIL read
    /// from memory every `sample_period_us`), or `inferred` (the worker's
    /// progress stamps; `lanes_fallback` says why).
    pub lanes: &'static str,
    pub lanes_fallback: Option<String>,
    pub sample_period_us: Option<f64>,
    /// Samples taken per second, per GIL sampled (mean).
    pub samples_per_s: Option<f64>,
    /// The GIL watcher's own CPU, as a share of one core per GIL watched.
    pub watcher_cpu: Option<f64>,
    /// The GIL watcher's CPU for all the GILs watched, in cores.
    pub watcher_cores: Option<f64>,
    /// GIL hand-overs: the interpreter's own `switch_number` while the
    /// workers worked, where gilscope read it; else as the processes
    /// counted them (the simulated lock's; an inferred count for the real
    /// `CPython`).
    pub gil_switches: u64,
    /// The hand-overs the lanes show, over the same time.
    pub gil_switches_in_lanes: u64,
    /// Per worker, the share of its time at work (I/O aside) its lane
    /// showed it holding the GIL (running).
    pub held_share: Vec<f64>,
    /// Drop requests the interpreters counted (the simulation's; None for `CPython`).
    pub gil_drop_requests: Option<u64>,
    pub gil_waits: u64,
    pub gil_wait_mean_ms: f64,
    pub gil_wait_max_ms: f64,
    /// How long a worker held the GIL before it had to hand it over.
    pub hold_ms: Option<Holds>,
    /// The I/O requests' latency, of those made while other workers were at
    /// work (all of a lone worker's).
    pub io_latency_ms: Option<Latency>,
    /// Cores' worth of CPU other processes used while the run was timed.
    pub outside_load: f64,
    /// False when outside load or an impossible result makes the figures
    /// untrustworthy; `doubts` says why.
    pub clean: bool,
    pub doubts: Vec<String>,
}

#[cfg(test)]
impl RunResult {
    /// A finished run of two workers with a 7 s baseline, for tests.
    pub(crate) fn example(
        model: &'static str,
        label: &str,
        processes: u32,
        wall_s: f64,
        cores_used: f64,
    ) -> Self {
        RunResult {
            model,
            label: label.to_owned(),
            runtime: "sim",
            gil: true,
            workers: 2,
            processes,
            gils: processes,
            python: None,
            start_method: None,
            wall_s,
            baseline_s: Some(7.0),
            speedup: Some(7.0 / wall_s),
            speedup_min: None,
            speedup_max: None,
            speedup_limit: 2.0,
            work_speed: None,
            rounds: 1,
            cores_used,
            cpu_s: 0.0,
            start_us: 0.0,
            start_us_max: 0.0,
            started_s: 0.0,
            peak_rss_kb: 0,
            lanes: "exact",
            lanes_fallback: None,
            sample_period_us: None,
            samples_per_s: None,
            watcher_cpu: None,
            watcher_cores: None,
            gil_switches: 0,
            gil_switches_in_lanes: 0,
            held_share: Vec::new(),
            gil_drop_requests: None,
            gil_waits: 0,
            gil_wait_mean_ms: 0.0,
            gil_wait_max_ms: 0.0,
            hold_ms: None,
            io_latency_ms: None,
            outside_load: 0.0,
            memory: None,
            clean: true,
            doubts: Vec::new(),
        }
    }
}

/// GIL hold spans: median and 90th percentile, in ms.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Holds {
    pub median: f64,
    pub p90: f64,
    pub count: u64,
}

/// I/O request latency, in ms.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub requests: usize,
}

impl Latency {
    /// Of sorted latencies in ns; None when there are none.
    pub fn of(sorted_ns: &[u64]) -> Option<Latency> {
        let ms = |ns: u64| ns as f64 / 1e6;
        Some(Latency {
            mean: sorted_ns.iter().sum::<u64>() as f64 / sorted_ns.len().max(1) as f64 / 1e6,
            p50: ms(percentile(sorted_ns, 50.0)?),
            p99: ms(percentile(sorted_ns, 99.0)?),
            max: ms(*sorted_ns.last()?),
            requests: sorted_ns.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::spec::Model;

    fn tally(workers: u32) -> Tally {
        Tally::new(RunSpec { experiment: Experiment::new(workers), model: Model::Threads }, 1_000, 1)
    }

    fn rec(t: &mut Tally, record: Record) {
        t.apply(Report::Record { run: 0, stream: 0, record });
    }

    #[test]
    fn waits_are_measured_from_wait_to_take() {
        let mut t = tally(2);
        rec(&mut t, Record::Wait { t: 2_000, worker: 1 });
        rec(&mut t, Record::Take { t: 7_000, worker: 1 });
        rec(&mut t, Record::Wait { t: 8_000, worker: 0 });
        rec(&mut t, Record::Take { t: 9_000, worker: 0 });
        assert_eq!((t.waits, t.wait_max_ns, t.mean_wait_ns()), (2, 5_000, 3_000));
        assert_eq!(t.workers[1].lane(), Lane::Running);
    }

    #[test]
    fn lanes_follow_the_records() {
        let mut t = tally(1);
        rec(&mut t, Record::Started { t: 1_500, worker: 0, requested: 1_100 });
        rec(&mut t, Record::Take { t: 1_600, worker: 0 });
        rec(&mut t, Record::Release { t: 2_000, worker: 0, reason: ReleaseReason::Io });
        rec(&mut t, Record::IoBegin { t: 2_001, worker: 0 });
        rec(&mut t, Record::Take { t: 3_000, worker: 0 });
        rec(&mut t, Record::Finished { t: 4_000, worker: 0 });
        assert_eq!(t.workers[0].lane(), Lane::Finished);
        let mix = t.workers[0].track.cell(0, 0, 99_999);
        assert!(mix.run > 0.0 && mix.io > 0.0, "{mix:?}");
        // From its start to its first take it waited for the start gun, not for a GIL.
        assert!(mix.wait <= 0.0, "{mix:?}");
        assert_eq!(t.workers[0].start_cost_ns(), Some(400));
        assert_eq!(t.wall_ns(99_999), 2_900, "from the first request to the last finish");
    }

    #[test]
    fn the_wait_for_gilscope_to_find_the_gils_is_not_the_models_time() {
        let mut t = tally(2);
        rec(&mut t, Record::Started { t: 1_500, worker: 0, requested: 1_100 });
        rec(&mut t, Record::Started { t: 1_700, worker: 1, requested: 1_100 });
        assert_eq!(t.held_for_lanes_ns(), 0, "nothing held before the lanes stage says so");
        // Both workers started at 1,700; their GIL was found at 51,700: the gun fired then.
        rec(&mut t, Record::Lanes { t: 51_700, pid: 7, source: LaneSource::Exact });
        rec(&mut t, Record::Take { t: 51_800, worker: 0 });
        rec(&mut t, Record::Finished { t: 60_000, worker: 0 });
        rec(&mut t, Record::Finished { t: 61_100, worker: 1 });
        assert_eq!(t.held_for_lanes_ns(), 50_000);
        assert_eq!(t.wall_ns(99_999), 10_000, "first request to last finish, less the 50 µs held");
    }

    #[test]
    fn a_clean_exit_without_finishing_fails_the_run() {
        let mut t = tally(1);
        rec(&mut t, Record::Take { t: 1_600, worker: 0 });
        t.apply(Report::Ended { run: 0, stream: 0, outcome: Ok(()) });
        assert!(t.failure.as_deref().unwrap_or("").contains("truncated"), "{:?}", t.failure);
        assert_eq!(t.workers[0].lane(), Lane::Failed);
        assert_eq!(t.result(), None);
    }

    #[test]
    fn a_forced_dropper_waits_from_its_release() {
        let mut t = tally(2);
        rec(&mut t, Record::Release { t: 2_000, worker: 0, reason: ReleaseReason::DropRequest });
        rec(&mut t, Record::Wait { t: 2_500, worker: 0 });
        rec(&mut t, Record::Take { t: 9_000, worker: 0 });
        assert_eq!(t.wait_max_ns, 7_000);
    }

    #[test]
    fn a_worker_index_out_of_range_fails_the_run() {
        let mut t = tally(1);
        rec(&mut t, Record::Take { t: 1_600, worker: 7 });
        assert!(t.failure.is_some());
    }
}
