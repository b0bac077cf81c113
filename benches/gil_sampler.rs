//! What the GIL sampler costs and what it catches, on a real `CPython`:
//!
//! - a 2-thread and an 8-thread CPU-bound process, each sampled for a few
//!   seconds at the default 10,000 samples a second: samples/s, the
//!   sampler thread's own CPU as a share of one core, torn and missed
//!   rates, and hand-overs seen beside the interpreter's `switch_number`;
//! - what that CPU is made of: one read of the GIL (back to back, no
//!   sleeping), and a bare 10 kHz absolute-deadline sleep loop that reads
//!   nothing (the wake-up floor of any sampler on this machine);
//! - the exact events instead: uprobes on `take_gil/drop_gil` drained every
//!   10 ms, their drainer's CPU and events per second;
//! - what watching costs the interpreter: the wall time of a fixed 2-thread
//!   job alone, under the sampler, and under the uprobes.
//!
//! Rounds alternate between the processes (and the three ways of running
//! the job); figures are medians of rounds.
//!
//! `cargo bench --bench gil_sampler [-- --python PATH --rounds N --seconds S --period-us P]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a bench stops where it fails
#![allow(clippy::cast_possible_wrap, clippy::similar_names)] // clock values for libc; short names side by side

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gilscope::clock::{now_ns, thread_cpu_ns};
use gilscope::gil_sampler::uprobes::GilProbes;
use gilscope::gil_sampler::{GilReader, PythonProcess, Sample, Sampler, SamplerConfig};

struct Options {
    python: PathBuf,
    rounds: usize,
    seconds: f64,
    period: Duration,
}

fn options() -> Options {
    let mut o = Options {
        python: default_python(),
        rounds: 5,
        seconds: 3.0,
        period: SamplerConfig::default().period,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        match arg.as_str() {
            "--python" => o.python = PathBuf::from(value()),
            "--rounds" => o.rounds = value().parse().unwrap_or(o.rounds),
            "--seconds" => o.seconds = value().parse().unwrap_or(o.seconds),
            "--period-us" => o.period = Duration::from_micros(value().parse().unwrap_or(100)),
            _ => {} // cargo bench passes --bench
        }
    }
    o
}

/// pyenv's 3.11 (the project's python3), else whatever `python3` is.
fn default_python() -> PathBuf {
    let root = Command::new("pyenv").arg("root").output().ok().filter(|o| o.status.success()).map_or_else(
        || PathBuf::from("/root/.pyenv"),
        |o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
    );
    let pyenv = std::fs::read_dir(root.join("versions")).ok().and_then(|dir| {
        dir.filter_map(Result::ok).map(|e| e.path().join("bin/python3.11")).find(|p| p.exists())
    });
    pyenv.unwrap_or_else(|| PathBuf::from("python3"))
}

/// A CPU-bound process of `threads` threads at a 5 ms switch interval.
struct Workload {
    child: Child,
}

impl Workload {
    fn start(python: &PathBuf, threads: usize) -> Workload {
        let code = format!(
            "import math, sys, threading\n\
             sys.setswitchinterval(0.005)\n\
             def work():\n    \
                 print(threading.get_native_id(), flush=True)\n    \
                 for i in range(2_000_000_000):\n        math.sqrt(i)\n\
             threads = [threading.Thread(target=work) for _ in range({threads})]\n\
             for t in threads:\n    t.start()\n\
             for t in threads:\n    t.join()\n"
        );
        let mut child = Command::new(python)
            .args(["-I", "-c", &code])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        for _ in 0..threads {
            let mut line = String::new();
            out.read_line(&mut line).expect("a thread id");
        }
        Workload { child }
    }

    fn reader(&self) -> GilReader {
        GilReader::attach(self.child.id()).unwrap_or_else(|f| panic!("cannot read the GIL: {f}"))
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One round's figures.
#[derive(Clone, Copy, Default)]
struct Round {
    rate: f64,
    cpu_pct: f64,
    torn_pct: f64,
    missed_pct: f64,
    seen: f64,
    counted: f64,
}

fn hand_overs(samples: &[Sample]) -> usize {
    let mut last = None;
    let mut changes = 0;
    for s in samples.iter().filter(|s| s.gil.locked) {
        if let Some(tid) = s.gil.holder_tid {
            changes += usize::from(last.is_some_and(|l| l != tid));
            last = Some(tid);
        }
    }
    changes
}

fn sample_round(workload: &Workload, o: &Options) -> Round {
    let config = SamplerConfig { period: o.period, ..SamplerConfig::default() };
    let (sampler, batches) = Sampler::start(workload.reader(), config).expect("starting the sampler");
    // Drain as a consumer would, so nothing is dropped.
    let mut samples = Vec::new();
    let until = now_ns() + (o.seconds * 1e9) as u64;
    while now_ns() < until {
        if let Ok(batch) = batches.recv_timeout(Duration::from_millis(50)) {
            samples.extend(batch);
        }
    }
    let stats = sampler.stop();
    samples.extend(batches.try_iter().flatten());
    let deadlines = (stats.taken + stats.missed).max(1) as f64;
    let counted = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => (b.gil.switch_number - a.gil.switch_number) as f64,
        _ => 0.0,
    };
    Round {
        rate: stats.rate(),
        cpu_pct: 100.0 * stats.cpu_share(),
        torn_pct: 100.0 * stats.torn as f64 / deadlines,
        missed_pct: 100.0 * stats.missed as f64 / deadlines,
        seen: hand_overs(&samples) as f64,
        counted,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// CPU per read, µs, reading back to back for `n` reads.
fn read_cost_us(workload: &Workload, n: u32) -> f64 {
    let mut reader = workload.reader();
    let cpu = thread_cpu_ns();
    for _ in 0..n {
        let _ = std::hint::black_box(reader.read());
    }
    (thread_cpu_ns() - cpu) as f64 / f64::from(n) / 1e3
}

/// CPU share of one core of a loop that only sleeps to absolute deadlines
/// `period` apart (what every wake-up costs here, before any reading).
fn bare_wake_pct(period: Duration, seconds: f64) -> f64 {
    let period = period.as_nanos() as u64;
    let start = now_ns();
    let cpu = thread_cpu_ns();
    let n = (seconds * 1e9) as u64 / period;
    for k in 1..=n {
        let deadline = start + k * period;
        let ts = libc::timespec {
            tv_sec: (deadline / 1_000_000_000) as libc::time_t,
            tv_nsec: (deadline % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: a valid timespec; no remainder with TIMER_ABSTIME.
        unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &raw const ts,
                std::ptr::null_mut(),
            )
        };
    }
    100.0 * (thread_cpu_ns() - cpu) as f64 / (now_ns() - start) as f64
}

/// CPU share of one core of a thread draining `probes` every 10 ms for
/// `seconds`, and the events it drained per second.
fn uprobe_round(workload: &Workload, seconds: f64) -> Option<(f64, f64)> {
    let process = PythonProcess::attach(workload.child.id()).ok()?;
    let mut probes = match GilProbes::attach(&process) {
        Ok(p) => p,
        Err(f) => {
            println!("uprobes: {f}");
            return None;
        }
    };
    let start = now_ns();
    let cpu = thread_cpu_ns();
    let mut events = 0usize;
    while now_ns() - start < (seconds * 1e9) as u64 {
        std::thread::sleep(Duration::from_millis(10));
        events += probes.drain().len();
    }
    let wall = (now_ns() - start) as f64;
    Some((100.0 * (thread_cpu_ns() - cpu) as f64 / wall, events as f64 / (wall / 1e9)))
}

/// How a job is watched.
#[derive(Clone, Copy, Debug)]
enum Watch {
    Nothing,
    Sampler,
    Uprobes,
}

/// Seconds a 2-thread job of `iterations` each takes (timed inside
/// python, from the threads' start to their end) while watched as `watch`.
fn job_seconds(python: &PathBuf, iterations: u64, watch: Watch) -> f64 {
    let code = format!(
        "import math, sys, threading, time\n\
         sys.setswitchinterval(0.005)\n\
         def work():\n    \
             for i in range({iterations}):\n        math.sqrt(i)\n\
         print('ready', flush=True)\n\
         sys.stdin.readline()\n\
         t = time.monotonic_ns()\n\
         threads = [threading.Thread(target=work) for _ in range(2)]\n\
         for th in threads:\n    th.start()\n\
         for th in threads:\n    th.join()\n\
         print(time.monotonic_ns() - t, flush=True)\n"
    );
    let mut child = Command::new(python)
        .args(["-I", "-c", &code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("ready");
    let pid = child.id();
    // Whatever watches lives until the job has printed its time.
    let _sampler = matches!(watch, Watch::Sampler).then(|| {
        let reader = GilReader::attach(pid).unwrap_or_else(|f| panic!("{f}"));
        Sampler::start(reader, SamplerConfig::default()).expect("sampler")
    });
    let _probes = matches!(watch, Watch::Uprobes).then(|| {
        let process = PythonProcess::attach(pid).unwrap_or_else(|f| panic!("{f}"));
        GilProbes::attach(&process).ok()
    });
    if let Some(stdin) = child.stdin.as_mut() {
        use std::io::Write;
        let _ = stdin.write_all(b"go\n");
        let _ = stdin.flush();
    }
    line.clear();
    out.read_line(&mut line).expect("the job's time");
    let _ = child.wait();
    line.trim().parse::<f64>().unwrap_or(f64::NAN) / 1e9
}

fn main() {
    let o = options();
    println!(
        "GIL sampler: {} · period {} µs · {} rounds of {} s per process, medians",
        o.python.display(),
        o.period.as_micros(),
        o.rounds,
        o.seconds
    );
    let workloads = [(2, Workload::start(&o.python, 2)), (8, Workload::start(&o.python, 8))];
    println!("CPython {}", workloads[0].1.reader().version());

    let mut rounds: Vec<Vec<Round>> = vec![Vec::new(); workloads.len()];
    for _ in 0..o.rounds {
        for (i, (_, w)) in workloads.iter().enumerate() {
            rounds[i].push(sample_round(w, &o));
        }
    }
    println!();
    println!(
        "{:>8} {:>10} {:>11} {:>7} {:>8} {:>22}",
        "threads", "samples/s", "CPU % core", "torn %", "missed %", "hand-overs seen/count"
    );
    for ((threads, _), rounds) in workloads.iter().zip(&rounds) {
        let m = |f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
        println!(
            "{threads:>8} {:>10.0} {:>11.2} {:>7.3} {:>8.2} {:>14.0} / {:<7.0}",
            m(|r| r.rate),
            m(|r| r.cpu_pct),
            m(|r| r.torn_pct),
            m(|r| r.missed_pct),
            m(|r| r.seen),
            m(|r| r.counted),
        );
        for r in rounds {
            println!(
                "{:>8} {:>10.0} {:>11.2} {:>7.3} {:>8.2} {:>14.0} / {:<7.0}",
                "round", r.rate, r.cpu_pct, r.torn_pct, r.missed_pct, r.seen, r.counted
            );
        }
    }

    let reads: Vec<f64> = (0..o.rounds).map(|_| read_cost_us(&workloads[0].1, 50_000)).collect();
    let wakes: Vec<f64> = (0..o.rounds).map(|_| bare_wake_pct(o.period, 1.0)).collect();
    let per_second = 1e9 / o.period.as_nanos() as f64;
    println!();
    println!(
        "one read (3 pieces, one process_vm_readv): {:.2} µs CPU → {:.2} % of a core at {per_second:.0}/s",
        median(reads.clone()),
        median(reads) * per_second / 1e4
    );
    println!(
        "a bare sleep loop, same deadlines, no reads: {:.2} % of a core (the wake-up floor)",
        median(wakes)
    );

    let uprobes: Vec<(f64, f64)> =
        (0..o.rounds).filter_map(|_| uprobe_round(&workloads[0].1, o.seconds)).collect();
    if !uprobes.is_empty() {
        println!(
            "uprobes instead (2 threads, drained every 10 ms): drainer {:.3} % of a core, {:.0} events/s",
            median(uprobes.iter().map(|u| u.0).collect()),
            median(uprobes.iter().map(|u| u.1).collect())
        );
    }
    drop(workloads);

    // What watching costs the watched: the same job, interleaved.
    let iterations = 10_000_000;
    let modes = [Watch::Nothing, Watch::Sampler, Watch::Uprobes];
    let mut walls: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for _ in 0..o.rounds {
        for (i, mode) in modes.iter().enumerate() {
            walls[i].push(job_seconds(&o.python, iterations, *mode));
        }
    }
    let alone = median(walls[0].clone());
    println!("2 threads × {iterations} iterations, median wall: alone {alone:.3} s");
    for (mode, w) in modes.iter().zip(&walls).skip(1) {
        let m = median(w.clone());
        println!("  under the {mode:?}: {m:.3} s ({:.3}×)", m / alone);
    }
}
