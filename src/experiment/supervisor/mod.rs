//! Starts worker processes, reads their streams, and makes sure they die.
//!
//! Each run has a thread of its own: it starts the run's processes one after
//! the other, then reads all their streams at once (`poll`), checks what they
//! say, and reaps them. Nothing of this runs on the caller's thread, so the
//! live view keeps drawing and answering keys while hundreds of processes
//! start. The thread lives as long as the run's processes do, which is what
//! their `PR_SET_PDEATHSIG` needs (it fires when the thread that forked a
//! child ends).
//!
//! Runs started together race: their workers start, record their first
//! instruction and wait for the start gun (`go` on their stdin), which fires
//! once every worker of every run has started. No worker is busy while the
//! others start, so starting hundreds takes well under a second instead of
//! competing with the ones already running; and every model begins its work
//! at the same moment.
//!
//! Every process of a run shares one process group, so one `killpg` reaches
//! them all (the `CPython` worker's own multiprocessing children included).
//! Each child also gets `PR_SET_PDEATHSIG`, and every worker exits when its
//! stdin, whose other end only the supervisor holds, reaches EOF: however
//! gilscope exits (SIGKILL included) its workers follow.
//!
//! What workers say reaches the caller in batches over a bounded channel
//! ([`channel`]); every line, and a stream's stderr, is bounded too. A worker
//! that writes faster than gilscope reads waits; gilscope's memory does not
//! grow. A run that says nothing for its silence limit while not paused fails.

mod gun;
mod stream;

use std::io::Write;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::children::{self, Registered};
use crate::clock::now_ns;
use crate::experiment::lanes::LaneStage;
use crate::experiment::supervisor::gun::Gun;
use crate::experiment::supervisor::stream::Stream;
use crate::protocol::{Hello, Record};

/// Tells the runs of one session apart, so late reports of a killed run are
/// recognised and dropped.
pub type RunId = u64;

/// How many events the channel holds: with [`MAX_BATCH`] reports each, a
/// few megabytes at most, and many frames' worth of a busy race.
pub const CHANNEL_EVENTS: usize = 1024;
/// The most reports one event carries.
pub const MAX_BATCH: usize = 256;

/// One process to start.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    pub program: std::path::PathBuf,
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Appended as `=<clock>` just before the spawn, so the child can measure
    /// its start cost from the parent's request.
    pub requested_at_flag: Option<String>,
    /// Workers the process speaks for: the start gun waits for a `start`
    /// record from each (0: it fires without waiting for this process).
    pub workers: u32,
    /// A real `CPython` whose GIL the lanes stage reads: the gun waits for
    /// each worker's `thread` record instead, and for its GIL to be found.
    pub watch_gil: bool,
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

/// One message on the supervisor's channel.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Every process of the run started; the run's reports follow.
    Started { run: RunId, pids: Vec<u32> },
    /// A process could not start; those that had are killed.
    StartFailed { run: RunId, why: String },
    /// What the workers said, in the order it was read.
    Reports(Vec<Report>),
}

/// The channel runs report on: bounded, so a flood waits instead of piling up.
pub fn channel() -> (Sender<Event>, Receiver<Event>) {
    crossbeam_channel::bounded(CHANNEL_EVENTS)
}

/// A run to start.
#[derive(Clone, Debug)]
pub struct RunStart {
    pub run: RunId,
    pub launches: Vec<Launch>,
    /// How long the run may say nothing (while not paused) before it fails.
    pub silence: Duration,
}

/// A run whose processes are starting or alive. Dropping it kills them.
pub struct Running {
    pub run: RunId,
    /// When the first process was asked for.
    pub requested_at: u64,
    streams: usize,
    shared: Arc<Shared>,
}

/// What the caller and the run's thread share.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The run's process group, listed while some process of it is unreaped.
    group: Option<Registered>,
    /// Every process started, in stream order.
    pids: Vec<u32>,
    /// Those not reaped yet.
    unreaped: Vec<u32>,
    stdins: Vec<ChildStdin>,
    killed: bool,
    paused: bool,
    gun_fired: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change under the lock is a single push, retain or store.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(group) = &self.lock().group {
            group.signal(signal);
        }
    }

    fn kill(&self) {
        let mut state = self.lock();
        state.killed = true;
        state.stdins.clear();
        if let Some(group) = &state.group {
            group.signal(libc::SIGKILL);
        }
    }

    /// Writes `go` to every worker's stdin, now and to those that start later.
    fn fire(&self) {
        let mut state = self.lock();
        state.gun_fired = true;
        for stdin in &mut state.stdins {
            // A worker that died cannot hear it: its stream says why.
            let _ = stdin.write_all(b"go\n");
        }
    }

    /// Takes in a process just started; false when the run was killed
    /// meanwhile (the caller kills the process).
    fn add(&self, pid: u32, stdin: Option<ChildStdin>) -> bool {
        let mut state = self.lock();
        if state.group.is_none() {
            state.group = Some(children::register(pid.cast_signed()));
        }
        state.pids.push(pid);
        state.unreaped.push(pid);
        if let Some(mut stdin) = stdin {
            if state.gun_fired {
                let _ = stdin.write_all(b"go\n");
            }
            if !state.killed {
                state.stdins.push(stdin);
            }
        }
        !state.killed
    }

    /// Process `pid` is about to be reaped: the group leaves the list before
    /// its last process does, so its id is never signalled once reusable.
    fn reaping(&self, pid: u32) {
        let mut state = self.lock();
        state.unreaped.retain(|p| *p != pid);
        if state.unreaped.is_empty() {
            state.group = None;
        }
    }
}

impl Running {
    /// The pids the supervisor started so far (not their own children).
    pub fn pids(&self) -> Vec<u32> {
        self.shared.lock().pids.clone()
    }

    /// How many processes the run has (once started).
    pub fn streams(&self) -> usize {
        self.streams
    }

    /// Freezes every process of the run (SIGSTOP): the workers really stop.
    pub fn pause(&self) {
        self.shared.lock().paused = true;
        self.shared.signal(libc::SIGSTOP);
    }

    pub fn resume(&self) {
        self.shared.signal(libc::SIGCONT);
        self.shared.lock().paused = false;
    }

    /// Kills every process of the run, and those still to start. The run's
    /// thread reaps them.
    pub fn kill(&mut self) {
        self.shared.kill();
    }

    /// Kills one worker process, as a crash would.
    pub fn kill_one(&self, pid: u32) {
        if self.shared.lock().unreaped.contains(&pid) {
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

/// Starts runs that race: each on a thread of its own, their workers held
/// at the start gun until every worker of every one of them has started.
/// Returns at once; [`Event::Started`] (or [`Event::StartFailed`]) comes for
/// each run when its processes are up.
pub fn start(runs: Vec<RunStart>, events: &Sender<Event>) -> Vec<Running> {
    let expected = runs.iter().flat_map(|r| &r.launches).map(|l| l.workers as usize).sum();
    let shared: Vec<Arc<Shared>> = runs.iter().map(|_| Arc::new(Shared::default())).collect();
    let gun = Arc::new(Gun::new(expected, shared.clone()));
    let mut running = Vec::with_capacity(runs.len());
    for (start, shared) in runs.into_iter().zip(shared) {
        let requested_at = now_ns();
        let handle = Running {
            run: start.run,
            requested_at,
            streams: start.launches.len(),
            shared: Arc::clone(&shared),
        };
        let job = Job { start, requested_at, shared, gun: Arc::clone(&gun), events: events.clone() };
        let name = format!("run-{}", job.start.run);
        if let Err(e) = std::thread::Builder::new().name(name).spawn(move || job.supervise()) {
            let _ = events.send(Event::StartFailed {
                run: handle.run,
                why: format!("cannot start a thread to supervise the run: {e}"),
            });
            gun.fire();
        }
        running.push(handle);
    }
    running
}

/// Starts one run alone (its workers begin as soon as they have all started).
pub fn start_one(run: RunId, launches: Vec<Launch>, silence: Duration, events: &Sender<Event>) -> Running {
    let mut started = start(vec![RunStart { run, launches, silence }], events);
    // `start` returns one `Running` per run asked for.
    started.swap_remove(0)
}

/// Everything a run's thread needs.
struct Job {
    start: RunStart,
    requested_at: u64,
    shared: Arc<Shared>,
    gun: Arc<Gun>,
    events: Sender<Event>,
}

/// How much is read from a pipe at once.
const CHUNK: usize = 64 * 1024;

/// Once the race is on, a run's pipes are read in rounds at most this
/// often while they carry little. Each worker process writes its records
/// every 15 ms, out of step with the others, and each wake-up of this
/// thread cost about as much as the reading (a context switch on a VM);
/// the screen takes reports ten times a second, and every record carries
/// its own time, so reading in rounds changes no figure.
const READ_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// A round that brought this much from one pipe is followed at once by
/// the next: a pipe holds 64 KiB, and a worker waits when it is full.
const BUSY_ROUND: usize = 16 * 1024;

impl Job {
    /// The run's whole life: start its processes, read them, reap them.
    fn supervise(self) {
        let run = self.start.run;
        let mut streams = Vec::with_capacity(self.start.launches.len());
        let mut failure = None;
        for (index, launch) in self.start.launches.iter().enumerate() {
            if self.shared.lock().killed {
                break;
            }
            let group = self.shared.lock().group.as_ref().map_or(0, Registered::pgid);
            match spawn(launch, group) {
                Ok(mut child) => {
                    let pid = child.id();
                    if !self.shared.add(pid, child.stdin.take()) {
                        let _ = child.kill();
                    }
                    streams.push(Stream::new(index, child, run, self.requested_at, launch.watch_gil));
                }
                Err(why) => {
                    failure = Some(why);
                    break;
                }
            }
        }
        let started = match failure {
            Some(why) => {
                self.shared.kill();
                self.gun.fire();
                Event::StartFailed { run, why }
            }
            None => Event::Started { run, pids: self.shared.lock().pids.clone() },
        };
        let _ = self.events.send(started);
        self.read(streams);
    }

    /// Reads every stream until each has closed and its process is reaped.
    fn read(&self, mut streams: Vec<Stream>) {
        let (run, silence) = (self.start.run, self.start.silence);
        let mut chunk = vec![0u8; CHUNK];
        let mut batch = Vec::new();
        let mut last_heard = Instant::now();
        // Set when the run as a whole failed: every stream ends with it.
        let mut failure: Option<String> = None;
        let watched = self.start.launches.iter().filter(|l| l.watch_gil).map(|l| l.workers as usize).sum();
        let mut lanes = LaneStage::new(run, watched);
        let mut out = Vec::new();
        while streams.iter().any(|s| !s.ended) {
            let (mut fds, mut owners) = (Vec::new(), Vec::new());
            for (i, stream) in streams.iter().enumerate() {
                for (pipe, fd) in stream.open_pipes() {
                    fds.push(libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
                    owners.push((i, pipe));
                }
            }
            // A stream whose pipes closed waits for its process to exit.
            let exiting = streams.iter().any(|s| s.drained() && !s.ended);
            // GILs being read: their probes' rings (128 KiB a thread) and
            // samples are drained at each round. The wait for the pipes is
            // 5 ms while workers are being taken in, 25 ms once the race is
            // on; rounds that read little are then spaced out further below.
            let timeout_ms = match (exiting, lanes.active(), self.gun.fired()) {
                (true, ..) | (false, true, false) => 5,
                (false, true, true) => 25,
                (false, false, _) => 200,
            };
            // SAFETY: `fds` is a valid array of pollfd for its length.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
            let round = Instant::now();
            let mut most = 0;
            if ready > 0 {
                last_heard = Instant::now();
                for (fd, &(i, pipe)) in fds.iter().zip(&owners) {
                    if fd.revents != 0 {
                        most = most.max(streams[i].read(pipe, &mut chunk, &mut batch, &self.gun));
                    }
                }
            }
            for stream in streams.iter_mut().filter(|s| s.drained() && !s.ended) {
                if children::has_exited(stream.pid, false) {
                    self.shared.reaping(stream.pid);
                    let outcome = stream.finish(failure.as_deref());
                    batch.push(Report::Ended { run, stream: stream.index, outcome });
                    // A worker gone before the gun would hold the others forever.
                    self.gun.fire();
                }
            }
            let paused = self.shared.lock().paused;
            if paused {
                last_heard = Instant::now();
            } else if failure.is_none() && last_heard.elapsed() > silence {
                failure = Some(format!("no word from the workers in {} s", silence.as_secs()));
                self.shared.kill();
            }
            for report in batch.drain(..) {
                let watched = match &report {
                    Report::Record { stream, .. } => streams[*stream].watched,
                    _ => false,
                };
                for _ in 0..lanes.pass(report, watched, &mut out) {
                    self.gun.started_one();
                }
            }
            lanes.tick(&mut out);
            for part in out.chunks(MAX_BATCH) {
                // Blocks while the channel is full: the workers wait, memory does not grow.
                if self.events.send(Event::Reports(part.to_vec())).is_err() {
                    // Nobody listens any more: stop the run.
                    self.shared.kill();
                }
            }
            out.clear();
            // Racing, with little to read and nothing ending: wait for more.
            if most > 0 && most < BUSY_ROUND && self.gun.fired() && !exiting {
                // GILs read have their probes' rings drained at each round,
                // less often while they fill slowly, sooner where one filled fast.
                let every = if lanes.active() { lanes.drain_within(READ_EVERY) } else { READ_EVERY };
                std::thread::sleep(every.saturating_sub(round.elapsed()));
            }
        }
    }
}

/// Starts one process of a run, in the run's process group (0: a new one).
fn spawn(launch: &Launch, group: libc::pid_t) -> Result<std::process::Child, String> {
    let mut command = Command::new(&launch.program);
    command
        .args(&launch.args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    children::tie(&mut command, group);
    if let Some(flag) = &launch.requested_at_flag {
        command.arg(format!("{flag}={}", now_ns()));
    }
    command.spawn().map_err(|e| format!("cannot start {}: {e}", launch.program.display()))
}
