//! The worker → parent wire format: one encoder, one decoder, versioned.
//!
//! A worker process writes UTF-8 text lines on its stdout. The first line is a
//! header naming the format version; every later line is one [`Record`]. Text
//! was chosen over a binary layout so that the instrumented `CPython` worker
//! (standard library only) can speak it with `print`, and so a stream can be
//! read by eye when something goes wrong. See `docs/wire-format.md`.
//!
//! Every timestamp is `CLOCK_MONOTONIC` in nanoseconds, so records from
//! different processes on one machine can be put on one time axis.

use std::fmt;

/// Bumped whenever a record changes meaning or shape (2: no `dropreq`
/// records; their count ends the `end` record).
pub const VERSION: u32 = 2;

/// The longest line a reader accepts: records are a few dozen bytes, an
/// error message at most about a thousand.
pub const MAX_LINE: usize = 4096;

/// The first word of every header line.
pub const MAGIC: &str = "gilscope";

/// Which interpreter produced the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// gilscope's simulated `CPython`.
    Sim,
    /// The real `CPython` interpreter.
    Cpython,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Sim => "sim",
            Runtime::Cpython => "cpython",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "sim" => Some(Runtime::Sim),
            "cpython" => Some(Runtime::Cpython),
            _ => None,
        }
    }
}

/// How the GIL lanes of a stream were obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeline {
    /// Every take and release is recorded by the lock itself.
    Exact,
    /// Spans are inferred from progress timestamps, at `resolution_ns`.
    Inferred { resolution_ns: u64 },
}

/// The header: who is speaking and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub version: u32,
    pub pid: u32,
    pub runtime: Runtime,
    /// false for a free-threaded interpreter (GIL off).
    pub gil: bool,
    /// Worker threads this process runs.
    pub threads: u32,
    /// Global index of this process's first worker; its threads are
    /// `first_worker .. first_worker + threads`.
    pub first_worker: u32,
    pub timeline: Timeline,
    /// How many GILs its workers have among them, when not one per process:
    /// an interpreter of its own per worker has one each (`gils=N`).
    pub gils: Option<u32>,
}

/// Why a worker let go of the GIL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseReason {
    /// Another thread asked for it (the switch interval ran out).
    DropRequest,
    /// The worker blocked on I/O.
    Io,
    /// The worker's function returned.
    Finished,
    /// The gap between two progress stamps says the thread stopped running
    /// (inferred timelines only).
    Inferred,
    /// Another thread took the GIL, as gilscope read it from the real
    /// interpreter (measured or exact lanes; gilscope writes these).
    Switched,
}

impl ReleaseReason {
    fn as_str(self) -> &'static str {
        match self {
            ReleaseReason::DropRequest => "drop",
            ReleaseReason::Io => "io",
            ReleaseReason::Finished => "finished",
            ReleaseReason::Inferred => "inferred",
            ReleaseReason::Switched => "switched",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "drop" => Some(ReleaseReason::DropRequest),
            "io" => Some(ReleaseReason::Io),
            "finished" => Some(ReleaseReason::Finished),
            "inferred" => Some(ReleaseReason::Inferred),
            "switched" => Some(ReleaseReason::Switched),
            _ => None,
        }
    }
}

/// Where a process's GIL lanes come from, as gilscope's lanes stage says
/// (`lanes` records: gilscope writes them, never a worker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LaneSource {
    /// Every take and release, from uprobes on the interpreter's own
    /// `take_gil` and `drop_gil`.
    Exact,
    /// The holder read from the process's memory every `period_ns`.
    Measured { period_ns: u64 },
    /// Neither could be had: the worker's own stamps, and why not.
    Inferred { why: String },
}

impl LaneSource {
    /// `exact`, `measured` or `inferred`: the word the JSON uses.
    pub fn name(&self) -> &'static str {
        match self {
            LaneSource::Exact => "exact",
            LaneSource::Measured { .. } => "measured",
            LaneSource::Inferred { .. } => "inferred",
        }
    }

    /// How much a lane can be trusted: inferred < measured < exact.
    pub fn rank(&self) -> u8 {
        match self {
            LaneSource::Inferred { .. } => 0,
            LaneSource::Measured { .. } => 1,
            LaneSource::Exact => 2,
        }
    }
}

/// One event of a worker process, after the header.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A worker ran its first instruction at `t`; it was asked for at
    /// `requested` (a thread spawn or a process spawn).
    Started { t: u64, worker: u32, requested: u64 },
    /// The worker began waiting for the GIL.
    Wait { t: u64, worker: u32 },
    /// The worker took the GIL.
    Take { t: u64, worker: u32 },
    /// The worker released the GIL.
    Release { t: u64, worker: u32, reason: ReleaseReason },
    /// The worker started a blocking I/O call (GIL released).
    IoBegin { t: u64, worker: u32 },
    /// One I/O request completed; `latency_ns` runs from the request to the
    /// moment the worker held the GIL again to handle the reply.
    Reply { t: u64, worker: u32, latency_ns: u64 },
    /// `done` of `total` units of work are complete.
    Progress { t: u64, worker: u32, done: u64, total: u64 },
    /// The worker's thread has used `cpu_ns` of CPU time (sent as it ends).
    Cpu { t: u64, worker: u32, cpu_ns: u64 },
    /// The worker's function returned.
    Finished { t: u64, worker: u32 },
    /// `worker` runs in OS process `pid` (a stream may speak for child
    /// processes it started itself, as `CPython`'s multiprocessing does).
    Process { t: u64, worker: u32, pid: u32 },
    /// OS process `pid` is about to exit cleanly: its CPU time (all its
    /// threads), its peak resident memory, how often its GIL changed hands,
    /// and how often a waiter asked the holder to drop it (where the
    /// interpreter can tell: the simulation can, `CPython` cannot). One per
    /// process the stream speaks for.
    End { t: u64, pid: u32, cpu_ns: u64, max_rss_kb: u64, switches: u64, drop_requests: Option<u64> },
    /// Worker `worker` runs on OS thread `tid` (the native id, as in
    /// `/proc/PID/task`) of process `pid`, in interpreter `interp` (0: the
    /// main one): the thread a GIL's holder is named by.
    Thread { t: u64, worker: u32, pid: u32, tid: u32, interp: u64 },
    /// The worker process hit an error it reports before exiting non-zero.
    Error { message: String },
    /// Written by gilscope, not by a worker: where the GIL lanes of process
    /// `pid` come from from `t` on.
    Lanes { t: u64, pid: u32, source: LaneSource },
    /// Written by gilscope, not by a worker: what it read of one GIL (that
    /// of interpreter `interp` of process `pid`) while the workers worked,
    /// so far: how far the interpreter's own `switch_number` moved,
    /// how many hand-overs the lanes' source saw meanwhile, how many
    /// samples it took (0 for uprobes), over how long, and the watcher's own CPU time.
    Gil { t: u64, pid: u32, interp: u64, switches: u64, seen: u64, samples: u64, span_ns: u64, cpu_ns: u64 },
}

impl Record {
    /// The worker a record is about, if any.
    pub fn worker(&self) -> Option<u32> {
        match *self {
            Record::Started { worker, .. }
            | Record::Wait { worker, .. }
            | Record::Take { worker, .. }
            | Record::Release { worker, .. }
            | Record::IoBegin { worker, .. }
            | Record::Reply { worker, .. }
            | Record::Progress { worker, .. }
            | Record::Finished { worker, .. }
            | Record::Cpu { worker, .. }
            | Record::Process { worker, .. }
            | Record::Thread { worker, .. } => Some(worker),
            Record::End { .. } | Record::Error { .. } | Record::Lanes { .. } | Record::Gil { .. } => None,
        }
    }

    /// Records only gilscope writes (its lanes stage): a worker that
    /// writes one is not to be believed.
    pub fn from_gilscope(&self) -> bool {
        matches!(
            self,
            Record::Lanes { .. }
                | Record::Gil { .. }
                | Record::Release { reason: ReleaseReason::Switched, .. }
        )
    }

    /// The record with every point in time moved by `f`; a latency stays
    /// the distance between its two moved ends.
    #[must_use]
    pub fn map_times(self, f: impl Fn(u64) -> u64) -> Record {
        match self {
            Record::Started { t, worker, requested } => {
                Record::Started { t: f(t), worker, requested: f(requested) }
            }
            Record::Wait { t, worker } => Record::Wait { t: f(t), worker },
            Record::Take { t, worker } => Record::Take { t: f(t), worker },
            Record::Release { t, worker, reason } => Record::Release { t: f(t), worker, reason },
            Record::IoBegin { t, worker } => Record::IoBegin { t: f(t), worker },
            Record::Reply { t, worker, latency_ns } => {
                let (asked, back) = (f(t.saturating_sub(latency_ns)), f(t));
                Record::Reply { t: back, worker, latency_ns: back.saturating_sub(asked) }
            }
            Record::Progress { t, worker, done, total } => Record::Progress { t: f(t), worker, done, total },
            Record::Cpu { t, worker, cpu_ns } => Record::Cpu { t: f(t), worker, cpu_ns },
            Record::Finished { t, worker } => Record::Finished { t: f(t), worker },
            Record::Process { t, worker, pid } => Record::Process { t: f(t), worker, pid },
            Record::End { t, pid, cpu_ns, max_rss_kb, switches, drop_requests } => {
                Record::End { t: f(t), pid, cpu_ns, max_rss_kb, switches, drop_requests }
            }
            Record::Thread { t, worker, pid, tid, interp } => {
                Record::Thread { t: f(t), worker, pid, tid, interp }
            }
            Record::Error { message } => Record::Error { message },
            Record::Lanes { t, pid, source } => Record::Lanes { t: f(t), pid, source },
            Record::Gil { t, pid, interp, switches, seen, samples, span_ns, cpu_ns } => {
                Record::Gil { t: f(t), pid, interp, switches, seen, samples, span_ns, cpu_ns }
            }
        }
    }

    /// When the record happened, if it carries a time.
    pub fn time(&self) -> Option<u64> {
        match *self {
            Record::Started { t, .. }
            | Record::Wait { t, .. }
            | Record::Take { t, .. }
            | Record::Release { t, .. }
            | Record::IoBegin { t, .. }
            | Record::Reply { t, .. }
            | Record::Progress { t, .. }
            | Record::Finished { t, .. }
            | Record::Cpu { t, .. }
            | Record::Process { t, .. }
            | Record::Thread { t, .. }
            | Record::End { t, .. }
            | Record::Lanes { t, .. }
            | Record::Gil { t, .. } => Some(t),
            Record::Error { .. } => None,
        }
    }
}

/// What went wrong reading a stream. The message names the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

// ---------------------------------------------------------------- encoder

impl fmt::Display for Hello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{MAGIC} {} pid={} runtime={} gil={} threads={} first={}",
            self.version,
            self.pid,
            self.runtime.as_str(),
            if self.gil { "on" } else { "off" },
            self.threads,
            self.first_worker
        )?;
        match self.timeline {
            Timeline::Exact => write!(f, " timeline=exact")?,
            Timeline::Inferred { resolution_ns } => {
                write!(f, " timeline=inferred resolution_ns={resolution_ns}")?;
            }
        }
        match self.gils {
            Some(gils) => write!(f, " gils={gils}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Record::Started { t, worker, requested } => {
                write!(f, "start {t} {worker} {requested}")
            }
            Record::Wait { t, worker } => write!(f, "wait {t} {worker}"),
            Record::Take { t, worker } => write!(f, "take {t} {worker}"),
            Record::Release { t, worker, reason } => {
                write!(f, "release {t} {worker} {}", reason.as_str())
            }
            Record::IoBegin { t, worker } => write!(f, "io {t} {worker}"),
            Record::Reply { t, worker, latency_ns } => {
                write!(f, "reply {t} {worker} {latency_ns}")
            }
            Record::Progress { t, worker, done, total } => {
                write!(f, "progress {t} {worker} {done} {total}")
            }
            Record::Finished { t, worker } => write!(f, "finished {t} {worker}"),
            Record::Cpu { t, worker, cpu_ns } => write!(f, "cpu {t} {worker} {cpu_ns}"),
            Record::Process { t, worker, pid } => write!(f, "process {t} {worker} {pid}"),
            Record::End { t, pid, cpu_ns, max_rss_kb, switches, drop_requests } => {
                write!(f, "end {t} {pid} {cpu_ns} {max_rss_kb} {switches}")?;
                match drop_requests {
                    Some(n) => write!(f, " {n}"),
                    None => Ok(()),
                }
            }
            Record::Thread { t, worker, pid, tid, interp } => {
                write!(f, "thread {t} {worker} {pid} {tid} {interp}")
            }
            // One line, whatever the message held.
            Record::Error { message } => write!(f, "error {}", message.replace('\n', " ")),
            Record::Lanes { t, pid, source } => match source {
                LaneSource::Exact => write!(f, "lanes {t} {pid} exact"),
                LaneSource::Measured { period_ns } => write!(f, "lanes {t} {pid} measured {period_ns}"),
                LaneSource::Inferred { why } => {
                    write!(f, "lanes {t} {pid} inferred {}", why.replace('\n', " "))
                }
            },
            Record::Gil { t, pid, interp, switches, seen, samples, span_ns, cpu_ns } => {
                write!(f, "gil {t} {pid} {interp} {switches} {seen} {samples} {span_ns} {cpu_ns}")
            }
        }
    }
}

// ---------------------------------------------------------------- decoder

fn missing_value(name: &str, word: &str) -> DecodeError {
    DecodeError(format!("header field {name} is not a number: {:?}", truncate(word)))
}

/// Reads a header line.
pub fn decode_hello(line: &str) -> Result<Hello, DecodeError> {
    let mut words = line.split_ascii_whitespace();
    if words.next() != Some(MAGIC) {
        return Err(DecodeError(format!(
            "worker output does not start with a gilscope header: {:?}",
            truncate(line)
        )));
    }
    let version: u32 = words
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| DecodeError(format!("header has no version: {:?}", truncate(line))))?;
    if version != VERSION {
        return Err(DecodeError(format!(
            "worker speaks wire format {version}, this gilscope reads {VERSION}"
        )));
    }
    let (mut pid, mut runtime, mut gil, mut threads, mut first) = (None, None, None, None, None);
    let (mut timeline, mut resolution, mut gils) = (None, None, None);
    for word in words {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| DecodeError(format!("header field {word:?} is not key=value")))?;
        match key {
            "pid" => pid = value.parse().ok(),
            "runtime" => runtime = Runtime::parse(value),
            "gil" => {
                gil = match value {
                    "on" => Some(true),
                    "off" => Some(false),
                    _ => None,
                }
            }
            "threads" => threads = value.parse().ok(),
            "first" => first = value.parse().ok(),
            "timeline" => timeline = Some(value.to_owned()),
            "resolution_ns" => resolution = value.parse().ok(),
            "gils" => gils = Some(value.parse().map_err(|_| missing_value("gils", word))?),
            // Later minor additions are ignored by older readers.
            _ => {}
        }
    }
    let missing = |name: &str| DecodeError(format!("header lacks a valid {name}: {:?}", truncate(line)));
    let timeline = match timeline.as_deref() {
        Some("exact") => Timeline::Exact,
        Some("inferred") => {
            Timeline::Inferred { resolution_ns: resolution.ok_or_else(|| missing("resolution_ns"))? }
        }
        _ => return Err(missing("timeline")),
    };
    Ok(Hello {
        version,
        pid: pid.ok_or_else(|| missing("pid"))?,
        runtime: runtime.ok_or_else(|| missing("runtime"))?,
        gil: gil.ok_or_else(|| missing("gil"))?,
        threads: threads.ok_or_else(|| missing("threads"))?,
        first_worker: first.ok_or_else(|| missing("first"))?,
        timeline,
        gils,
    })
}

/// Reads one record line.
pub fn decode(line: &str) -> Result<Record, DecodeError> {
    let bad = || DecodeError(format!("malformed worker record: {:?}", truncate(line)));
    let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
    if tag == "error" {
        return Ok(Record::Error { message: rest.to_owned() });
    }
    if tag == "lanes" {
        return decode_lanes(rest).ok_or_else(bad);
    }
    let mut fields = rest.split_ascii_whitespace();
    let mut num =
        || -> Result<u64, DecodeError> { fields.next().and_then(|f| f.parse().ok()).ok_or_else(bad) };
    let record = match tag {
        "start" => Record::Started { t: num()?, worker: worker(num()?)?, requested: num()? },
        "wait" => Record::Wait { t: num()?, worker: worker(num()?)? },
        "take" => Record::Take { t: num()?, worker: worker(num()?)? },
        "release" => {
            let (t, w) = (num()?, worker(num()?)?);
            let reason = fields.next().and_then(ReleaseReason::parse).ok_or_else(bad)?;
            Record::Release { t, worker: w, reason }
        }
        "io" => Record::IoBegin { t: num()?, worker: worker(num()?)? },
        "reply" => Record::Reply { t: num()?, worker: worker(num()?)?, latency_ns: num()? },
        "progress" => {
            let (t, w, done, total) = (num()?, worker(num()?)?, num()?, num()?);
            if done > total {
                return Err(bad());
            }
            Record::Progress { t, worker: w, done, total }
        }
        "finished" => Record::Finished { t: num()?, worker: worker(num()?)? },
        "cpu" => Record::Cpu { t: num()?, worker: worker(num()?)?, cpu_ns: num()? },
        "process" => Record::Process { t: num()?, worker: worker(num()?)?, pid: pid(num()?)? },
        "thread" => Record::Thread {
            t: num()?,
            worker: worker(num()?)?,
            pid: pid(num()?)?,
            tid: pid(num()?)?,
            interp: num()?,
        },
        "gil" => Record::Gil {
            t: num()?,
            pid: pid(num()?)?,
            interp: num()?,
            switches: num()?,
            seen: num()?,
            samples: num()?,
            span_ns: num()?,
            cpu_ns: num()?,
        },
        "end" => {
            let (t, pid, cpu_ns, max_rss_kb, switches) = (num()?, pid(num()?)?, num()?, num()?, num()?);
            // The drop-request count is there only where the interpreter knows it.
            let drop_requests = match fields.next() {
                Some(n) => Some(n.parse().map_err(|_| bad())?),
                None => None,
            };
            Record::End { t, pid, cpu_ns, max_rss_kb, switches, drop_requests }
        }
        _ => return Err(bad()),
    };
    if fields.next().is_some() {
        return Err(bad());
    }
    Ok(record)
}

/// `T PID exact`, `T PID measured PERIOD_NS`, `T PID inferred WHY…`.
fn decode_lanes(rest: &str) -> Option<Record> {
    let mut words = rest.splitn(4, ' ');
    let t = words.next()?.parse().ok()?;
    let pid = words.next()?.parse().ok()?;
    let source = match (words.next()?, words.next()) {
        ("exact", None) => LaneSource::Exact,
        ("measured", Some(period)) => LaneSource::Measured { period_ns: period.trim().parse().ok()? },
        ("inferred", Some(why)) if !why.trim().is_empty() => LaneSource::Inferred { why: why.to_owned() },
        _ => return None,
    };
    Some(Record::Lanes { t, pid, source })
}

fn worker(n: u64) -> Result<u32, DecodeError> {
    u32::try_from(n).map_err(|_| DecodeError(format!("worker index {n} out of range")))
}

fn pid(n: u64) -> Result<u32, DecodeError> {
    u32::try_from(n).map_err(|_| DecodeError(format!("process id {n} out of range")))
}

fn truncate(line: &str) -> &str {
    match line.char_indices().nth(80) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_record() -> Vec<Record> {
        vec![
            Record::Started { t: 10, worker: 0, requested: 5 },
            Record::Wait { t: 11, worker: 1 },
            Record::Take { t: 12, worker: 1 },
            Record::Release { t: 13, worker: 1, reason: ReleaseReason::DropRequest },
            Record::Release { t: 13, worker: 1, reason: ReleaseReason::Io },
            Record::Release { t: 13, worker: 1, reason: ReleaseReason::Finished },
            Record::Release { t: 13, worker: 1, reason: ReleaseReason::Inferred },
            Record::Release { t: 13, worker: 1, reason: ReleaseReason::Switched },
            Record::IoBegin { t: 15, worker: 2 },
            Record::Reply { t: 16, worker: 2, latency_ns: 900 },
            Record::Progress { t: 17, worker: 3, done: 40, total: 4_000_000 },
            Record::Finished { t: 18, worker: 3 },
            Record::Cpu { t: 18, worker: 3, cpu_ns: 123_456 },
            Record::Process { t: 19, worker: 3, pid: 4242 },
            Record::End {
                t: 19,
                pid: 4242,
                cpu_ns: 1_000,
                max_rss_kb: 2048,
                switches: 7,
                drop_requests: Some(3),
            },
            Record::End {
                t: 19,
                pid: 4242,
                cpu_ns: 1_000,
                max_rss_kb: 2048,
                switches: 7,
                drop_requests: None,
            },
            Record::Thread { t: 20, worker: 3, pid: 4242, tid: 4250, interp: 2 },
            Record::Error { message: "boom: it broke".into() },
            Record::Lanes { t: 21, pid: 4242, source: LaneSource::Exact },
            Record::Lanes { t: 21, pid: 4242, source: LaneSource::Measured { period_ns: 100_000 } },
            Record::Lanes {
                t: 21,
                pid: 4242,
                source: LaneSource::Inferred {
                    why: "stripped interpreter: python3.11 defines no _PyRuntime".into(),
                },
            },
            Record::Gil {
                t: 22,
                pid: 4242,
                interp: 0,
                switches: 40,
                seen: 39,
                samples: 9_000,
                span_ns: 900_000_000,
                cpu_ns: 4_000_000,
            },
        ]
    }

    #[test]
    fn every_record_survives_a_round_trip() {
        for record in every_record() {
            let line = record.to_string();
            assert_eq!(decode(&line), Ok(record), "line {line:?}");
        }
    }

    #[test]
    fn headers_survive_a_round_trip() {
        for timeline in [Timeline::Exact, Timeline::Inferred { resolution_ns: 50_000 }] {
            for gils in [None, Some(4)] {
                let hello = Hello {
                    version: VERSION,
                    pid: 42,
                    runtime: Runtime::Cpython,
                    gil: false,
                    threads: 4,
                    first_worker: 8,
                    timeline,
                    gils,
                };
                assert_eq!(decode_hello(&hello.to_string()), Ok(hello));
            }
        }
    }

    #[test]
    fn a_newer_version_is_refused_by_name() {
        let err =
            decode_hello("gilscope 3 pid=1 runtime=sim gil=on threads=1 first=0 timeline=exact").unwrap_err();
        assert!(err.0.contains("wire format 3"), "{err}");
    }

    #[test]
    fn garbage_and_truncated_lines_are_errors_not_panics() {
        for line in [
            "",
            "take",
            "take 12",
            "take 12 x",
            "take -1 0",
            "release 1 2 sideways",
            "progress 1 0 10 5",
            "take 1 2 3",
            "start 1 99999999999 0",
            "warp 1 2",
            "dropreq 1 2",
            "end 1 2 3 4 5 six",
            "thread 1 0 2 3",
            "lanes 1 2 sampled 100",
            "lanes 1 2 inferred",
            "lanes 1 2 exact now",
            "gil 1 2 3 4 5 6 7",
            "\u{0}\u{1}",
        ] {
            assert!(decode(line).is_err(), "{line:?} should not decode");
        }
        assert!(decode_hello("hello").is_err());
        assert!(decode_hello("gilscope 1 pid=1").is_err());
    }

    #[test]
    fn an_error_message_stays_on_one_line() {
        let line = Record::Error { message: "a\nb".into() }.to_string();
        assert!(!line.contains('\n'));
    }
}
