//! Child processes that never outlive gilscope, however it exits.
//!
//! Every process gilscope starts runs in a process group that gilscope made
//! for it, and gets `PR_SET_PDEATHSIG` (SIGKILL). While a group may hold
//! processes it is listed here, so that a termination signal can kill every
//! group before gilscope goes (see [`kill_every_group`]); SIGKILL leaves
//! nothing to run, and then PDEATHSIG takes each direct child.
//!
//! PDEATHSIG fires when the *thread* that forked the child ends, not when
//! the process does: a thread that starts children must outlive them.
//! A group leaves the list before its last process is reaped, so a group id
//! the kernel may give to someone else is never signalled.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Process groups that may still hold processes of ours.
static GROUPS: Mutex<Vec<libc::pid_t>> = Mutex::new(Vec::new());

fn groups() -> std::sync::MutexGuard<'static, Vec<libc::pid_t>> {
    // A panic while the list was held cannot leave it inconsistent (every
    // change is one push or one retain), so go on with it.
    GROUPS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Lists process group `pgid` as ours until the returned guard drops.
pub fn register(pgid: libc::pid_t) -> Registered {
    groups().push(pgid);
    Registered { pgid }
}

/// A listed process group; dropping it takes the group off the list (it
/// does not kill it).
#[derive(Debug)]
pub struct Registered {
    pgid: libc::pid_t,
}

impl Registered {
    pub fn pgid(&self) -> libc::pid_t {
        self.pgid
    }

    /// Sends `signal` to every process of the group.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: plain syscall on a group of ours that is still listed, so
        // some process of it is unreaped and the id cannot have been reused.
        unsafe { libc::killpg(self.pgid, signal) };
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let pgid = self.pgid;
        groups().retain(|g| *g != pgid);
    }
}

/// Kills every listed group: what a termination signal does before gilscope
/// exits.
pub fn kill_every_group() {
    for pgid in groups().iter() {
        // SAFETY: see `Registered::signal`.
        unsafe { libc::killpg(*pgid, libc::SIGKILL) };
    }
}

/// How much lower than gilscope's own the children's scheduling priority is
/// (nice levels). On a machine with far more runnable workers than cores, a
/// key would otherwise wait for its turn among all of them (256 workers on
/// 2 cores: seconds) and so would the terminal that draws the answer. The
/// workers all have the same priority, so they share the cores as before;
/// on a machine with nothing else to run it changes no timing.
pub const WORKER_NICENESS: libc::c_int = 19;

/// Makes `command` start in process group `group` (0: a new group the child
/// leads) with `PR_SET_PDEATHSIG`, [`WORKER_NICENESS`] below gilscope.
pub fn tie(command: &mut Command, group: libc::pid_t) {
    let parent = std::process::id();
    command.process_group(group);
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
            // A failure leaves the child at gilscope's priority: still correct.
            libc::nice(WORKER_NICENESS);
            Ok(())
        });
    }
}

/// Whether process `pid` (a child of ours) has exited, without reaping it:
/// its id stays reserved until it is waited for.
pub fn has_exited(pid: u32, block: bool) -> bool {
    // SAFETY: a zeroed siginfo_t is a valid value for waitid to fill.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOWAIT | if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: valid pointer; WNOWAIT leaves the child waitable.
        let r = unsafe { libc::waitid(libc::P_PID, pid, &raw mut info, flags) };
        if r == 0 {
            // SAFETY: waitid filled `info`; si_pid is 0 when nothing exited.
            return unsafe { info.si_pid() } != 0;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // Not our child, or already reaped: nothing left to wait for.
            return true;
        }
    }
}

/// What a bounded run of a short command gave.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Why a bounded run gave nothing.
#[derive(Debug)]
pub enum Unfinished {
    /// It could not start.
    Spawn(std::io::Error),
    /// It ran longer than allowed, and was killed with its whole group.
    TimedOut,
}

/// Runs `command` to its end with no input, keeping at most `max_output`
/// bytes of each of its outputs; after `limit` its whole process group is
/// killed. Whatever it started itself goes with it when it ends.
pub fn run_bounded(mut command: Command, limit: Duration, max_output: usize) -> Result<Finished, Unfinished> {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    tie(&mut command, 0);
    let mut child = command.spawn().map_err(Unfinished::Spawn)?;
    let group = register(child.id().cast_signed());
    let (tx, rx) = crossbeam_channel::bounded(2);
    let mut readers = 0;
    for (which, pipe) in [
        (0, child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>)),
        (1, child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>)),
    ] {
        let Some(mut pipe) = pipe else { continue };
        let tx = tx.clone();
        let spawned = std::thread::Builder::new().name("bounded-output".into()).spawn(move || {
            let (mut kept, mut chunk) = (Vec::new(), [0u8; 8192]);
            // Read to the end, keeping the first `max_output` bytes, so the
            // child never blocks on a full pipe.
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                let room = max_output.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
            let _ = tx.send((which, kept));
        });
        readers += usize::from(spawned.is_ok());
    }
    drop(tx);
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    let mut timed_out = false;
    while !has_exited(child.id(), false) {
        if Instant::now() >= deadline {
            timed_out = true;
            break;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    // The child is gone or must go; so must anything it left in its group.
    group.signal(libc::SIGKILL);
    drop(group);
    let status = child.wait().unwrap_or_else(|_| ExitStatus::from_raw(libc::SIGKILL));
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..readers {
        // A grandchild that left the group may hold a pipe open: do not wait for it.
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok((0, kept)) => stdout = kept,
            Ok((_, kept)) => stderr = kept,
            Err(_) => break,
        }
    }
    if timed_out {
        return Err(Unfinished::TimedOut);
    }
    Ok(Finished { status, stdout, stderr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_that_outlives_its_limit_is_killed_with_what_it_started() {
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 1000 & wait"]);
        let started = Instant::now();
        let outcome = run_bounded(command, Duration::from_millis(300), 1024);
        assert!(matches!(outcome, Err(Unfinished::TimedOut)), "{outcome:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    }

    #[test]
    fn a_command_that_ends_gives_its_status_and_bounded_output() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo out; echo err >&2; head -c 100000 /dev/zero; exit 3"]);
        let Ok(finished) = run_bounded(command, Duration::from_secs(10), 16) else {
            panic!("sh did not finish")
        };
        assert_eq!(finished.status.code(), Some(3));
        assert_eq!(finished.stdout, b"out\n\0\0\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(finished.stderr, b"err\n");
    }

    /// The nice value of process `pid`, from /proc/PID/stat.
    fn niceness(pid: u32) -> i32 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
        let after_name = stat.rsplit_once(')').expect("a stat line").1;
        // Fields after the name start at field 3; nice is field 19.
        after_name.split_whitespace().nth(16).and_then(|n| n.parse().ok()).expect("a nice field")
    }

    #[test]
    fn a_tied_child_runs_at_a_lower_priority_than_gilscope() {
        let mut command = Command::new("sleep");
        command.arg("5");
        tie(&mut command, 0);
        let mut child = command.spawn().expect("start sleep");
        let (ours, its) = (niceness(std::process::id()), niceness(child.id()));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(its, (ours + WORKER_NICENESS).min(19), "gilscope at {ours}");
    }
}
