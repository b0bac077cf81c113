//! The narrator: the latest notable thing a run did, in plain words, with
//! its figures taken from the records that show it. Nothing here is canned:
//! a sentence exists only when records say it happened, and every number in
//! it is a difference between two of their timestamps.
//!
//! It is fed the same reports as the tally, model by model. The events it
//! tells, from the most interesting down:
//!
//! - a reply that waited for the GIL (`io`, `wait`, `take`): the convoy effect;
//! - a forced switch (`wait`, `dropreq`, `release … drop`, `take`): a waiter's
//!   switch interval ran out and the holder let go; without `dropreq` records
//!   (a stream may leave them out) it is told from `wait`, the drop release
//!   and `take` alone;
//! - a worker that finished, and how much of its life it waited;
//! - every worker running at once (no GIL, or a GIL each);
//! - a worker starting (a thread, or a whole new process), and a reply that
//!   found the GIL free.
//!
//! A sentence stays on screen at least [`HOLD_NS`] of run time, unless a
//! more interesting one comes; then the most interesting of those heard
//! meanwhile replaces it. Frozen (the run paused), it does not change at all.
//! Once the models finished, [`results`] explains what their figures say.

use std::collections::BTreeMap;

use crate::experiment::spec::{Experiment, RunSpec, Workload};
use crate::experiment::supervisor::Report;
use crate::experiment::tally::RunResult;
use crate::protocol::{Hello, LaneSource, Record, ReleaseReason, Timeline};
use crate::sim::workload::Role;

/// How long a sentence stays before a less interesting one may replace it:
/// long enough to read aloud.
pub const HOLD_NS: u64 = 2_000_000_000;

/// One sentence, in versions from the longest to the shortest (the screen
/// shows the longest that fits).
#[derive(Clone, Debug, PartialEq)]
pub struct Said {
    /// When it happened (the caller's clock).
    pub at: u64,
    interest: u8,
    pub versions: Vec<String>,
}

impl Said {
    fn new(at: u64, interest: u8, versions: Vec<String>) -> Self {
        Said { at, interest, versions }
    }

    /// The longest version.
    pub fn text(&self) -> &str {
        self.versions.first().map_or("", String::as_str)
    }
}

/// What a worker is doing, as far as the narrator cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Doing {
    #[default]
    Waiting,
    Running,
    Io,
    Done,
}

#[derive(Clone, Debug, Default)]
struct Worker {
    doing: Doing,
    started: Option<u64>,
    /// Since when it waits for the GIL, while it does.
    wait_since: Option<u64>,
    /// Its I/O request went out at this time and has not been handled yet.
    io_since: Option<u64>,
    /// The reply came back (the worker asked for the GIL) at this time.
    replied: Option<u64>,
    waited_ns: u64,
    io_ns: u64,
}

/// The holder let go on a drop request.
#[derive(Clone, Copy, Debug)]
struct Dropped {
    holder: u32,
    at: u64,
}

/// One process and its GIL.
#[derive(Clone, Debug, Default)]
struct Stream {
    hello: Option<Hello>,
    /// The worker holding the GIL, if one does.
    holder: Option<u32>,
    dropped: Option<Dropped>,
    /// Where gilscope read this stream's GIL lanes from, when it said.
    lanes: Option<LaneSource>,
}

impl Stream {
    /// Takes and releases are the lock's own, in the order it gave them.
    fn exact_gil(&self) -> bool {
        self.hello.as_ref().is_some_and(|h| h.gil && h.timeline == Timeline::Exact)
    }

    /// Lanes guessed from the worker's stamps: its header says inferred,
    /// and gilscope did not read the GIL instead.
    fn inferred(&self) -> bool {
        let measured = self.lanes.as_ref().is_some_and(|l| l.rank() > 0);
        self.hello.as_ref().is_some_and(|h| h.timeline != Timeline::Exact) && !measured
    }

    fn gil_off(&self) -> bool {
        self.hello.as_ref().is_some_and(|h| !h.gil)
    }
}

#[derive(Clone, Debug)]
struct Model {
    spec: RunSpec,
    /// "hybrid 2×2: " where another model's lanes are named alike.
    qualifier: String,
    workers: BTreeMap<u32, Worker>,
    streams: BTreeMap<usize, Stream>,
    told_all_at_once: bool,
}

/// Listens to a session's models and keeps the sentence to show.
#[derive(Clone, Debug)]
pub struct Narrator {
    models: Vec<Model>,
    shown: Option<Said>,
    /// When the shown sentence went up.
    shown_at: u64,
    /// The most interesting sentence heard since (the newest of equals).
    best: Option<Said>,
    frozen: bool,
}

impl Narrator {
    /// For the models of one session, in the order the screen shows them.
    pub fn new(specs: &[RunSpec]) -> Self {
        let models = specs
            .iter()
            .map(|spec| {
                let prefix = spec.model.lane_prefix();
                let alike = specs.iter().filter(|s| s.model.lane_prefix() == prefix).count();
                Model {
                    spec: spec.clone(),
                    qualifier: if alike > 1 { format!("{}: ", spec.label()) } else { String::new() },
                    workers: BTreeMap::new(),
                    streams: BTreeMap::new(),
                    told_all_at_once: false,
                }
            })
            .collect();
        Narrator { models, shown: None, shown_at: 0, best: None, frozen: false }
    }

    /// The sentence on screen now.
    pub fn said(&self) -> Option<&Said> {
        self.shown.as_ref()
    }

    /// Holds the sentence as it is (the run paused, so a teacher can point).
    pub fn freeze(&mut self) {
        self.frozen = true;
    }

    pub fn thaw(&mut self) {
        self.frozen = false;
    }

    /// Takes one report of model `model` (its index in the session).
    pub fn hear(&mut self, model: usize, report: &Report) {
        let Some(m) = self.models.get_mut(model) else { return };
        let said = match report {
            Report::Hello { stream, hello, .. } => {
                m.streams.entry(*stream).or_default().hello = Some(hello.clone());
                None
            }
            Report::Record { stream, record, .. } => m.record(*stream, record),
            Report::Ended { .. } => None,
        };
        if let Some(said) = said {
            self.offer(said);
        }
    }

    fn offer(&mut self, said: Said) {
        let at = said.at;
        if self.best.as_ref().is_none_or(|b| said.interest >= b.interest) {
            self.best = Some(said);
        }
        if self.frozen {
            return;
        }
        let due = match (&self.shown, &self.best) {
            (None, _) => true,
            (Some(shown), Some(best)) => at >= self.shown_at + HOLD_NS || best.interest > shown.interest,
            (Some(_), None) => false,
        };
        if due && let Some(best) = self.best.take() {
            self.shown = Some(best);
            self.shown_at = at;
        }
    }
}

impl Model {
    /// "T1", "P0": the worker's lane as the panel names it.
    fn lane(&self, worker: u32) -> String {
        format!("{}{worker}", self.spec.model.lane_prefix())
    }

    /// A sentence, behind "hybrid 2×2: " where two models' lanes look alike.
    fn say(&self, at: u64, interest: u8, versions: Vec<String>) -> Said {
        let versions = versions.into_iter().map(|v| format!("{}{v}", self.qualifier)).collect();
        Said::new(at, interest, versions)
    }

    /// "thread", "process" or "interpreter": what one worker of this model is.
    fn unit(&self) -> &'static str {
        let e = &self.spec.experiment;
        if self.spec.model.own_interpreters() {
            "interpreter"
        } else if self.spec.model.processes(e.workers) == e.workers {
            "process"
        } else {
            "thread"
        }
    }

    fn record(&mut self, stream: usize, record: &Record) -> Option<Said> {
        match *record {
            Record::Started { t, worker, requested } => Some(self.started(stream, t, worker, requested)),
            Record::Wait { t, worker } => {
                let w = self.workers.entry(worker).or_default();
                if w.io_since.is_some() && w.replied.is_none() {
                    w.replied = Some(t);
                }
                w.wait_since.get_or_insert(t);
                w.doing = Doing::Waiting;
                None
            }
            Record::Release { t, worker, reason } => {
                let s = self.streams.entry(stream).or_default();
                if s.holder == Some(worker) {
                    s.holder = None;
                }
                let w = self.workers.entry(worker).or_default();
                match reason {
                    ReleaseReason::DropRequest => {
                        s.dropped = Some(Dropped { holder: worker, at: t });
                        w.wait_since = Some(t);
                        w.doing = Doing::Waiting;
                    }
                    ReleaseReason::Inferred | ReleaseReason::Switched => {
                        w.wait_since = Some(t);
                        w.doing = Doing::Waiting;
                    }
                    ReleaseReason::Io => {
                        w.io_since.get_or_insert(t);
                        w.doing = Doing::Io;
                    }
                    ReleaseReason::Finished => {}
                }
                None
            }
            Record::IoBegin { t, worker } => {
                let w = self.workers.entry(worker).or_default();
                w.io_since.get_or_insert(t);
                w.replied = None;
                w.doing = Doing::Io;
                None
            }
            Record::Take { t, worker } => self.take(stream, t, worker),
            Record::Finished { t, worker } => self.finished(stream, t, worker),
            Record::Lanes { ref source, .. } => {
                let s = self.streams.entry(stream).or_default();
                // The weakest of the stream's processes is what its lanes are.
                if s.lanes.as_ref().is_none_or(|l| source.rank() < l.rank()) {
                    s.lanes = Some(source.clone());
                }
                None
            }
            Record::Reply { .. }
            | Record::Progress { .. }
            | Record::Cpu { .. }
            | Record::Process { .. }
            | Record::Thread { .. }
            | Record::Gil { .. }
            | Record::End { .. }
            | Record::Error { .. } => None,
        }
    }

    fn started(&mut self, stream: usize, t: u64, worker: u32, requested: u64) -> Said {
        let w = self.workers.entry(worker).or_default();
        w.started = Some(t);
        w.doing = Doing::Waiting;
        let e = &self.spec.experiment;
        let first_of_process =
            self.streams.get(&stream).and_then(|s| s.hello.as_ref()).map(|h| h.first_worker);
        // A worker starts a process of its own where the model gives each
        // one a process, or where it is the first of its process's threads.
        let new_process = !self.spec.model.shares_processes(e.workers)
            || (self.spec.model.processes(e.workers) > 1 && first_of_process == Some(worker));
        let cost = ms(t.saturating_sub(requested));
        let lane = self.lane(worker);
        let what = if new_process {
            "a whole new process".to_owned()
        } else {
            format!("a new {} in a running process", self.unit())
        };
        self.say(
            t,
            1,
            vec![
                format!("{lane} started {cost} after it was asked for: {what}"),
                format!("{lane} started {cost} after it was asked for"),
            ],
        )
    }

    fn take(&mut self, stream: usize, t: u64, worker: u32) -> Option<Said> {
        let s = self.streams.entry(stream).or_default();
        let (exact_gil, gil_off) = (s.exact_gil(), s.gil_off());
        let dropped = s.dropped.take();
        let previous = s.holder.replace(worker);
        let w = self.workers.entry(worker).or_default();
        let waited = w.wait_since.take().map(|since| t.saturating_sub(since));
        w.waited_ns += waited.unwrap_or(0);
        let from_io = w.io_since.take().map(|io| (io, w.replied.take()));
        if let Some((io, replied)) = from_io {
            w.io_ns += replied.unwrap_or(t).saturating_sub(io);
        }
        w.doing = Doing::Running;
        let said = match (from_io, dropped) {
            (Some((io, Some(replied))), dropped) if exact_gil => {
                let holder = dropped.map(|d| d.holder).or(previous.filter(|p| *p != worker));
                Some(self.convoy(t, worker, io, replied, holder))
            }
            // Only the lock's own takes say the GIL was free (or that there is none).
            (Some((io, None)), _) if exact_gil || gil_off => Some(self.free_reply(t, worker, io, gil_off)),
            (None, Some(dropped)) if exact_gil && dropped.holder != worker => {
                self.forced_switch(t, worker, waited, dropped)
            }
            _ => None,
        };
        let free = gil_off || self.spec.gil_off() || self.one_worker_per_gil();
        said.or_else(|| if free { self.all_at_once(t) } else { None })
    }

    /// Each worker has a GIL of its own (a process, or an interpreter, each).
    fn one_worker_per_gil(&self) -> bool {
        let workers = self.spec.experiment.workers;
        !self.spec.gil_off() && self.spec.model.gils(workers) == workers
    }

    /// "T1 waited 10 ms — 2 switch intervals — for the GIL; T0 dropped it when asked, T1 took it 0.05 ms later"
    fn forced_switch(&self, t: u64, taker: u32, taker_waited: Option<u64>, dropped: Dropped) -> Option<Said> {
        let interval = self.spec.experiment.switch_interval.as_nanos() as u64;
        let (h, x) = (self.lane(dropped.holder), self.lane(taker));
        // Told from the wait, the release on request and the take.
        let waited = taker_waited?;
        let after = ms(t.saturating_sub(dropped.at));
        Some(self.say(
            t,
            2,
            vec![
                format!(
                    "{x} waited {} — {} — for the GIL; {h} dropped it when asked, {x} took it {after} later",
                    ms(waited),
                    intervals(waited, interval)
                ),
                format!("{x} waited {} for the GIL; {h} dropped it when asked", ms(waited)),
                format!("{x} waited {} for the GIL", ms(waited)),
            ],
        ))
    }

    /// "the I/O thread T0 got its reply after 1.0 ms but waited 4.9 ms more for the GIL"
    fn convoy(&self, t: u64, worker: u32, io: u64, replied: u64, holder: Option<u32>) -> Said {
        let (lane, unit) = (self.lane(worker), self.unit());
        let (reply, wait) = (ms(replied.saturating_sub(io)), ms(t.saturating_sub(replied)));
        let held = holder.map_or(String::new(), |h| format!(", held by {}", self.lane(h)));
        self.say(
            t,
            3,
            vec![
                format!("the I/O {unit} {lane} got its reply after {reply} but waited {wait} more for the GIL{held}"),
                format!("the I/O {unit} {lane} got its reply after {reply} but waited {wait} more for the GIL"),
                format!("{lane}: reply after {reply}, then {wait} more waiting for the GIL"),
            ],
        )
    }

    /// "T2 got its reply after 750 ms and took the GIL at once; 3 other requests were out meanwhile"
    fn free_reply(&self, t: u64, worker: u32, io: u64, gil_off: bool) -> Said {
        let lane = self.lane(worker);
        let went_on = if gil_off { "ran on at once (no GIL)" } else { "took the GIL at once" };
        let reply = ms(t.saturating_sub(io));
        let others = self.workers.iter().filter(|(w, s)| **w != worker && s.doing == Doing::Io).count();
        let meanwhile = match others {
            0 => String::new(),
            1 => "; 1 other request was out meanwhile".to_owned(),
            n => format!("; {n} other requests were out meanwhile"),
        };
        self.say(
            t,
            1,
            vec![
                format!("{lane} got its reply after {reply} and {went_on}{meanwhile}"),
                format!("{lane} got its reply after {reply} and {went_on}"),
            ],
        )
    }

    /// "all 4 workers ran at once: no GIL to wait for" (told once)
    fn all_at_once(&mut self, t: u64) -> Option<Said> {
        let n = self.spec.experiment.workers;
        let running = self.workers.values().filter(|w| w.doing == Doing::Running).count();
        if self.told_all_at_once || n < 2 || running < n as usize {
            return None;
        }
        self.told_all_at_once = true;
        let units = match self.unit() {
            "process" => format!("{n} processes"),
            unit => format!("{n} {unit}s"),
        };
        let why = if self.spec.gil_off() || self.streams.values().any(Stream::gil_off) {
            "no GIL to wait for (free-threaded)"
        } else {
            "each has a GIL of its own"
        };
        Some(self.say(
            t,
            2,
            vec![format!("all {units} ran at once: {why}"), format!("all {units} ran at once")],
        ))
    }

    /// "T0 finished after 7.10 s, 3.52 s of it waiting for the GIL"
    fn finished(&mut self, stream: usize, t: u64, worker: u32) -> Option<Said> {
        let s = self.streams.get(&stream).cloned().unwrap_or_default();
        let w = self.workers.entry(worker).or_default();
        w.doing = Doing::Done;
        let life = t.saturating_sub(w.started?);
        let (waited, in_io) = (w.waited_ns, w.io_ns);
        let lane = self.lane(worker);
        let after = ms(life);
        let share = |ns: u64| format!("{:.0}%", ns as f64 * 100.0 / life.max(1) as f64);
        let io_role = self.spec.experiment.workload.role(worker) == Role::Io;
        let versions = if io_role {
            let gil = if waited == 0 {
                "never waiting for the GIL".to_owned()
            } else {
                format!("{} waiting for the GIL", ms(waited))
            };
            vec![
                format!("{lane} finished its requests after {after}: {} in I/O, {gil}", ms(in_io)),
                format!("{lane} finished its requests after {after}: {} in I/O", ms(in_io)),
            ]
        } else if s.inferred() {
            vec![
                format!(
                    "{lane} finished after {after}, {} ({}) of it not running (inferred from its stamps)",
                    ms(waited),
                    share(waited)
                ),
                format!("{lane} finished after {after}, {} of it not running", ms(waited)),
            ]
        } else if waited == 0 {
            let why = if s.gil_off() { "no GIL (free-threaded)" } else { "a GIL of its own" };
            vec![
                format!("{lane} finished after {after} without waiting once: {why}"),
                format!("{lane} finished after {after} without waiting once"),
            ]
        } else {
            vec![
                format!(
                    "{lane} finished after {after}, {} ({}) of it waiting for the GIL",
                    ms(waited),
                    share(waited)
                ),
                format!("{lane} finished after {after}, {} of it waiting", ms(waited)),
            ]
        };
        Some(self.say(t, 2, versions))
    }
}

/// "one switch interval", "2 switch intervals", "0.4 of a switch interval"
fn intervals(waited: u64, interval: u64) -> String {
    let k = waited as f64 / interval.max(1) as f64;
    let n = k.round();
    if (0.9..1.25).contains(&k) {
        "one switch interval".to_owned()
    } else if n >= 2.0 && (k - n).abs() < 0.25 {
        format!("{n:.0} switch intervals")
    } else if k < 1.0 {
        format!("{k:.1} of a switch interval")
    } else {
        format!("{k:.1} switch intervals")
    }
}

/// A duration as the narrator says it, always in ms below a second so that
/// two figures of one sentence compare at a glance: "0.03 ms", "4.9 ms", "12 ms".
pub fn ms(ns: u64) -> String {
    let v = ns as f64 / 1e6;
    if ns >= 1_000_000_000 {
        format!("{:.2} s", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0} ms")
    } else if v >= 1.0 {
        format!("{v:.1} ms")
    } else if ns >= 10_000 {
        format!("{v:.2} ms")
    } else {
        format!("{} µs", ns.div_ceil(1_000))
    }
}

/// What the finished models' figures say, from the comparison (speedups
/// against their limits), longest version first; empty when there is
/// nothing to say, or when a figure is in doubt (a busy machine, an
/// impossible result): the verdict then says why, and nothing is explained.
pub fn results(results: &[RunResult], e: &Experiment) -> Vec<String> {
    if results.iter().any(|r| !r.clean) {
        return Vec::new();
    }
    match e.workload {
        Workload::Cpu => cpu_results(results),
        Workload::Io => io_results(results),
        Workload::Mixed => mixed_results(results, e),
    }
}

/// "2 GILs", "1 GIL", "no GIL": as the interpreters reported them.
fn gils(r: &RunResult) -> String {
    match (r.gil, r.gils) {
        (false, _) | (true, 0) => "no GIL".to_owned(),
        (true, 1) => "1 GIL".to_owned(),
        (true, n) => format!("{n} GILs"),
    }
}

fn speedup_of_limit(r: &RunResult) -> Option<String> {
    Some(format!("speedup {:.2}× of at most {:.0}×", r.speedup?, r.speedup_limit))
}

/// The fastest and slowest result by wall time, and how many times slower
/// the slowest was.
fn extremes(results: &[RunResult]) -> Option<(&RunResult, &RunResult, f64)> {
    let fast = results.iter().min_by(|a, b| a.wall_s.total_cmp(&b.wall_s))?;
    let slow = results.iter().max_by(|a, b| a.wall_s.total_cmp(&b.wall_s))?;
    Some((fast, slow, slow.wall_s / fast.wall_s.max(f64::MIN_POSITIVE)))
}

/// "multiprocessing finished 1.93× faster than threading: 2 GILs kept 1.97 cores busy, 1 GIL 1.00"
fn cpu_results(results: &[RunResult]) -> Vec<String> {
    let Some((fast, slow, ratio)) = extremes(results) else { return Vec::new() };
    let busy = |r: &RunResult| format!("{:.2} cores", r.cores_used);
    if results.len() < 2 {
        let Some(speedup) = speedup_of_limit(fast) else { return Vec::new() };
        return vec![
            format!("{}: {speedup}, {} busy under {}", fast.label, busy(fast), gils(fast)),
            format!("{}: {speedup}", fast.label),
        ];
    }
    let limit = speedup_of_limit(fast).map_or(String::new(), |s| format!(" ({s})"));
    if ratio >= 1.05 {
        vec![
            format!(
                "{} finished {ratio:.2}× faster than {}: {} kept {} busy, {} only {}{limit}",
                fast.label,
                slow.label,
                gils(fast),
                busy(fast),
                gils(slow),
                busy(slow)
            ),
            format!(
                "{} finished {ratio:.2}× faster: {}, {} busy; {}: {}, {}",
                fast.label,
                gils(fast),
                busy(fast),
                slow.label,
                gils(slow),
                busy(slow)
            ),
            format!("{} {ratio:.2}× faster: {} vs {}", fast.label, gils(fast), gils(slow)),
        ]
    } else {
        let why = if fast.workers == 1 {
            "one worker has nothing to run beside it (at most 1×)".to_owned()
        } else {
            format!("{} busy against {}{limit}", busy(fast), busy(slow))
        };
        vec![
            format!("{} and {} took about as long ({ratio:.2}×): {why}", fast.label, slow.label),
            format!("{} and {} took about as long ({ratio:.2}×)", fast.label, slow.label),
        ]
    }
}

/// "threading overlapped its waits: 3.9× faster than one request after another (at most 4×)"
fn io_results(results: &[RunResult]) -> Vec<String> {
    let Some(threads) = results.iter().find(|r| r.model == "threads").or(results.first()) else {
        return Vec::new();
    };
    let (Some(speedup), Some(latency)) = (threads.speedup, threads.io_latency_ms) else { return Vec::new() };
    let against = results
        .iter()
        .find(|r| r.model != threads.model)
        .map_or(String::new(), |o| format!(", {:.2}× the time of {}", threads.wall_s / o.wall_s, o.label));
    let each = ms((latency.mean * 1e6) as u64);
    vec![
        format!(
            "{} overlapped the waits: {speedup:.2}× faster than one request after another (at most {:.0}×), {each} a request{against}",
            threads.label, threads.speedup_limit
        ),
        format!(
            "{} overlapped the waits: {speedup:.2}× faster than one after another (at most {:.0}×)",
            threads.label, threads.speedup_limit
        ),
    ]
}

/// "each I/O request took 5.9 ms under threading, 1.0 ms under multiprocessing: …"
fn mixed_results(results: &[RunResult], e: &Experiment) -> Vec<String> {
    let with: Vec<(&RunResult, f64)> =
        results.iter().filter_map(|r| Some((r, r.io_latency_ms?.mean * 1e6))).collect();
    let Some(&(worst, worst_ns)) = with.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else { return Vec::new() };
    let Some(&(best, best_ns)) = with.iter().min_by(|a, b| a.1.total_cmp(&b.1)) else { return Vec::new() };
    let (w, b) = (ms(worst_ns as u64), ms(best_ns as u64));
    let interval = ms(e.switch_interval.as_nanos() as u64);
    if with.len() > 1 && worst_ns > 1.5 * best_ns {
        vec![
            format!(
                "each I/O request took {w} under {}, {b} under {}: beside CPU threads, every reply waited for the GIL (switch interval {interval})",
                worst.label, best.label
            ),
            format!("each I/O request took {w} under {}, {b} under {}", worst.label, best.label),
        ]
    } else {
        vec![
            format!(
                "each I/O request took {w} under {}: little convoy at a {interval} switch interval",
                worst.label
            ),
            format!("each I/O request took {w} under {}", worst.label),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::spec::Model;
    use crate::protocol::{Runtime, VERSION};

    fn hello(threads: u32, gil: bool) -> Report {
        Report::Hello {
            run: 1,
            stream: 0,
            hello: Hello {
                version: VERSION,
                pid: 7,
                runtime: Runtime::Sim,
                gil,
                threads,
                first_worker: 0,
                timeline: Timeline::Exact,
                gils: None,
            },
        }
    }

    fn narrator(model: Model, e: Experiment) -> Narrator {
        Narrator::new(&[RunSpec { experiment: e, model }])
    }

    fn hear(n: &mut Narrator, records: &[Record]) {
        for record in records {
            n.hear(0, &Report::Record { run: 1, stream: 0, record: record.clone() });
        }
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn without_dropreq_records_the_switch_is_told_from_wait_release_and_take() {
        let mut n = narrator(Model::Threads, Experiment::new(2));
        n.hear(0, &hello(2, true));
        hear(
            &mut n,
            &[
                Record::Take { t: 100 * MS, worker: 0 },
                Record::Wait { t: 100 * MS, worker: 1 },
                Record::Release { t: 110 * MS + 40_000, worker: 0, reason: ReleaseReason::DropRequest },
                Record::Take { t: 110 * MS + 90_000, worker: 1 },
            ],
        );
        assert_eq!(
            n.said().map(Said::text),
            Some(
                "T1 waited 10 ms — 2 switch intervals — for the GIL; T0 dropped it when asked, T1 took it 0.05 ms later"
            )
        );
    }

    #[test]
    fn a_reply_that_waits_for_the_gil_is_the_convoy_effect_in_figures() {
        let e = Experiment { workload: Workload::Mixed, ..Experiment::new(2) };
        let mut n = narrator(Model::Threads, e);
        n.hear(0, &hello(2, true));
        hear(
            &mut n,
            &[
                Record::Take { t: 10 * MS, worker: 0 },
                Record::Release { t: 11 * MS, worker: 0, reason: ReleaseReason::Io },
                Record::IoBegin { t: 11 * MS, worker: 0 },
                Record::Take { t: 11 * MS + 10_000, worker: 1 },
                Record::Wait { t: 12 * MS, worker: 0 },
                Record::Release { t: 16 * MS + 850_000, worker: 1, reason: ReleaseReason::DropRequest },
                Record::Take { t: 16 * MS + 900_000, worker: 0 },
                Record::Reply { t: 16 * MS + 900_000, worker: 0, latency_ns: 5_900_000 },
            ],
        );
        assert_eq!(
            n.said().map(Said::text),
            Some(
                "the I/O thread T0 got its reply after 1.0 ms but waited 4.9 ms more for the GIL, held by T1"
            )
        );
    }

    #[test]
    fn a_sentence_stays_two_seconds_unless_a_more_interesting_one_comes() {
        let mut n = narrator(Model::Threads, Experiment::new(2));
        n.hear(0, &hello(2, true));
        let switch = |t: u64, from: u32, to: u32| {
            vec![
                Record::Wait { t, worker: to },
                Record::Release { t: t + 5 * MS + 10_000, worker: from, reason: ReleaseReason::DropRequest },
                Record::Take { t: t + 5 * MS + 20_000, worker: to },
            ]
        };
        hear(&mut n, &[Record::Take { t: 0, worker: 0 }]);
        hear(&mut n, &switch(0, 0, 1));
        let first = n.said().cloned();
        hear(&mut n, &switch(MS * 6, 1, 0));
        assert_eq!(n.said().cloned(), first, "1 s later, an equal sentence waits its turn");
        hear(&mut n, &switch(HOLD_NS, 0, 1));
        assert_ne!(n.said().cloned(), first, "after the hold the newest takes over");
        n.freeze();
        let frozen = n.said().cloned();
        hear(&mut n, &switch(3 * HOLD_NS, 1, 0));
        assert_eq!(n.said().cloned(), frozen, "frozen with the run");
    }

    #[test]
    fn a_finished_worker_says_how_much_of_its_life_it_waited() {
        let mut n = narrator(Model::Threads, Experiment::new(2));
        n.hear(0, &hello(2, true));
        hear(
            &mut n,
            &[
                Record::Started { t: 0, worker: 1, requested: 0 },
                Record::Wait { t: 0, worker: 1 },
                Record::Take { t: 3_000 * MS, worker: 1 },
                Record::Finished { t: 6_000 * MS, worker: 1 },
            ],
        );
        assert_eq!(
            n.said().map(Said::text),
            Some("T1 finished after 6.00 s, 3.00 s (50%) of it waiting for the GIL")
        );
    }

    #[test]
    fn processes_running_at_once_are_told_once_with_the_reason() {
        let mut n = narrator(Model::Processes, Experiment::new(2));
        for (stream, first) in [(0, 0), (1, 1)] {
            let Report::Hello { hello, .. } = hello(1, true) else { unreachable!() };
            n.hear(0, &Report::Hello { run: 1, stream, hello: Hello { first_worker: first, ..hello } });
        }
        for (stream, worker) in [(0, 0), (1, 1)] {
            n.hear(0, &Report::Record { run: 1, stream, record: Record::Take { t: 5 * MS, worker } });
        }
        assert_eq!(n.said().map(Said::text), Some("all 2 processes ran at once: each has a GIL of its own"));
    }

    #[test]
    fn a_start_says_what_it_cost_a_thread_or_a_whole_process() {
        let mut n = narrator(Model::Processes, Experiment::new(2));
        // One stream speaking for two processes, as CPython's multiprocessing parent does.
        n.hear(0, &hello(2, true));
        hear(&mut n, &[Record::Started { t: 20 * MS, worker: 1, requested: 8 * MS }]);
        assert_eq!(
            n.said().map(Said::text),
            Some("P1 started 12 ms after it was asked for: a whole new process")
        );
        let mut n = narrator(Model::Threads, Experiment::new(2));
        n.hear(0, &hello(2, true));
        hear(&mut n, &[Record::Started { t: 100_060_000, worker: 1, requested: 100 * MS }]);
        assert_eq!(
            n.said().map(Said::text),
            Some("T1 started 0.06 ms after it was asked for: a new thread in a running process")
        );
    }

    fn result(model: &'static str, label: &str, processes: u32, wall_s: f64, cores_used: f64) -> RunResult {
        RunResult::example(model, label, processes, wall_s, cores_used)
    }

    #[test]
    fn the_results_are_explained_with_speedup_against_its_limit() {
        let said = results(
            &[
                result("threads", "threading", 1, 7.0, 1.0),
                result("processes", "multiprocessing", 2, 3.63, 1.93),
            ],
            &Experiment::new(2),
        );
        assert_eq!(
            said[0],
            "multiprocessing finished 1.93× faster than threading: 2 GILs kept 1.93 cores busy, 1 GIL only 1.00 cores (speedup 1.93× of at most 2×)"
        );
        assert!(said.windows(2).all(|w| w[0].chars().count() > w[1].chars().count()), "{said:?}");
        let mut busy = result("processes", "multiprocessing", 2, 3.63, 1.93);
        busy.clean = false;
        assert!(
            results(&[result("threads", "threading", 1, 7.0, 1.0), busy], &Experiment::new(2)).is_empty()
        );
    }

    #[test]
    fn durations_are_said_in_ms_below_a_second() {
        assert_eq!(ms(30_000), "0.03 ms");
        assert_eq!(ms(4_900_000), "4.9 ms");
        assert_eq!(ms(12_400_000), "12 ms");
        assert_eq!(ms(3_520_000_000), "3.52 s");
        assert_eq!(ms(2_000), "2 µs");
    }
}
