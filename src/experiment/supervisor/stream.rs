//! One worker process's stream as the supervisor reads it: whole lines of
//! the wire format cut out of 64 KiB reads and decoded in place (no
//! allocation per line), every record checked against the clock, and only
//! the last 4 KiB of its stderr kept. A line longer than
//! [`protocol::MAX_LINE`], more than [`STDERR_LIMIT`] on stderr, or a record
//! no worker could have written breaks the stream: its process is killed
//! and the run fails with a line naming it.

use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStderr, ChildStdout};

use crate::clock::now_ns;
use crate::experiment::supervisor::gun::Gun;
use crate::experiment::supervisor::{Report, RunId};
use crate::format::duration_label;
use crate::protocol::{self, Hello, Record};

/// How much a worker may write on stderr: a Python traceback is a few KiB.
pub(super) const STDERR_LIMIT: u64 = 1 << 20;
/// How much of stderr is kept, to say why a worker failed.
const STDERR_TAIL: usize = 4096;
/// Slack for a thread's CPU time against the wall clock (accounting ticks).
const CPU_SLACK_NS: u64 = 10_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pipe {
    Stdout,
    Stderr,
}

pub(super) struct Stream {
    pub(super) index: usize,
    pub(super) pid: u32,
    /// Reaped, and its `Ended` report made.
    pub(super) ended: bool,
    /// Its GIL lanes are read by the lanes stage, which tells the start gun
    /// when each worker is ready.
    pub(super) watched: bool,
    child: Child,
    run: RunId,
    /// When the run was requested: no record can be older.
    requested_at: u64,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    /// The start of a line whose end has not arrived yet.
    pending: Vec<u8>,
    tail: Vec<u8>,
    stderr_bytes: u64,
    hello: Option<Hello>,
    /// What the worker explained in an `error` record.
    worker_error: Option<String>,
    /// Why the stream cannot be trusted (its process was killed for it).
    broken: Option<String>,
}

impl Stream {
    pub(super) fn new(index: usize, mut child: Child, run: RunId, requested_at: u64, watched: bool) -> Self {
        Stream {
            index,
            pid: child.id(),
            ended: false,
            watched,
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child,
            run,
            requested_at,
            pending: Vec::new(),
            tail: Vec::new(),
            stderr_bytes: 0,
            hello: None,
            worker_error: None,
            broken: None,
        }
    }

    /// The pipes still open, to poll.
    pub(super) fn open_pipes(&self) -> impl Iterator<Item = (Pipe, RawFd)> {
        let out = self.stdout.as_ref().map(|p| (Pipe::Stdout, p.as_raw_fd()));
        let err = self.stderr.as_ref().map(|p| (Pipe::Stderr, p.as_raw_fd()));
        out.into_iter().chain(err)
    }

    /// Both pipes closed: only the exit status is still to come.
    pub(super) fn drained(&self) -> bool {
        self.stdout.is_none() && self.stderr.is_none()
    }

    /// Reads what `pipe` has (poll said it is ready); the reports it makes
    /// go into `batch`. Returns how many bytes came.
    pub(super) fn read(&mut self, pipe: Pipe, chunk: &mut [u8], batch: &mut Vec<Report>, gun: &Gun) -> usize {
        let read = match pipe {
            Pipe::Stdout => self.stdout.as_mut().map(|p| p.read(chunk)),
            Pipe::Stderr => self.stderr.as_mut().map(|p| p.read(chunk)),
        };
        // Taken once the bytes are in: a record written after poll returned
        // may be in them, and no record can be later than its reading.
        let now = now_ns();
        match (pipe, read) {
            (_, None) => {}
            (_, Some(Err(e))) if e.kind() == std::io::ErrorKind::Interrupted => {}
            (Pipe::Stdout, Some(Ok(0) | Err(_))) => {
                self.stdout = None;
                // A last line without its newline is a line all the same.
                let rest = std::mem::take(&mut self.pending);
                if !rest.is_empty() {
                    self.line(&rest, now, batch, gun);
                }
            }
            (Pipe::Stderr, Some(Ok(0) | Err(_))) => self.stderr = None,
            (Pipe::Stdout, Some(Ok(n))) => {
                self.lines(&chunk[..n], now, batch, gun);
                return n;
            }
            (Pipe::Stderr, Some(Ok(n))) => {
                self.keep_stderr(&chunk[..n]);
                return n;
            }
        }
        0
    }

    fn lines(&mut self, mut bytes: &[u8], now: u64, batch: &mut Vec<Report>, gun: &Gun) {
        // The end of a line begun in an earlier read.
        if !self.pending.is_empty() {
            let Some(end) = bytes.iter().position(|b| *b == b'\n') else {
                self.pending.extend_from_slice(bytes);
                self.check_pending();
                return;
            };
            let mut line = std::mem::take(&mut self.pending);
            line.extend_from_slice(&bytes[..end]);
            self.line(&line, now, batch, gun);
            line.clear();
            self.pending = line;
            bytes = &bytes[end + 1..];
        }
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            self.line(&rest[..end], now, batch, gun);
            rest = &rest[end + 1..];
        }
        self.pending.extend_from_slice(rest);
        self.check_pending();
    }

    fn check_pending(&mut self) {
        if self.pending.len() > protocol::MAX_LINE {
            self.pending = Vec::new();
            self.break_off(&format!("wrote a line longer than {} bytes", protocol::MAX_LINE));
        }
    }

    fn keep_stderr(&mut self, bytes: &[u8]) {
        self.stderr_bytes += bytes.len() as u64;
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > STDERR_TAIL {
            self.tail.drain(..self.tail.len() - STDERR_TAIL);
        }
        if self.stderr_bytes > STDERR_LIMIT {
            self.break_off(&format!("wrote more than {} KiB on stderr", STDERR_LIMIT / 1024));
        }
    }

    /// The stream cannot be trusted: its process goes, nothing more is read.
    fn break_off(&mut self, why: &str) {
        if self.broken.is_none() {
            self.broken = Some(format!("worker process {} {why}", self.pid));
        }
        let _ = self.child.kill();
        self.stdout = None;
        self.stderr = None;
    }

    fn line(&mut self, line: &[u8], now: u64, batch: &mut Vec<Report>, gun: &Gun) {
        if self.broken.is_some() {
            return;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            return self.break_off("wrote a line that is not UTF-8");
        };
        let (run, stream) = (self.run, self.index);
        let Some(hello) = &self.hello else {
            match protocol::decode_hello(text) {
                Ok(hello) => {
                    self.hello = Some(hello.clone());
                    batch.push(Report::Hello { run, stream, hello });
                }
                Err(e) => self.break_off(&format!("said: {e}")),
            }
            return;
        };
        let record = match protocol::decode(text) {
            Ok(record) => record,
            Err(e) => return self.break_off(&format!("said: {e}")),
        };
        if let Err(why) = self.plausible(hello, &record, now) {
            return self.break_off(&why);
        }
        match &record {
            Record::Error { message } => {
                self.worker_error = Some(format!("failed: {}", first_chars(message, 300)));
            }
            Record::Started { .. } if !self.watched => gun.started_one(),
            _ => {}
        }
        batch.push(Report::Record { run, stream, record });
    }

    /// Why no worker of this stream could have written `record` by `now`, if so.
    fn plausible(&self, hello: &Hello, record: &Record, now: u64) -> Result<(), String> {
        if record.from_gilscope() {
            return Err(format!(
                "wrote a record only gilscope writes: {:?}",
                first_chars(&record.to_string(), 80)
            ));
        }
        let who = record.worker().map_or_else(|| "its end".to_owned(), |w| format!("worker {w}"));
        if let Some(w) = record.worker() {
            let runs = hello.first_worker..hello.first_worker.saturating_add(hello.threads);
            if !runs.contains(&w) {
                return Err(format!("spoke of worker {w}, but runs workers {runs:?}"));
            }
        }
        let ago = |t: u64| duration_label(now.saturating_sub(t) as f64 / 1e9);
        if let Some(t) = record.time() {
            if t > now {
                return Err(format!(
                    "stamped a record of {who} {} in the future",
                    duration_label((t - now) as f64 / 1e9)
                ));
            }
            if t < self.requested_at {
                return Err(format!(
                    "stamped a record of {who} {} before the run was requested",
                    duration_label((self.requested_at - t) as f64 / 1e9)
                ));
            }
        }
        let lived = now.saturating_sub(self.requested_at);
        match *record {
            Record::Started { requested, .. } if requested < self.requested_at => {
                Err(format!("said {who} was asked for {} ago, before the run was requested", ago(requested)))
            }
            Record::Started { t, requested, .. } if requested > t => {
                Err(format!("said {who} ran its first instruction before it was asked for"))
            }
            Record::Reply { latency_ns, .. } if latency_ns > lived => {
                Err(format!("reported a reply to {who} that took longer than the run has lasted"))
            }
            Record::Cpu { cpu_ns, .. } if cpu_ns > lived + CPU_SLACK_NS => {
                Err(format!("reported more CPU time for {who} than the run has lasted"))
            }
            _ => Ok(()),
        }
    }

    /// Reaps the process (it has exited); the stream's outcome. `imposed`
    /// is the run's own failure (silence), which every stream then shares.
    pub(super) fn finish(&mut self, imposed: Option<&str>) -> Result<(), String> {
        self.ended = true;
        let status = self.child.wait();
        if let Some(why) = imposed {
            return Err(why.to_owned());
        }
        if let Some(why) = self.broken.take() {
            return Err(why);
        }
        let pid = self.pid;
        let status = status.map_err(|e| format!("worker process {pid}: cannot wait for it: {e}"))?;
        if status.success() {
            return Ok(());
        }
        let why = match (self.worker_error.take(), status.signal()) {
            (Some(message), _) => message,
            (None, Some(signal)) => format!("killed by signal {signal} ({})", signal_name(signal)),
            (None, None) => {
                let tail = String::from_utf8_lossy(&self.tail);
                match tail.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
                    Some(line) => format!("exited with {status}: {}", first_chars(line, 200)),
                    None => format!("exited with {status}"),
                }
            }
        };
        Err(format!("worker process {pid} {why}"))
    }
}

fn first_chars(text: &str, n: usize) -> &str {
    text.char_indices().nth(n).map_or(text, |(i, _)| &text[..i])
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGPIPE => "SIGPIPE",
        _ => "signal",
    }
}
