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

/// Bumped whenever a record changes meaning or shape.
pub const VERSION: u32 = 1;

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
}

impl ReleaseReason {
    fn as_str(self) -> &'static str {
        match self {
            ReleaseReason::DropRequest => "drop",
            ReleaseReason::Io => "io",
            ReleaseReason::Finished => "finished",
            ReleaseReason::Inferred => "inferred",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "drop" => Some(ReleaseReason::DropRequest),
            "io" => Some(ReleaseReason::Io),
            "finished" => Some(ReleaseReason::Finished),
            "inferred" => Some(ReleaseReason::Inferred),
            _ => None,
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
    /// `worker`, waiting, timed out with no switch and asked the holder to drop.
    DropRequest { t: u64, worker: u32 },
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
    /// threads), its peak resident memory and how often its GIL changed
    /// hands. One per process the stream speaks for.
    End { t: u64, pid: u32, cpu_ns: u64, max_rss_kb: u64, switches: u64 },
    /// The worker process hit an error it reports before exiting non-zero.
    Error { message: String },
}

impl Record {
    /// The worker a record is about, if any.
    pub fn worker(&self) -> Option<u32> {
        match *self {
            Record::Started { worker, .. }
            | Record::Wait { worker, .. }
            | Record::Take { worker, .. }
            | Record::Release { worker, .. }
            | Record::DropRequest { worker, .. }
            | Record::IoBegin { worker, .. }
            | Record::Reply { worker, .. }
            | Record::Progress { worker, .. }
            | Record::Finished { worker, .. }
            | Record::Cpu { worker, .. }
            | Record::Process { worker, .. } => Some(worker),
            Record::End { .. } | Record::Error { .. } => None,
        }
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
            Record::DropRequest { t, worker } => Record::DropRequest { t: f(t), worker },
            Record::IoBegin { t, worker } => Record::IoBegin { t: f(t), worker },
            Record::Reply { t, worker, latency_ns } => {
                let (asked, back) = (f(t.saturating_sub(latency_ns)), f(t));
                Record::Reply { t: back, worker, latency_ns: back.saturating_sub(asked) }
            }
            Record::Progress { t, worker, done, total } => Record::Progress { t: f(t), worker, done, total },
            Record::Cpu { t, worker, cpu_ns } => Record::Cpu { t: f(t), worker, cpu_ns },
            Record::Finished { t, worker } => Record::Finished { t: f(t), worker },
            Record::Process { t, worker, pid } => Record::Process { t: f(t), worker, pid },
            Record::End { t, pid, cpu_ns, max_rss_kb, switches } => {
                Record::End { t: f(t), pid, cpu_ns, max_rss_kb, switches }
            }
            Record::Error { message } => Record::Error { message },
        }
    }

    /// When the record happened, if it carries a time.
    pub fn time(&self) -> Option<u64> {
        match *self {
            Record::Started { t, .. }
            | Record::Wait { t, .. }
            | Record::Take { t, .. }
            | Record::Release { t, .. }
            | Record::DropRequest { t, .. }
            | Record::IoBegin { t, .. }
            | Record::Reply { t, .. }
            | Record::Progress { t, .. }
            | Record::Finished { t, .. }
            | Record::Cpu { t, .. }
            | Record::Process { t, .. }
            | Record::End { t, .. } => Some(t),
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
            Record::DropRequest { t, worker } => write!(f, "dropreq {t} {worker}"),
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
            Record::End { t, pid, cpu_ns, max_rss_kb, switches } => {
                write!(f, "end {t} {pid} {cpu_ns} {max_rss_kb} {switches}")
            }
            // One line, whatever the message held.
            Record::Error { message } => write!(f, "error {}", message.replace('\n', " ")),
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
        "dropreq" => Record::DropRequest { t: num()?, worker: worker(num()?)? },
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
        "end" => {
            Record::End { t: num()?, pid: pid(num()?)?, cpu_ns: num()?, max_rss_kb: num()?, switches: num()? }
        }
        _ => return Err(bad()),
    };
    if fields.next().is_some() {
        return Err(bad());
    }
    Ok(record)
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
            Record::DropRequest { t: 14, worker: 0 },
            Record::IoBegin { t: 15, worker: 2 },
            Record::Reply { t: 16, worker: 2, latency_ns: 900 },
            Record::Progress { t: 17, worker: 3, done: 40, total: 4_000_000 },
            Record::Finished { t: 18, worker: 3 },
            Record::Cpu { t: 18, worker: 3, cpu_ns: 123_456 },
            Record::Process { t: 19, worker: 3, pid: 4242 },
            Record::End { t: 19, pid: 4242, cpu_ns: 1_000, max_rss_kb: 2048, switches: 7 },
            Record::Error { message: "boom: it broke".into() },
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
            decode_hello("gilscope 2 pid=1 runtime=sim gil=on threads=1 first=0 timeline=exact").unwrap_err();
        assert!(err.0.contains("wire format 2"), "{err}");
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
