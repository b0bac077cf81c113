//! The operating system's view of an experiment, read with sysinfo on a
//! thread of its own: per-core load, and for each watched process its CPU
//! use, resident memory and threads. Whole samples go out over a channel, so
//! the app never waits on /proc.
//!
//! Only the pids the app asks for are read, and never more often than
//! sysinfo's `MINIMUM_CPU_UPDATE_INTERVAL`: a CPU reading is a difference
//! between two refreshes, and closer refreshes would only measure noise.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use sysinfo::{MINIMUM_CPU_UPDATE_INTERVAL, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::clock::now_ns;
use crate::experiment::load::LoadMeter;
use crate::experiment::memory::Memory;

/// How often a run is sampled: often enough that the bars move with the run,
/// rarely enough that the sampling costs nothing worth measuring.
pub const RUN_INTERVAL: Duration = Duration::from_millis(500);
/// With nothing to watch only the core bars need refreshing.
pub const IDLE_INTERVAL: Duration = Duration::from_secs(1);

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
        // Without sysinfo there is nothing to show; the app says "no reading".
        let Ok(mut system) = System::new() else { return };
        sample_forever(&mut system, &watch, &samples);
    })?;
    Ok(())
}

fn sample_forever(system: &mut System, watch: &Receiver<Vec<u32>>, samples: &Sender<Sample>) {
    let mut pids: Vec<Pid> = Vec::new();
    let mut seen: HashMap<u32, CpuReading> = HashMap::new();
    let mut load: Option<LoadMeter> = None;
    let mut next = Instant::now();
    let mut last = Instant::now();
    loop {
        match watch.recv_deadline(next) {
            Ok(asked) => {
                let asked: Vec<Pid> = asked.into_iter().map(Pid::from_u32).collect();
                // A new process is read as soon as sysinfo allows: a real
                // CPython worker process may live less than one interval.
                if asked.iter().any(|pid| !pids.contains(pid)) {
                    next = next.min(last + MINIMUM_CPU_UPDATE_INTERVAL);
                }
                pids = asked;
                seen.retain(|pid, _| pids.contains(&Pid::from_u32(*pid)));
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let mut sample = read(system, &pids, &mut seen);
        sample.outside_cores = load.map(|m| m.outside_cores() as f32);
        load = LoadMeter::start();
        if samples.send(sample).is_err() {
            return;
        }
        last = Instant::now();
        let interval = if pids.is_empty() { IDLE_INTERVAL } else { RUN_INTERVAL };
        next = last + interval.max(MINIMUM_CPU_UPDATE_INTERVAL);
    }
}

/// A process's CPU time (ms) when it was last read.
#[derive(Clone, Copy, Debug)]
struct CpuReading {
    cpu_ms: u64,
    at: Instant,
}

fn read(system: &mut System, pids: &[Pid], seen: &mut HashMap<u32, CpuReading>) -> Sample {
    system.refresh_cpu_usage();
    let cores = system.cpus().iter().map(sysinfo::Cpu::usage).collect();
    let mut processes = Vec::new();
    if !pids.is_empty() {
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(pids),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory().with_tasks(),
        );
        for pid in pids {
            let Some(process) = system.process(*pid) else { continue };
            let tasks = process.tasks();
            // On Linux the task list leaves the main thread out.
            let threads = tasks.map_or(1, |t| t.len() as u32 + 1);
            let worker_threads = std::iter::once(pid)
                .chain(tasks.into_iter().flatten())
                .filter(|tid| is_worker_thread(*pid, **tid))
                .count() as u32;
            // The rate comes from our own two readings of the CPU time, not
            // from `cpu_usage()`: sysinfo takes a process whose first reading
            // was zero (one just started) for unread, and would say 0 % twice.
            let now = CpuReading { cpu_ms: process.accumulated_cpu_time(), at: Instant::now() };
            let before = seen.insert(pid.as_u32(), now);
            let cpu_cores = before.map(|b| {
                let wall_ms = now.at.duration_since(b.at).as_secs_f32() * 1e3;
                now.cpu_ms.saturating_sub(b.cpu_ms) as f32 / wall_ms.max(1.0)
            });
            processes.push(ProcessSample {
                pid: pid.as_u32(),
                cpu_cores,
                rss_bytes: process.memory(),
                threads,
                worker_threads,
                memory: Memory::of(pid.as_u32()),
            });
        }
    }
    Sample { at: now_ns(), cores, processes, outside_cores: None }
}

/// Whether thread `tid` of `pid` is named `worker-N`. Read from /proc each
/// time: sysinfo reads a task's name once and keeps it, and a thread names
/// itself only just after it starts.
fn is_worker_thread(pid: Pid, tid: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
        .is_ok_and(|name| name.starts_with(WORKER_THREAD_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let pids = [Pid::from_u32(me)];
        let mut seen = HashMap::new();
        let first = read(&mut system, &pids, &mut seen);
        std::thread::sleep(MINIMUM_CPU_UPDATE_INTERVAL * 2);
        let second = read(&mut system, &pids, &mut seen);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = spin.join();

        assert!(!first.cores.is_empty(), "no cores read");
        let before = first.process(me).expect("our own process in the first sample");
        assert_eq!(before.cpu_cores, None, "a first sighting has no rate yet");
        let after = second.process(me).expect("our own process in the second sample");
        assert!(after.threads >= 2, "{after:?}");
        assert!(after.worker_threads >= 1, "the worker-0 thread is counted: {after:?}");
        assert!(after.rss_bytes > 0);
        assert!(after.cpu_cores.unwrap_or(0.0) > 0.3, "a spinning thread uses CPU: {after:?}");
    }
}
