//! Starts worker processes, reads their streams, and makes sure they die.
//!
//! Every process of a run shares one process group, so one `killpg` reaches
//! them all (the `CPython` worker's own multiprocessing children included).
//! On Linux each child also gets `PR_SET_PDEATHSIG`, and every worker exits
//! when its stdin, whose other end only the supervisor holds, reaches EOF:
//! however gilscope exits (SIGKILL included) its workers follow.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::Sender;

use crate::clock::now_ns;
use crate::protocol::{self, Hello, Record};

/// Tells the runs of one session apart, so late reports of a killed run are
/// recognised and dropped.
pub type RunId = u64;

/// One process to start.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    pub program: std::path::PathBuf,
    pub args: Vec<String>,
    /// Extra environment, e.g. `PYTHON_GIL=0`.
    pub env: Vec<(String, String)>,
    /// Appended as `=<clock>` just before the spawn, so the child can measure
    /// its start cost from the parent's request.
    pub requested_at_flag: Option<String>,
}

/// What the supervisor hears from a run.
#[derive(Clone, Debug, PartialEq)]
pub enum Report {
    Hello {
        run: RunId,
        stream: usize,
        hello: Hello,
    },
    Record {
        run: RunId,
        stream: usize,
        record: Record,
    },
    /// A stream closed: `Ok` if its process exited 0 after a well-formed
    /// stream, else why not.
    Ended {
        run: RunId,
        stream: usize,
        outcome: Result<(), String>,
    },
}

impl Report {
    pub fn run(&self) -> RunId {
        match self {
            Report::Hello { run, .. } | Report::Record { run, .. } | Report::Ended { run, .. } => *run,
        }
    }
}

/// A run whose processes are alive. Dropping it kills them.
pub struct Running {
    pub run: RunId,
    /// When the first process was asked for.
    pub requested_at: u64,
    pgid: libc::pid_t,
    pids: Vec<u32>,
    /// Processes not yet reaped; the group is only signalled while some live,
    /// so a recycled process-group id is never hit.
    alive: Arc<AtomicUsize>,
    stdins: Vec<ChildStdin>,
}

impl Running {
    /// The pids the supervisor started (not their own children).
    pub fn pids(&self) -> &[u32] {
        &self.pids
    }

    pub fn streams(&self) -> usize {
        self.pids.len()
    }

    fn signal(&self, signal: libc::c_int) {
        if self.alive.load(Ordering::SeqCst) > 0 {
            // SAFETY: plain syscall on a process group we created.
            unsafe { libc::killpg(self.pgid, signal) };
        }
    }

    /// Freezes every process of the run (SIGSTOP): the workers really stop.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Kills every process of the run. Reader threads reap them.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        self.stdins.clear();
    }

    /// Kills one worker process, as a crash would.
    pub fn kill_one(&self, pid: u32) {
        if self.alive.load(Ordering::SeqCst) > 0 {
            // SAFETY: plain syscall; the pid is one of our unreaped children.
            unsafe { libc::kill(pid.cast_signed(), libc::SIGKILL) };
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts every process of a run, in one new process group.
pub fn start(launches: &[Launch], run: RunId, reports: &Sender<Report>) -> std::io::Result<Running> {
    let parent = std::process::id();
    let requested_at = now_ns();
    let alive = Arc::new(AtomicUsize::new(0));
    // Readers reap their child only once every process of the run exists: a
    // reaped leader would take the process group with it, and the next
    // setpgid would fail. Dropping the sender at the end of `start` (or on
    // an early return) lets them go.
    let (all_started, wait_for_all) = crossbeam_channel::bounded::<()>(0);
    let mut running = Running {
        run,
        requested_at,
        pgid: 0,
        pids: Vec::new(),
        alive: Arc::clone(&alive),
        stdins: Vec::new(),
    };
    for (stream, launch) in launches.iter().enumerate() {
        let mut command = Command::new(&launch.program);
        command
            .args(&launch.args)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(running.pgid);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                #[cfg(target_os = "linux")]
                {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    // The parent may have died before prctl took effect.
                    if libc::getppid() != parent.cast_signed() {
                        libc::_exit(1);
                    }
                }
                Ok(())
            });
        }
        if let Some(flag) = &launch.requested_at_flag {
            command.arg(format!("{flag}={}", now_ns()));
        }
        // On failure `running` drops here and kills what already started.
        let mut child = command.spawn().map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot start {}: {e}", launch.program.display()))
        })?;
        alive.fetch_add(1, Ordering::SeqCst);
        if running.pgid == 0 {
            running.pgid = child.id().cast_signed();
        }
        running.pids.push(child.id());
        if let Some(stdin) = child.stdin.take() {
            running.stdins.push(stdin);
        }
        let reports = reports.clone();
        let alive = Arc::clone(&alive);
        let wait_for_all = wait_for_all.clone();
        std::thread::Builder::new().name(format!("read-{run}-{stream}")).spawn(move || {
            let outcome = read_stream(&mut child, run, stream, &reports, &wait_for_all);
            alive.fetch_sub(1, Ordering::SeqCst);
            let _ = reports.send(Report::Ended { run, stream, outcome });
        })?;
    }
    drop(all_started);
    Ok(running)
}

/// Forwards one child's stream until it ends, then reaps the child.
fn read_stream(
    child: &mut Child,
    run: RunId,
    stream: usize,
    reports: &Sender<Report>,
    wait_for_all: &crossbeam_channel::Receiver<()>,
) -> Result<(), String> {
    let pid = child.id();
    let stderr = child.stderr.take().map(|mut err| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        })
    });
    let mut worker_error = None;
    let decoded = match child.stdout.take() {
        Some(stdout) => forward(BufReader::new(stdout), run, stream, reports, &mut worker_error),
        None => Err("worker stdout was not captured".to_owned()),
    };
    if decoded.is_err() {
        // A stream we cannot read is a run we cannot show: stop that process.
        let _ = child.kill();
    }
    let _ = wait_for_all.recv();
    let status = child.wait();
    let stderr_text = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    decoded?;
    let status = status.map_err(|e| format!("worker process {pid}: cannot wait for it: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let why = match (worker_error, std::os::unix::process::ExitStatusExt::signal(&status)) {
        (Some(message), _) => message,
        (None, Some(signal)) => format!("killed by signal {signal} ({})", signal_name(signal)),
        (None, None) => match stderr_text.lines().rev().find(|l| !l.trim().is_empty()) {
            Some(line) => format!("exited with {status}: {}", line.trim()),
            None => format!("exited with {status}"),
        },
    };
    Err(format!("worker process {pid} {why}"))
}

fn forward(
    stdout: impl BufRead,
    run: RunId,
    stream: usize,
    reports: &Sender<Report>,
    worker_error: &mut Option<String>,
) -> Result<(), String> {
    let mut lines = stdout.lines();
    let first = match lines.next() {
        Some(Ok(line)) => line,
        Some(Err(e)) => return Err(format!("cannot read worker output: {e}")),
        // Died before saying anything; the exit status will tell why.
        None => return Ok(()),
    };
    let hello = protocol::decode_hello(&first).map_err(|e| e.to_string())?;
    let _ = reports.send(Report::Hello { run, stream, hello });
    for line in lines {
        let line = line.map_err(|e| format!("cannot read worker output: {e}"))?;
        let record = protocol::decode(&line).map_err(|e| e.to_string())?;
        if let Record::Error { message } = &record {
            *worker_error = Some(format!("failed: {message}"));
        }
        if reports.send(Report::Record { run, stream, record }).is_err() {
            return Err("nobody is listening any more".to_owned());
        }
    }
    Ok(())
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
