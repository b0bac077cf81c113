//! The operating system's view of an experiment, read on a thread of its
//! own: per-core load (with sysinfo), and for each watched process its CPU
//! use, resident memory and threads (from its /proc files directly). Whole
//! samples go out over a channel, so the app never waits on /proc.
//!
//! Only the pids the app asks for are read, and never more often than
//! sysinfo's `MINIMUM_CPU_UPDATE_INTERVAL`: a CPU reading is a difference
//! between two refreshes, and closer refreshes would only measure noise.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use sysinfo::{MINIMUM_CPU_UPDATE_INTERVAL, Pid, System};

use crate::clock::now_ns;
use crate::experiment::load::LoadMeter;
use crate::experiment::memory::Memory;
use crate::procfs;

/// How often a run is sampled: often enough that the bars move with the run,
/// rarely enough that the sampling costs nothing worth measuring.
pub const RUN_INTERVAL: Duration = Duration::from_millis(500);
/// With nothing to watch only the core bars need refreshing.
pub const IDLE_INTERVAL: Duration = Duration::from_secs(1);

/// Resident/proportional/unique memory (`smaps_rollup`) walks a process's
/// page tables: the costliest reading by far (256 processes: most of the
/// monitor's CPU). Each sample reads it for this many processes, in turn,
/// and keeps the others' last reading.
pub const MEMORY_READS_PER_SAMPLE: usize = 16;

/// How often a process's memory is read again. A worker's memory moves
/// slowly, and reading it walks its page tables: at every sample, half of
/// the monitor's CPU. A process is read when first seen whatever its turn.
pub const MEMORY_EVERY: Duration = Duration::from_secs(2);

/// How often it is read again while its resident size (which `stat` gives
/// for nothing) stays within [`STEADY_RSS`] of the last reading's: a
/// CPU-bound worker's memory stands still, and the page walk was still
/// two fifths of the monitor's CPU at one reading every 2 s.
pub const MEMORY_EVERY_WHILE_STEADY: Duration = Duration::from_secs(10);

/// A resident size within this share (or 64 KiB) of the last reading's.
const STEADY_RSS: f64 = 0.01;

/// Whether a memory reading taken `age` ago, when the resident size was
/// `then_kb`, still stands now that it is `now_kb`.
fn memory_stands(age: Duration, then_kb: u64, now_kb: u64) -> bool {
    let steady = then_kb.abs_diff(now_kb) as f64 <= (then_kb as f64 * STEADY_RSS).max(64.0);
    age < MEMORY_EVERY || (steady && age < MEMORY_EVERY_WHILE_STEADY)
}

/// How much lower than the main thread's the monitor's scheduling priority
/// is: on a machine short of cores, a key's answer comes before a sample.
const MONITOR_NICENESS: libc::c_int = 5;

/// Worker threads are named `worker-N` (by the simulated interpreter, and by
/// the `CPython` worker through prctl), so the OS can tell them apart from a
/// process's helper threads.
pub const WORKER_THREAD_PREFIX: &str = "worker-";

/// One process as the OS sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessSample {
    pub pid: u32,
    /// CPU use in cores (1.0 = one core busy). None on the first sighting:
    /// sysinfo needs two readings to tell a rate.
    pub cpu_cores: Option<f32>,
    pub rss_bytes: u64,
    /// Every OS thread of the process, the main thread included.
    pub threads: u32,
    /// Those of them named `worker-N`, the main thread included (a `CPython`
    /// multiprocessing child runs its worker there).
    pub worker_threads: u32,
    /// Resident, proportional and unique memory (`smaps_rollup`).
    pub memory: Option<Memory>,
}

/// Everything read in one refresh.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Sample {
    /// When it was taken (`clock::now_ns`).
    pub at: u64,
    /// Load of every logical core, 0–100 %.
    pub cores: Vec<f32>,
    /// The watched processes that are still alive.
    pub processes: Vec<ProcessSample>,
    /// Cores' worth of CPU that processes outside gilscope's own tree used
    /// since the previous sample (None for the first, or without /proc).
    pub outside_cores: Option<f32>,
}

impl Sample {
    pub fn process(&self, pid: u32) -> Option<&ProcessSample> {
        self.processes.iter().find(|p| p.pid == pid)
    }
}

/// Starts the sampling thread. Send it the pids to watch whenever they
/// change; it stops when either channel closes.
pub fn spawn(watch: Receiver<Vec<u32>>, samples: Sender<Sample>) -> std::io::Result<()> {
    std::thread::Builder::new().name("monitor".into()).spawn(move || {
        // SAFETY: lowers this thread's own priority (a tid is a valid `who`).
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, MONITOR_NICENESS);
        }
        // Without sysinfo there is nothing to show; the app says "no reading".
        let Ok(mut system) = System::new() else { return };
        sample_forever(&mut system, &watch, &samples);
    })?;
    Ok(())
}

fn sample_forever(system: &mut System, watch: &Receiver<Vec<u32>>, samples: &Sender<Sample>) {
    let mut watched = Watched::default();
    let mut load: Option<LoadMeter> = None;
    let mut next = Instant::now();
    let mut last = Instant::now();
    loop {
        match watch.recv_deadline(next) {
            Ok(asked) => {
                // A new process is read as soon as sysinfo allows: a real
                // CPython worker process may live less than one interval.
                if watched.ask(asked) {
                    next = next.min(last + MINIMUM_CPU_UPDATE_INTERVAL);
                }
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let mut sample = read(system, &mut watched);
        if let Some(meter) = &mut load {
            sample.outside_cores = meter.lap().map(|cores| cores as f32);
        } else {
            load = LoadMeter::start();
        }
        watched.saw(&sample);
        if samples.send(sample).is_err() {
            return;
        }
        last = Instant::now();
        let interval = if watched.pids.is_empty() { IDLE_INTERVAL } else { RUN_INTERVAL };
        next = last + interval.max(MINIMUM_CPU_UPDATE_INTERVAL);
    }
}

/// The processes being watched, and what is remembered of them.
#[derive(Debug, Default)]
struct Watched {
    pids: Vec<Pid>,
    /// Asked for, but found gone: never read again while they are asked for.
    gone: Vec<u32>,
    seen: HashMap<u32, CpuReading>,
    named: Named,
    /// Each process's latest memory reading, when it was taken and the
    /// resident size `stat` gave then, in KiB (later ones are compared with
    /// it: `smaps_rollup`'s own count differs); and where the next turn starts.
    memory: HashMap<u32, (Memory, Instant, u64)>,
    memory_turn: usize,
}

impl Watched {
    /// Watches `asked` from now on; true if a process is new.
    fn ask(&mut self, asked: Vec<u32>) -> bool {
        self.gone.retain(|pid| asked.contains(pid));
        let asked: Vec<Pid> =
            asked.into_iter().filter(|pid| !self.gone.contains(pid)).map(Pid::from_u32).collect();
        let new = asked.iter().any(|pid| !self.pids.contains(pid));
        self.pids = asked;
        self.forget_others();
        new
    }

    /// A process missing from a sample has ended: its /proc entries are
    /// left alone from now on, and whatever was kept of it is dropped.
    fn saw(&mut self, sample: &Sample) {
        let (alive, gone): (Vec<Pid>, Vec<Pid>) =
            self.pids.iter().partition(|pid| sample.process(pid.as_u32()).is_some());
        self.gone.extend(gone.iter().map(|pid| pid.as_u32()));
        self.pids = alive;
        self.forget_others();
    }

    fn forget_others(&mut self) {
        let pids = &self.pids;
        self.seen.retain(|pid, _| pids.contains(&Pid::from_u32(*pid)));
        self.memory.retain(|pid, _| pids.contains(&Pid::from_u32(*pid)));
        self.named.workers.retain(|(pid, _)| pids.contains(&Pid::from_u32(*pid)));
        self.named.listed.retain(|pid, _| pids.contains(&Pid::from_u32(*pid)));
    }

    /// Whether this sample reads the memory of the process at `index` among
    /// `count`: every one while they are few, else [`MEMORY_READS_PER_SAMPLE`]
    /// of them in turn.
    fn memory_turn(&self, index: usize, count: usize) -> bool {
        count <= MEMORY_READS_PER_SAMPLE
            || (index + count - self.memory_turn % count) % count < MEMORY_READS_PER_SAMPLE
    }
}

/// A process's CPU time (ms) when it was last read.
#[derive(Clone, Copy, Debug)]
struct CpuReading {
    cpu_ms: u64,
    at: Instant,
}

/// Threads already seen named `worker-N`, by (pid, tid): a worker thread
/// names itself once, so its name is not read again. A process's task list
/// is read again only while its thread count moves, and at least every
/// [`RELIST_AFTER`] (one thread may end as another starts).
#[derive(Debug, Default)]
struct Named {
    workers: std::collections::HashSet<(u32, u32)>,
    listed: HashMap<u32, Listing>,
}

/// A process's task list as last read.
#[derive(Clone, Copy, Debug)]
struct Listing {
    threads: u32,
    workers: u32,
    /// Two readings in a row found the same: the list is not read again
    /// until the count moves or this reading is [`RELIST_AFTER`] old.
    settled: bool,
    at: Instant,
}

/// How long a settled task list is trusted.
const RELIST_AFTER: Duration = Duration::from_secs(2);

fn read(system: &mut System, watched: &mut Watched) -> Sample {
    let pids = watched.pids.clone();
    let count = pids.len();
    system.refresh_cpu_usage();
    let cores = system.cpus().iter().map(sysinfo::Cpu::usage).collect();
    let mut processes = Vec::new();
    for (index, pid) in pids.iter().enumerate() {
        let pid = pid.as_u32();
        // Read directly rather than through sysinfo, whose refresh of a process
        // and its tasks opened 36 files a sample for the default demo's 3
        // processes (a fifth of the live view's CPU).
        // An exited process (not yet reaped) shows no memory and one thread:
        // it is gone, and its last reading stands.
        let Some(stat) = procfs::Stat::of(pid).filter(|s| !s.exited) else { continue };
        let worker_threads = watched.named.workers(pid, stat.threads);
        // The rate comes from our own two readings of the CPU time.
        let now =
            CpuReading { cpu_ms: stat.cpu_ticks * 1000 / procfs::ticks_per_second(), at: Instant::now() };
        let before = watched.seen.insert(pid, now);
        let cpu_cores = before.map(|b| {
            let wall_ms = now.at.duration_since(b.at).as_secs_f32() * 1e3;
            now.cpu_ms.saturating_sub(b.cpu_ms) as f32 / wall_ms.max(1.0)
        });
        let rss_bytes = stat.rss_pages * procfs::page_size();
        processes.push(ProcessSample {
            pid,
            cpu_cores,
            rss_bytes,
            threads: stat.threads,
            worker_threads,
            memory: match watched.memory.get(&pid) {
                Some(&(last, at, rss_kb_then))
                    if !watched.memory_turn(index, count)
                        || memory_stands(at.elapsed(), rss_kb_then, rss_bytes / 1024) =>
                {
                    Some(last)
                }
                _ => {
                    let read = Memory::of(pid);
                    if let Some(m) = read {
                        watched.memory.insert(pid, (m, Instant::now(), rss_bytes / 1024));
                    }
                    read
                }
            },
        });
    }
    if count > 0 {
        watched.memory_turn = (watched.memory_turn + MEMORY_READS_PER_SAMPLE) % count;
    }
    Sample { at: now_ns(), cores, processes, outside_cores: None }
}

impl Named {
    /// How many of the `threads` threads of `pid` are named `worker-N`.
    /// A worker names itself just after it starts, so a list read while
    /// threads come and go is read again at the next sample.
    fn workers(&mut self, pid: u32, threads: u32) -> u32 {
        let last = self.listed.get(&pid).copied();
        if let Some(l) = last
            && l.threads == threads
            && l.settled
            && l.at.elapsed() < RELIST_AFTER
        {
            return l.workers;
        }
        let Ok(tids) = procfs::task_ids(pid) else { return 0 };
        let workers = tids.into_iter().filter(|&tid| self.is_worker(pid, tid)).count() as u32;
        let settled = last.is_some_and(|l| l.threads == threads && l.workers == workers);
        self.listed.insert(pid, Listing { threads, workers, settled, at: Instant::now() });
        workers
    }

    /// Whether thread `tid` of `pid` is named `worker-N`. Read from /proc
    /// until it is (a thread names itself only just after it starts), in one
    /// read of at most 64 bytes: with `fs::read_to_string` (open, statx, two
    /// reads) on every thread of every sample, the kernel spent seconds of
    /// gilscope's CPU in `d_walk` when those processes were reaped (64
    /// workers: 4.6 s).
    fn is_worker(&mut self, pid: u32, tid: u32) -> bool {
        let key = (pid, tid);
        if self.workers.contains(&key) {
            return true;
        }
        let mut name = [0u8; 64];
        let read = std::fs::File::open(format!("/proc/{pid}/task/{tid}/comm"))
            .and_then(|mut f| std::io::Read::read(&mut f, &mut name));
        let worker = read.is_ok_and(|n| name[..n].starts_with(WORKER_THREAD_PREFIX.as_bytes()));
        if worker {
            self.workers.insert(key);
        }
        worker
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_ended_is_no_longer_read_even_when_asked_again() {
        let mut child = std::process::Command::new("true").spawn().expect("start true");
        let dead = child.id();
        child.wait().expect("reap it");
        let me = std::process::id();
        let Ok(mut system) = System::new() else { panic!("sysinfo cannot read this system") };
        let mut watched = Watched::default();
        assert!(watched.ask(vec![me, dead]));
        let sample = read(&mut system, &mut watched);
        watched.saw(&sample);
        assert_eq!(watched.pids, [Pid::from_u32(me)], "the ended process is dropped");
        assert!(!watched.ask(vec![me, dead]), "nothing new to read");
        assert_eq!(watched.pids, [Pid::from_u32(me)], "and not read again when asked again");
        assert!(watched.seen.keys().all(|pid| *pid == me));
    }

    #[test]
    fn a_process_that_exited_but_is_not_reaped_yet_reports_nothing() {
        let mut child = std::process::Command::new("true").spawn().expect("start true");
        let zombie = child.id();
        // Exited, not reaped: /proc still has it, with no memory and one thread.
        let start = std::time::Instant::now();
        while procfs::Stat::of(zombie).is_some_and(|s| !s.exited) {
            assert!(start.elapsed() < Duration::from_secs(5), "true did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
        let Ok(mut system) = System::new() else { panic!("sysinfo cannot read this system") };
        let mut watched = Watched::default();
        assert!(watched.ask(vec![zombie]));
        let sample = read(&mut system, &mut watched);
        assert!(sample.process(zombie).is_none(), "{sample:?}");
        child.wait().expect("reap it");
    }

    #[test]
    fn memory_is_read_again_after_2_s_if_the_resident_size_moved_else_after_10_s() {
        let s = Duration::from_secs;
        assert!(memory_stands(s(1), 10_000, 50_000), "younger than 2 s: stands whatever moved");
        assert!(!memory_stands(s(3), 10_000, 10_200), "2 % more resident after 3 s: read again");
        assert!(!memory_stands(s(3), 10_000, 9_800), "2 % less: read again");
        assert!(memory_stands(s(9), 10_000, 10_050), "within 1 %: stands for 10 s");
        assert!(memory_stands(s(9), 1_000, 1_060), "within 64 KiB of a small process: stands");
        assert!(!memory_stands(s(11), 10_000, 10_000), "10 s old: read again even unmoved");
    }

    #[test]
    fn memory_is_read_for_every_process_in_turn_sixteen_a_sample() {
        let watched = Watched::default();
        assert!((0..10).all(|i| watched.memory_turn(i, 10)), "few processes: all of them each time");
        let mut read = vec![0; 40];
        let mut watched = Watched::default();
        for _ in 0..5 {
            let turn: Vec<usize> = (0..40).filter(|&i| watched.memory_turn(i, 40)).collect();
            assert_eq!(turn.len(), MEMORY_READS_PER_SAMPLE, "{turn:?}");
            for i in turn {
                read[i] += 1;
            }
            watched.memory_turn = (watched.memory_turn + MEMORY_READS_PER_SAMPLE) % 40;
        }
        // 5 samples × 16 = 80 readings over 40 processes: each read twice.
        assert!(read.iter().all(|&n| n == 2), "{read:?}");
    }

    #[test]
    fn a_busy_thread_of_our_own_shows_up_in_a_sample() {
        let me = std::process::id();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spin = {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::Builder::new()
                .name(format!("{WORKER_THREAD_PREFIX}0"))
                .spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                })
                .expect("spawn a test thread")
        };
        let Ok(mut system) = System::new() else { panic!("sysinfo cannot read this system") };
        let mut watched = Watched::default();
        watched.ask(vec![me]);
        let first = read(&mut system, &mut watched);
        std::thread::sleep(MINIMUM_CPU_UPDATE_INTERVAL * 2);
        let second = read(&mut system, &mut watched);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = spin.join();

        assert!(!first.cores.is_empty(), "no cores read");
        let before = first.process(me).expect("our own process in the first sample");
        assert_eq!(before.cpu_cores, None, "a first sighting has no rate yet");
        let after = second.process(me).expect("our own process in the second sample");
        assert!(after.threads >= 2, "{after:?}");
        assert!(after.worker_threads >= 1, "the worker-0 thread is counted: {after:?}");
        assert!(after.rss_bytes > 0);
        assert!(after.cpu_cores.unwrap_or(0.0) > 0.1, "a spinning thread uses CPU: {after:?}");
    }
}
