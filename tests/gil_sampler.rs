//! The GIL sampler against real interpreters: pyenv's `CPython` 3.10 to 3.13
//! (built with debug info) and Debian's stripped `/usr/bin/python3.11`.
//!
//! What is shown: the sampler finds each one's GIL, sees it held by exactly
//! the threads that run Python, sees every hand-over the interpreter itself
//! counts, and measures the switch interval the program set; every offset
//! it uses agrees with the interpreters' DWARF debug info (read by gdb);
//! whatever it cannot read gets a [`Fallback`] with a reason, never a lane.
//! Uprobes on `take_gil`/`drop_gil` see the same hand-overs exactly, and
//! agree with the samples on who holds the GIL.
//!
//! An interpreter these tests need that is missing fails them loudly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails
#![allow(clippy::cast_possible_wrap, clippy::similar_names)] // addresses and ids for libc; short names side by side
#![allow(clippy::items_after_statements)] // a test's constants sit where they are used

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use gilscope::clock::now_ns;
use gilscope::gil_sampler::layout::{self, GilHome, Layout, debug_block_313};
use gilscope::gil_sampler::uprobes::{GilEvent, GilEventKind, GilProbes};
use gilscope::gil_sampler::{
    GilReader, GilSample, PythonProcess, Sample, Sampler, SamplerConfig, SamplerStats,
};

/// Tests run one at a time: on a 2-core machine two CPU-bound interpreters,
/// or gdb loading a libpython's DWARF, would stretch each other's hold
/// spans and starve the sampler.
static TIMING: Mutex<()> = Mutex::new(());

fn timing_lock() -> std::sync::MutexGuard<'static, ()> {
    TIMING.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn pyenv_root() -> PathBuf {
    let out = Command::new("pyenv").arg("root").output();
    match out {
        Ok(out) if out.status.success() => PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
        _ => PathBuf::from("/root/.pyenv"),
    }
}

/// pyenv's install of `3.minor`: its directory.
fn pyenv_version(minor: u32) -> PathBuf {
    let versions = pyenv_root().join("versions");
    let prefix = format!("3.{minor}.");
    let found = std::fs::read_dir(&versions).ok().and_then(|dir| {
        dir.filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&prefix)))
    });
    found.unwrap_or_else(|| {
        panic!("CPython 3.{minor} is missing under {}: these tests need it", versions.display())
    })
}

fn pyenv_python(minor: u32) -> PathBuf {
    let python = pyenv_version(minor).join("bin").join(format!("python3.{minor}"));
    assert!(python.exists(), "{} is missing: these tests need it", python.display());
    python
}

fn pyenv_libpython(minor: u32) -> PathBuf {
    pyenv_version(minor).join("lib").join(format!("libpython3.{minor}.so.1.0"))
}

const DEBIAN_PYTHON: &str = "/usr/bin/python3.11";

fn debian_python() -> PathBuf {
    let python = PathBuf::from(DEBIAN_PYTHON);
    assert!(python.exists(), "{DEBIAN_PYTHON} is missing: these tests need it");
    python
}

/// A python child, killed when dropped.
struct Python {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Python {
    /// Runs `code` in isolated mode (nothing imported from the cwd).
    fn start(python: &Path, code: &str) -> Python {
        let mut child = Command::new(python)
            .args(["-I", "-c", code])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Python { child, stdin, stdout }
    }

    fn send(&mut self, line: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{line}").and_then(|()| self.stdin.flush()).expect("writing to python");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).expect("reading python's stdout");
        assert!(n > 0, "python ended early");
        line.trim().to_owned()
    }

    fn tid(&mut self) -> u32 {
        let line = self.line();
        line.parse().unwrap_or_else(|_| panic!("expected a thread id, got {line:?}"))
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `threads` CPU-bound threads at switch interval `interval_s`; each prints
/// its OS thread id before its loop. Returns once all have printed.
fn cpu_bound(python: &Path, threads: usize, interval_s: f64) -> (Python, Vec<u32>) {
    let code = format!(
        "import math, sys, threading\n\
         sys.setswitchinterval({interval_s})\n\
         def work():\n    \
             print(threading.get_native_id(), flush=True)\n    \
             for i in range(500_000_000):\n        \
                 math.sqrt(i)\n\
         threads = [threading.Thread(target=work) for _ in range({threads})]\n\
         for t in threads:\n    t.start()\n\
         for t in threads:\n    t.join()\n"
    );
    let mut py = Python::start(python, &code);
    let tids = (0..threads).map(|_| py.tid()).collect();
    (py, tids)
}

/// Samples `reader` for `how_long` at the default 10 kHz.
fn sample(reader: GilReader, how_long: Duration) -> (Vec<Sample>, SamplerStats) {
    let (sampler, batches) = Sampler::start(reader, SamplerConfig::default()).expect("starting the sampler");
    std::thread::sleep(how_long);
    let stats = sampler.stop();
    let samples: Vec<Sample> = batches.try_iter().flatten().collect();
    assert_eq!(stats.undelivered, 0);
    assert_eq!(samples.len() as u64, stats.taken);
    (samples, stats)
}

/// The samples at which a holder is first seen after another one: the
/// hand-overs the sampler saw.
fn hand_overs(samples: &[Sample]) -> Vec<&Sample> {
    let mut last = None;
    let mut changes = Vec::new();
    for s in samples {
        if let (true, Some(tid)) = (s.gil.locked, s.gil.holder_tid) {
            if last.is_some_and(|l| l != tid) {
                changes.push(s);
            }
            last = Some(tid);
        }
    }
    changes
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Median time from one hand-over to the next: how long a holder holds.
fn median_hold_ns(samples: &[Sample]) -> u64 {
    let changes = hand_overs(samples);
    median(changes.windows(2).map(|w| w[1].t - w[0].t).collect())
}

/// Stretches the sampler took on time: consecutive samples at most
/// `max_gap_ns` apart.
fn on_time_runs(samples: &[Sample], max_gap_ns: u64) -> Vec<&[Sample]> {
    samples.chunk_by(|a, b| b.t - a.t <= max_gap_ns).collect()
}

/// Runs of a timing claim before it is said not to hold. The machine is
/// shared and noisy (other people's benchmarks stretch the interpreter's
/// own hand-overs, not only the sampler's), so one run of three must show
/// the claim; every run's figures are in the failure message.
const ATTEMPTS: usize = 3;

/// The core claim, for one interpreter: the GIL is found and seen held by
/// the two workers, every hand-over the interpreter counts is seen, and
/// holds last the switch interval.
fn two_workers_are_seen_taking_turns(python: &Path, interval_s: f64, tolerance: f64) {
    let _one_at_a_time = timing_lock();
    let mut runs = Vec::new();
    for _ in 0..ATTEMPTS {
        match one_run_of_two_workers(python, interval_s, tolerance) {
            Ok(()) => return,
            Err(why) => runs.push(why),
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    panic!("{}, load {}:\n{}", python.display(), load.trim(), runs.join("\n"));
}

/// One run: panics where what it saw is wrong, `Err` where the timing is
/// off (which a busy machine may cause).
fn one_run_of_two_workers(python: &Path, interval_s: f64, tolerance: f64) -> Result<(), String> {
    let (py, workers) = cpu_bound(python, 2, interval_s);
    let reader = GilReader::attach(py.pid()).unwrap_or_else(|f| panic!("{}: {f}", python.display()));
    assert_eq!(reader.switch_interval().unwrap(), Duration::from_secs_f64(interval_s));
    let window = Duration::from_secs_f64((interval_s * 300.0).max(1.0));
    let (samples, stats) = sample(reader, window);
    drop(py);

    let name = python.display();
    let locked = samples.iter().filter(|s| s.gil.locked).count();
    assert!(
        locked * 100 >= samples.len() * 95,
        "{name}: the GIL was held in only {locked} of {} samples",
        samples.len()
    );

    // Who held it: the two workers, the main thread at most briefly.
    let mut held: BTreeMap<u32, usize> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.gil.locked) {
        let tid =
            s.gil.holder_tid.unwrap_or_else(|| panic!("{name}: a held GIL with no holder thread at {}", s.t));
        *held.entry(tid).or_default() += 1;
    }
    let others: Vec<_> = held.keys().filter(|t| !workers.contains(t)).collect();
    assert!(others.len() <= 1, "{name}: holders {held:?}, workers {workers:?}");
    for other in others {
        assert!(
            held[other] * 100 <= samples.len(),
            "{name}: thread {other} held the GIL in {} samples",
            held[other]
        );
    }
    for w in &workers {
        assert!(held.get(w).is_some_and(|&n| n * 5 > locked), "{name}: worker {w} barely held it: {held:?}");
    }

    // switch_number counts the takes by a thread other than the GIL's last
    // holder: hand-overs, not takes (a thread retaking the GIL it dropped
    // does not count; see
    // `a_lone_thread_that_drops_and_retakes_the_gil_moves_no_switch_number`).
    // With only the two workers running Python each one is a change of
    // holder between two samples, and the sampler misses one only if a
    // holder keeps the GIL for less than the time between two samples. So
    // the comparison is made where the sampler kept its deadlines (samples
    // at most 300 µs apart, well under half a switch interval); where it was
    // starved of CPU it can miss hand-overs, and says so (`missed`).
    let runs = on_time_runs(&samples, 300_000);
    let seen: usize = runs.iter().map(|r| hand_overs(r).len()).sum();
    let counted: u64 = runs.iter().map(|r| r[r.len() - 1].gil.switch_number - r[0].gil.switch_number).sum();
    let covered: u64 = runs.iter().map(|r| r[r.len() - 1].t - r[0].t).sum();
    let all_seen = hand_overs(&samples).len();
    let all_counted = samples[samples.len() - 1].gil.switch_number - samples[0].gil.switch_number;
    let hold = median_hold_ns(&samples) as f64 / 1e9;
    let figures = format!(
        "{:.0} samples/s, {} missed, on time {:.0} % of the time; hand-overs seen {seen} / counted {counted} on time, \
         {all_seen} / {all_counted} in all; median hold {:.3} ms at {:.3} ms",
        stats.rate(),
        stats.missed,
        100.0 * covered as f64 / stats.elapsed_ns() as f64,
        hold * 1e3,
        interval_s * 1e3,
    );
    if covered * 2 < stats.elapsed_ns() || counted < 100 {
        return Err(format!("too little on time to judge: {figures}"));
    }
    // At 1 ms a hold spans only ten samples, and a sampler sharing two
    // cores with both workers misses some hand-overs (here 5–10 %): the
    // counts are held to agree at 5 ms, the hold's length at both.
    if interval_s >= 0.005 && (seen as f64 - counted as f64).abs() > 0.02 * counted as f64 {
        return Err(format!("hand-overs disagree: {figures}"));
    }
    if (hold - interval_s).abs() > tolerance * interval_s {
        return Err(format!("holds off the interval: {figures}"));
    }
    Ok(())
}

#[test]
fn cpython_3_10_is_seen_taking_turns_every_5_ms() {
    two_workers_are_seen_taking_turns(&pyenv_python(10), 0.005, 0.15);
}

#[test]
fn cpython_3_11_is_seen_taking_turns_every_5_ms() {
    two_workers_are_seen_taking_turns(&pyenv_python(11), 0.005, 0.15);
}

#[test]
fn cpython_3_12_is_seen_taking_turns_every_5_ms() {
    two_workers_are_seen_taking_turns(&pyenv_python(12), 0.005, 0.15);
}

#[test]
fn cpython_3_13_is_seen_taking_turns_every_5_ms() {
    two_workers_are_seen_taking_turns(&pyenv_python(13), 0.005, 0.15);
}

#[test]
fn debians_stripped_python_3_11_is_seen_taking_turns_every_5_ms() {
    two_workers_are_seen_taking_turns(&debian_python(), 0.005, 0.15);
}

#[test]
fn cpython_3_10_is_seen_taking_turns_every_1_ms() {
    two_workers_are_seen_taking_turns(&pyenv_python(10), 0.001, 0.25);
}

#[test]
fn cpython_3_11_is_seen_taking_turns_every_1_ms() {
    two_workers_are_seen_taking_turns(&pyenv_python(11), 0.001, 0.25);
}

#[test]
fn cpython_3_12_is_seen_taking_turns_every_1_ms() {
    two_workers_are_seen_taking_turns(&pyenv_python(12), 0.001, 0.25);
}

#[test]
fn cpython_3_13_is_seen_taking_turns_every_1_ms() {
    two_workers_are_seen_taking_turns(&pyenv_python(13), 0.001, 0.25);
}

#[test]
fn debians_stripped_python_3_11_is_seen_taking_turns_every_1_ms() {
    two_workers_are_seen_taking_turns(&debian_python(), 0.001, 0.25);
}

#[test]
fn a_read_slower_than_the_limit_is_dropped_as_unsure_never_stamped() {
    let _one_at_a_time = timing_lock();
    let (py, _) = cpu_bound(&pyenv_python(11), 2, 0.005);
    // Every copy takes longer than a nanosecond: none may become a sample.
    let config = SamplerConfig { unsure_after: Duration::from_nanos(1), ..SamplerConfig::default() };
    let (sampler, batches) = Sampler::start(GilReader::attach(py.pid()).unwrap(), config).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let stats = sampler.stop();
    assert_eq!(batches.try_iter().flatten().count(), 0);
    assert_eq!(stats.taken, 0);
    assert!(stats.unsure > 100, "{stats:?}");
    assert_eq!(stats.failed, 0, "{stats:?}");
}

#[test]
fn a_lone_thread_that_drops_and_retakes_the_gil_moves_no_switch_number() {
    let _one_at_a_time = timing_lock();
    // `time.sleep(0)` releases the GIL and takes it back; with no other
    // thread wanting it the taker is always its last holder, so
    // switch_number stands still while the lock is dropped thousands of
    // times: it counts hand-overs, not takes.
    let code = "import time\nprint('ready', flush=True)\nwhile True:\n    for i in range(1000):\n        pass\n    time.sleep(0)\n";
    let mut py = Python::start(&pyenv_python(11), code);
    assert_eq!(py.line(), "ready");
    let reader = GilReader::attach(py.pid()).unwrap();
    let (samples, _) = sample(reader, Duration::from_millis(500));
    let unlocked = samples.iter().filter(|s| !s.gil.locked).count();
    let held = samples.iter().filter(|s| s.gil.holder_tid == Some(py.pid())).count();
    assert!(unlocked > 50 && held > 50, "{unlocked} unlocked and {held} held samples");
    let first = samples[0].gil.switch_number;
    assert!(samples.iter().all(|s| s.gil.switch_number == first), "switch_number moved");
}

#[test]
fn holders_are_live_threads_even_while_threads_come_and_go() {
    let _one_at_a_time = timing_lock();
    // Short-lived threads, four at a time: thread states are freed and
    // their addresses handed to new ones. A stale answer of the tid cache
    // would name a finished thread while its successor holds the GIL, and
    // the successor never. Each thread's life is bracketed by the main
    // thread's clock just before it is started and its own clock after the
    // last call that may hand the GIL over (a grace of 10 ms either side,
    // for the samples' own timing). On its way out a thread still holds
    // the GIL while its state is torn down, and a busy machine may pause
    // it there for longer: a name after the grace is the thread's own only
    // if no other worker was named between its end and the name, since
    // nobody else can have held the GIL meanwhile.
    let code = "import _thread, math, sys, time\n\
        sys.setswitchinterval(0.001)\n\
        life = []\n\
        def work(done, start):\n    \
            for i in range(100_000):\n        math.sqrt(i)\n    \
            done.release()\n    \
            life.append((_thread.get_native_id(), start, time.monotonic_ns()))\n\
        print('ready', flush=True)\n\
        for _ in range(100):\n    \
            running = []\n    \
            for _ in range(4):\n        \
                done = _thread.allocate_lock()\n        \
                done.acquire()\n        \
                running.append(done)\n        \
                _thread.start_new_thread(work, (done, time.monotonic_ns()))\n    \
            for done in running:\n        done.acquire()\n\
        while len(life) < 400:\n    time.sleep(0.001)\n\
        for tid, start, end in life:\n    print(tid, start, end)\n\
        print('done', flush=True)\n";
    const GRACE: u64 = 10_000_000;
    for minor in [10, 13] {
        let mut py = Python::start(&pyenv_python(minor), code);
        assert_eq!(py.line(), "ready");
        let reader = GilReader::attach(py.pid()).unwrap();
        let (sampler, batches) = Sampler::start(reader, SamplerConfig::default()).unwrap();
        let mut lives: HashMap<u32, (u64, u64)> = HashMap::new();
        loop {
            let line = py.line();
            if line == "done" {
                break;
            }
            let f: Vec<u64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
            lives.insert(f[0] as u32, (f[1], f[2]));
        }
        let stats = sampler.stop();
        let samples: Vec<Sample> = batches.try_iter().flatten().collect();
        assert_eq!(lives.len(), 400, "3.{minor}: the OS reused thread ids");
        let worker = |s: &Sample| s.gil.holder_tid.filter(|&tid| tid != py.pid());
        let mut named: HashMap<u32, usize> = HashMap::new();
        for (i, s) in samples.iter().enumerate() {
            let Some(tid) = worker(s) else { continue };
            let &(start, end) =
                lives.get(&tid).unwrap_or_else(|| panic!("3.{minor}: {tid} was never a worker"));
            assert!(s.t + GRACE >= start, "3.{minor}: {tid} named at {} but started at {start}", s.t);
            let others_between = if s.t > end + GRACE {
                samples[..i].iter().rev().take_while(|o| o.t > end).filter_map(worker).find(|&o| o != tid)
            } else {
                None
            };
            assert!(
                others_between.is_none(),
                "3.{minor}: {tid} named at {} but it ran {start}..{end}, and {others_between:?} was named between",
                s.t
            );
            *named.entry(tid).or_default() += 1;
        }
        // Each ran for a millisecond or more of GIL time: at 10 kHz nearly
        // every one is seen, under its own name.
        assert!(
            named.len() * 10 >= lives.len() * 9,
            "3.{minor}: {} of {} threads named ({stats:?})",
            named.len(),
            lives.len()
        );
    }
}

#[test]
fn the_sampler_stops_by_itself_when_the_process_exits() {
    let _one_at_a_time = timing_lock();
    let code = "import time\nprint('ready', flush=True)\ntime.sleep(0.3)\n";
    let mut py = Python::start(&pyenv_python(12), code);
    assert_eq!(py.line(), "ready");
    let reader = GilReader::attach(py.pid()).unwrap();
    let (sampler, batches) = Sampler::start(reader, SamplerConfig::default()).unwrap();
    // The receiver disconnects once the sampler thread has ended.
    let mut got = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match batches.recv_deadline(deadline) {
            Ok(batch) => got += batch.len(),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => panic!("the sampler outlived its process"),
        }
    }
    assert!(got > 1000, "{got} samples");
    assert_eq!(sampler.ending(), Some(gilscope::gil_sampler::Ending::Exited));
}

#[test]
fn a_subinterpreter_is_listed_and_its_own_gil_can_be_read() {
    let _one_at_a_time = timing_lock();
    // 3.12 gave each isolated subinterpreter a GIL of its own.
    let code = "import _xxsubinterpreters as interpreters, time\n\
        sub = interpreters.create()\n\
        print(sub, flush=True)\n\
        time.sleep(60)\n";
    let mut py = Python::start(&pyenv_python(12), code);
    let sub: i64 = py.line().parse().unwrap();
    let process = PythonProcess::attach(py.pid()).unwrap();
    let all = process.interpreters().unwrap();
    let ids: BTreeSet<i64> = all.iter().map(|i| i.id).collect();
    assert_eq!(ids, BTreeSet::from([0, sub]));
    let main = process.gil_reader(process.main_interpreter().unwrap()).unwrap();
    let theirs = all.iter().find(|i| i.id == sub).unwrap();
    let mut theirs = process.gil_reader(*theirs).unwrap();
    assert_ne!(main.gil_address(), theirs.gil_address(), "an isolated subinterpreter shares no GIL");
    // Nobody runs in it: its GIL is free.
    assert!(!theirs.read().unwrap().locked);
}

// ------------------------------------------------------------ fallbacks

#[test]
fn cpython_3_9_falls_back_naming_its_version() {
    let _one_at_a_time = timing_lock();
    for minor in [8, 9] {
        let py = Python::start(&pyenv_python(minor), "import time\ntime.sleep(60)\n");
        let fallback = GilReader::attach_within(py.pid(), Duration::from_secs(5)).unwrap_err();
        assert_eq!(fallback.reason, format!("unknown CPython 3.{minor}: no layout for it"));
        assert!(!fallback.transient);
    }
}

#[test]
fn a_process_that_is_not_python_falls_back() {
    let _one_at_a_time = timing_lock();
    let mut sleep = Command::new("sleep").arg("60").spawn().unwrap();
    let fallback = GilReader::attach_within(sleep.id(), Duration::from_secs(5)).unwrap_err();
    let _ = sleep.kill();
    let _ = sleep.wait();
    assert!(fallback.reason.starts_with("not CPython: nothing mapped"), "{fallback}");
}

#[test]
fn an_interpreter_without_symbols_falls_back_naming_its_file() {
    let _one_at_a_time = timing_lock();
    // A binary named like an interpreter that defines no _PyRuntime, as a
    // fully stripped static python would.
    let dir = std::env::temp_dir().join(format!("gilscope-stripped-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("python3.11");
    std::fs::copy("/bin/sleep", &fake).unwrap();
    let mut child = Command::new(&fake).arg("60").spawn().unwrap();
    let fallback = GilReader::attach_within(child.id(), Duration::from_secs(5)).unwrap_err();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(fallback.reason, "stripped interpreter: python3.11 defines no _PyRuntime symbol");
}

#[test]
fn a_process_that_has_gone_falls_back() {
    let _one_at_a_time = timing_lock();
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let fallback = GilReader::attach(pid).unwrap_err();
    assert_eq!(fallback.reason, format!("no process {pid}"));
}

// ------------------------------------------------------------ DWARF

/// Evaluates `name → C expression` pairs against `elf`'s DWARF with gdb.
fn gdb_values(elf: &Path, exprs: &[(String, String)]) -> HashMap<String, i64> {
    let mut command = Command::new("gdb");
    command.args(["-batch", "-nx"]);
    for (name, expr) in exprs {
        command.arg("-ex").arg(format!("printf \"{name} %ld\\n\", (long)({expr})"));
    }
    let out =
        command.arg(elf).output().unwrap_or_else(|e| panic!("cannot run gdb (these tests need it): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let values: HashMap<String, i64> = stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(n, v)| Some((n.to_owned(), v.trim().parse().ok()?)))
        .collect();
    for (name, expr) in exprs {
        assert!(
            values.contains_key(name),
            "gdb could not evaluate {expr} in {}: {}",
            elf.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    values
}

fn offset(of: &str, field: &str) -> String {
    format!("&(({of} *)0)->{field}")
}

fn size(of: &str, field: &str) -> String {
    format!("sizeof((({of} *)0)->{field})")
}

/// Each offset of `layout` beside the DWARF expression that must equal it,
/// and each field's size beside the size the sampler reads.
fn layout_claims(minor: u32, layout: &Layout) -> Vec<(String, i64, String)> {
    const RT: &str = "_PyRuntimeState";
    const IS: &str = "PyInterpreterState";
    const TS: &str = "PyThreadState";
    const GIL: &str = "struct _gil_runtime_state";
    let threads_created = if minor == 10 { "tstate_next_unique_id" } else { "threads.next_unique_id" };
    let mut claims = vec![
        ("runtime_interpreters_head", layout.runtime_interpreters_head, offset(RT, "interpreters.head")),
        ("interp_next", layout.interp_next, offset(IS, "next")),
        ("interp_id", layout.interp_id, offset(IS, "id")),
        ("interp_threads_created", layout.interp_threads_created, offset(IS, threads_created)),
        ("gil_interval", layout.gil_interval, offset(GIL, "interval")),
        ("gil_last_holder", layout.gil_last_holder, offset(GIL, "last_holder")),
        ("gil_locked", layout.gil_locked, offset(GIL, "locked")),
        ("gil_switch_number", layout.gil_switch_number, offset(GIL, "switch_number")),
        ("tstate_interp", layout.tstate_interp, offset(TS, "interp")),
        ("tstate_thread_id", layout.tstate_thread_id, offset(TS, "thread_id")),
        ("size_interpreters_head", 8, size(RT, "interpreters.head")),
        ("size_interp_next", 8, size(IS, "next")),
        ("size_interp_id", 8, size(IS, "id")),
        ("size_threads_created", 8, size(IS, threads_created)),
        ("size_gil_interval", 8, size(GIL, "interval")),
        ("size_gil_last_holder", 8, size(GIL, "last_holder")),
        ("size_gil_locked", 4, size(GIL, "locked")),
        ("size_gil_switch_number", 8, size(GIL, "switch_number")),
        ("size_tstate_interp", 8, size(TS, "interp")),
        ("size_tstate_thread_id", 8, size(TS, "thread_id")),
    ];
    match layout.gil {
        GilHome::Runtime { offset: at } => claims.push(("gil_in_runtime", at, offset(RT, "ceval.gil"))),
        GilHome::Interpreter { pointer } => {
            claims.push(("gil_pointer_in_interp", pointer, offset(IS, "ceval.gil")));
            claims.push(("size_gil_pointer", 8, size(IS, "ceval.gil")));
        }
    }
    match layout.tstate_native_thread_id {
        Some(at) => {
            claims.push(("tstate_native_thread_id", at, offset(TS, "native_thread_id")));
            claims.push(("size_tstate_native_thread_id", 8, size(TS, "native_thread_id")));
        }
        // No native id before 3.11: 3.10's thread state must not have one.
        None => assert_eq!(minor, 10, "only 3.10 lacks native_thread_id"),
    }
    claims.into_iter().map(|(n, v, e)| (n.to_owned(), v as i64, e)).collect()
}

fn assert_agrees_with_dwarf(minor: u32, layout: &Layout, what: &str) {
    let claims = layout_claims(minor, layout);
    let exprs: Vec<(String, String)> = claims.iter().map(|(n, _, e)| (n.clone(), e.clone())).collect();
    let dwarf = gdb_values(&pyenv_libpython(minor), &exprs);
    for (name, ours, expr) in &claims {
        assert_eq!(
            dwarf[name], *ours,
            "3.{minor} {what}: {name} is {ours}, DWARF says {expr} = {}",
            dwarf[name]
        );
    }
}

#[test]
fn every_table_entry_agrees_with_the_interpreters_dwarf() {
    let _one_at_a_time = timing_lock();
    for minor in 10..=13 {
        let layout = layout::table(3, minor as u8).expect("a table entry");
        assert_agrees_with_dwarf(minor, &layout, "table");
    }
}

#[test]
fn cpython_3_10_has_no_native_thread_id_so_holders_go_through_pthread() {
    let _one_at_a_time = timing_lock();
    let expr = offset("PyThreadState", "native_thread_id");
    let out = Command::new("gdb")
        .args(["-batch", "-nx", "-ex", &format!("printf \"native %ld\\n\", (long)({expr})")])
        .arg(pyenv_libpython(10))
        .output()
        .expect("gdb");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no member named native_thread_id"));
}

#[test]
fn the_313_debug_block_is_read_where_dwarf_says_its_fields_are() {
    let _one_at_a_time = timing_lock();
    use debug_block_313 as at;
    const DO: &str = "struct _Py_DebugOffsets";
    let positions = [
        ("VERSION", at::VERSION, "version"),
        ("FREE_THREADED", at::FREE_THREADED, "free_threaded"),
        ("RUNTIME_INTERPRETERS_HEAD", at::RUNTIME_INTERPRETERS_HEAD, "runtime_state.interpreters_head"),
        ("INTERP_SIZE", at::INTERP_SIZE, "interpreter_state.size"),
        ("INTERP_ID", at::INTERP_ID, "interpreter_state.id"),
        ("INTERP_NEXT", at::INTERP_NEXT, "interpreter_state.next"),
        ("INTERP_THREADS_HEAD", at::INTERP_THREADS_HEAD, "interpreter_state.threads_head"),
        ("INTERP_CEVAL_GIL", at::INTERP_CEVAL_GIL, "interpreter_state.ceval_gil"),
        ("INTERP_GIL_RUNTIME_STATE", at::INTERP_GIL_RUNTIME_STATE, "interpreter_state.gil_runtime_state"),
        ("INTERP_GIL_LOCKED", at::INTERP_GIL_LOCKED, "interpreter_state.gil_runtime_state_locked"),
        ("INTERP_GIL_HOLDER", at::INTERP_GIL_HOLDER, "interpreter_state.gil_runtime_state_holder"),
        ("TSTATE_SIZE", at::TSTATE_SIZE, "thread_state.size"),
        ("TSTATE_INTERP", at::TSTATE_INTERP, "thread_state.interp"),
        ("TSTATE_THREAD_ID", at::TSTATE_THREAD_ID, "thread_state.thread_id"),
        ("TSTATE_NATIVE_THREAD_ID", at::TSTATE_NATIVE_THREAD_ID, "thread_state.native_thread_id"),
    ];
    let mut exprs: Vec<(String, String)> =
        positions.iter().map(|(n, _, f)| (n.to_string(), offset(DO, f))).collect();
    exprs.push(("AT_RUNTIME_START".to_owned(), offset("_PyRuntimeState", "debug_offsets")));
    let dwarf = gdb_values(&pyenv_libpython(13), &exprs);
    for (name, ours, field) in positions {
        assert_eq!(dwarf[name], ours as i64, "_Py_DebugOffsets.{field}");
    }
    assert_eq!(dwarf["AT_RUNTIME_START"], 0, "the block opens _PyRuntime");

    // And what a live 3.13 publishes there makes the layout DWARF describes.
    let py = Python::start(&pyenv_python(13), "import time\nprint('ready', flush=True)\ntime.sleep(60)\n");
    let mut py = py;
    assert_eq!(py.line(), "ready");
    let process = PythonProcess::attach(py.pid()).unwrap();
    assert_agrees_with_dwarf(13, process.layout(), "from the live block");
}

#[test]
fn each_interpreter_is_recognised_by_its_own_version() {
    let _one_at_a_time = timing_lock();
    let cases = [
        (pyenv_python(10), "3.10"),
        (pyenv_python(11), "3.11.7"),
        (pyenv_python(12), "3.12.1"),
        (pyenv_python(13), "3.13.0"),
        (debian_python(), "3.11.2"),
    ];
    for (python, version) in cases {
        let mut py = Python::start(&python, "import time\nprint('ready', flush=True)\ntime.sleep(60)\n");
        assert_eq!(py.line(), "ready");
        let process = PythonProcess::attach(py.pid()).unwrap();
        assert_eq!(process.version().to_string(), version, "{}", python.display());
        assert!(process.names_holders(), "{}", python.display());
    }
}

#[test]
fn attaching_right_after_the_spawn_waits_for_the_interpreter() {
    let _one_at_a_time = timing_lock();
    let py = Python::start(&pyenv_python(11), "import time\ntime.sleep(60)\n");
    let mut reader = GilReader::attach_within(py.pid(), Duration::from_secs(5)).unwrap();
    let sample = reader.read().unwrap();
    // The main thread is the only one: if anyone holds the GIL, it does.
    if sample.locked {
        assert_eq!(sample.holder_tid, Some(py.pid()));
    }
    assert!(common::alive(py.pid()));
}

// ------------------------------------------------------------ exact events

/// A sample taken while the GIL is held, and the clock just before and
/// just after it: events outside that bracket are surely before or after.
fn held_sample(reader: &mut GilReader) -> (u64, GilSample, u64) {
    loop {
        let before = now_ns();
        if let Ok(sample) = reader.read() {
            let after = now_ns();
            if sample.locked && sample.holder_tid.is_some() {
                return (before, sample, after);
            }
        }
    }
}

/// The hand-overs in `events` (takes by a thread other than the last
/// holder, starting from `holder`): what `switch_number` counts.
fn hand_overs_in(events: &[&GilEvent], mut holder: u32) -> u64 {
    let mut n = 0;
    for e in events.iter().filter(|e| e.kind == GilEventKind::Take) {
        n += u64::from(e.tid != holder);
        holder = e.tid;
    }
    n
}

/// Attaches the probes and waits until each worker has started a wait for
/// the GIL under them: a `take_gil` entered before the probes has no return
/// probe, so a thread's events are complete only from its first `Wait`.
fn probes_on(process: &PythonProcess, workers: &[u32]) -> GilProbes {
    let mut probes =
        GilProbes::attach(process).unwrap_or_else(|f| panic!("CPython {}: {f}", process.version()));
    let mut waited = BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !workers.iter().all(|w| waited.contains(w)) {
        assert!(std::time::Instant::now() < deadline, "workers {workers:?} never waited; saw {waited:?}");
        std::thread::sleep(Duration::from_millis(20));
        waited.extend(probes.drain().iter().filter(|e| e.kind == GilEventKind::Wait).map(|e| e.tid));
    }
    probes
}

#[test]
fn uprobes_see_every_hand_over_the_interpreter_counts() {
    let _one_at_a_time = timing_lock();
    for minor in 10..=13 {
        let (py, workers) = cpu_bound(&pyenv_python(minor), 2, 0.005);
        let process = PythonProcess::attach(py.pid()).unwrap();
        let mut probes = probes_on(&process, &workers);
        let mut reader = process.gil_reader(process.main_interpreter().unwrap()).unwrap();
        let (_, first, from) = held_sample(&mut reader);
        std::thread::sleep(Duration::from_secs(1));
        let (until, last, _) = held_sample(&mut reader);
        let events = probes.drain();
        drop(py);

        let within: Vec<&GilEvent> = events.iter().filter(|e| e.t > from && e.t < until).collect();
        let takers: BTreeSet<u32> =
            within.iter().filter(|e| e.kind == GilEventKind::Take).map(|e| e.tid).collect();
        assert_eq!(takers, workers.iter().copied().collect(), "3.{minor}: who took the GIL");
        let seen = hand_overs_in(&within, first.holder_tid.unwrap_or_default());
        let counted = last.switch_number - first.switch_number;
        assert!(counted >= 50, "3.{minor}: only {counted} switches in a second");
        // switch_number moves inside take_gil, the return probe fires as it
        // returns: a hand-over right at either read may fall on either side.
        assert!(
            seen.abs_diff(counted) <= 2,
            "3.{minor}: uprobes saw {seen} hand-overs, switch_number moved by {counted}"
        );
        assert_eq!(probes.lost(), 0);
        // A second of hand-overs every 5 ms fills a little of a ring: the
        // reader may wait longer before its next drain.
        let fullest = probes.fullest();
        assert!(fullest > 0.0 && fullest < 0.5, "3.{minor}: the busiest ring was {fullest} full");
    }
}

#[test]
fn uprobes_show_one_holder_at_a_time() {
    let _one_at_a_time = timing_lock();
    for minor in [10, 13] {
        let (py, workers) = cpu_bound(&pyenv_python(minor), 4, 0.001);
        let process = PythonProcess::attach(py.pid()).unwrap();
        let mut probes = probes_on(&process, &workers);
        std::thread::sleep(Duration::from_millis(500));
        let events = probes.drain();
        drop(py);
        // Each thread goes wait, take, drop, wait. The drop is stamped just
        // after the GIL was freed, before the dropper waits for a taker
        // (forced switching): the waiter it woke may preempt it and be
        // stamped taking first, but mostly the drop comes first. Were it
        // stamped after that wait, every forced drop would come late.
        let start = events.iter().position(|e| e.kind == GilEventKind::Take).expect("a take");
        let mut taker = None;
        let mut dropped = true;
        let mut last_of: HashMap<u32, GilEventKind> = HashMap::new();
        let (mut takes, mut late) = (0, 0);
        for e in &events[start..] {
            match e.kind {
                GilEventKind::Take => {
                    if taker.is_some() && !dropped {
                        late += 1;
                    }
                    taker = Some(e.tid);
                    dropped = false;
                    takes += 1;
                }
                GilEventKind::Drop => dropped |= taker == Some(e.tid),
                GilEventKind::Wait => {}
            }
            let expected_before = match e.kind {
                GilEventKind::Wait => GilEventKind::Drop,
                GilEventKind::Take => GilEventKind::Wait,
                GilEventKind::Drop => GilEventKind::Take,
            };
            if let Some(previous) = last_of.insert(e.tid, e.kind) {
                assert_eq!(previous, expected_before, "3.{minor}: thread {} at {}", e.tid, e.t);
            }
        }
        eprintln!("3.{minor}: {late} of {takes} takes came before the last holder's drop was stamped");
        assert!(late * 4 < takes, "3.{minor}: {late} of {takes} takes came before the last holder's drop");
        assert!(takes > 100, "3.{minor}: only {takes} takes");
        assert!(workers.iter().all(|w| last_of.contains_key(w)), "3.{minor}: every worker took part");
    }
}

/// gdb's disassembly of `function` in `elf`: (address, instruction text) per line.
fn gdb_disassembly(elf: &Path, function: &str) -> Vec<(u64, String)> {
    let out = Command::new("gdb")
        .args(["-batch", "-nx", "-ex", &format!("disassemble {function}")])
        .arg(elf)
        .output()
        .unwrap_or_else(|e| panic!("cannot run gdb (these tests need it): {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (address, rest) = l.trim_start().split_once(' ')?;
            Some((u64::from_str_radix(address.strip_prefix("0x")?, 16).ok()?, rest.to_owned()))
        })
        .collect()
}

#[test]
fn the_release_probe_sits_right_after_drop_gils_unlock_in_every_version() {
    // gdb disassembles drop_gil on its own: the instruction before the
    // probe point is drop_gil's first call to pthread_mutex_unlock, the one
    // that frees the GIL after its waiter was signalled.
    let _one_at_a_time = timing_lock();
    for minor in 10..=13 {
        let lib = pyenv_libpython(minor);
        let info = gilscope::gil_sampler::symbols::ElfInfo::read(&lib, &["drop_gil"]).unwrap();
        let drop_gil = info.symbols["drop_gil"];
        let point =
            gilscope::gil_sampler::code::after_first_call(&lib, &info, drop_gil, "pthread_mutex_unlock")
                .unwrap();
        let listing = gdb_disassembly(&lib, "drop_gil");
        assert!(listing.len() > 20, "3.{minor}: gdb listed {} instructions", listing.len());
        let at = listing
            .iter()
            .position(|(a, _)| *a == point)
            .unwrap_or_else(|| panic!("3.{minor}: {point:#x} starts no instruction of drop_gil by gdb"));
        let calls: Vec<usize> = (0..listing.len())
            .filter(|&i| listing[i].1.contains("call") && listing[i].1.contains("<pthread_mutex_unlock"))
            .collect();
        assert_eq!(
            calls.first(),
            Some(&(at - 1)),
            "3.{minor}: before the point gdb shows {:?}",
            listing[at - 1]
        );
        let signal = listing.iter().position(|(_, i)| i.contains("<pthread_cond_signal"));
        assert!(signal.is_some_and(|s| s < at), "3.{minor}: the waiter is signalled before the point");
        // A function that never calls it is refused, naming the callee.
        let never = gilscope::gil_sampler::code::after_first_call(&lib, &info, drop_gil, "pthread_kill");
        assert!(never.is_err_and(|e| e.contains("never calls pthread_kill")), "3.{minor}");
    }
}

#[test]
fn the_sampler_and_the_uprobes_name_the_same_holder() {
    // Two independent ways of seeing the GIL: reading its memory, and
    // trapping its functions. Away from a hand-over (50 µs either side)
    // they must agree on who holds it.
    let _one_at_a_time = timing_lock();
    let (py, workers) = cpu_bound(&pyenv_python(11), 3, 0.002);
    let process = PythonProcess::attach(py.pid()).unwrap();
    let mut probes = probes_on(&process, &workers);
    let reader = process.gil_reader(process.main_interpreter().unwrap()).unwrap();
    let (samples, _) = sample(reader, Duration::from_secs(1));
    let events = probes.drain();
    drop(py);

    // The holder by the probes after each take and drop: the taker, or
    // nobody once it let go (a drop stamped after another thread's take,
    // by a dropper that taker preempted, changes nothing).
    let mut holder = None;
    let mut changes: Vec<(u64, Option<u32>)> = Vec::new();
    for e in events.iter().filter(|e| e.kind != GilEventKind::Wait) {
        match e.kind {
            GilEventKind::Take => holder = Some(e.tid),
            _ if holder == Some(e.tid) => holder = None,
            _ => continue,
        }
        changes.push((e.t, holder));
    }
    let near_a_change = |t: u64| {
        let i = changes.partition_point(|c| c.0 < t);
        [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|i| changes.get(i))
            .any(|c| c.0.abs_diff(t) < 50_000)
    };
    let (mut agree, mut compared) = (0, 0);
    for s in samples.iter().filter(|s| s.gil.locked && !near_a_change(s.t)) {
        let i = changes.partition_point(|c| c.0 < s.t);
        let Some(&(_, by_probes)) = i.checked_sub(1).map(|i| &changes[i]) else { continue };
        compared += 1;
        if by_probes.is_some() && by_probes == s.gil.holder_tid {
            agree += 1;
        }
    }
    assert!(compared > 3_000, "only {compared} samples to compare");
    assert!(agree * 100 >= compared * 99, "{agree} of {compared} samples agree with the uprobes");
}

#[test]
fn a_stripped_interpreter_gets_no_uprobes_and_says_why() {
    let _one_at_a_time = timing_lock();
    let mut py = Python::start(&debian_python(), "import time\nprint('ready', flush=True)\ntime.sleep(60)\n");
    assert_eq!(py.line(), "ready");
    let process = PythonProcess::attach(py.pid()).unwrap();
    let fallback = GilProbes::attach(&process).unwrap_err();
    assert_eq!(fallback.reason, "no take_gil symbol in python3.11: its .symtab was stripped");
}

#[test]
fn uprobes_follow_threads_started_after_they_attach() {
    let _one_at_a_time = timing_lock();
    let code = "import math, sys, threading\n\
        sys.setswitchinterval(0.001)\n\
        def work():\n    \
            print(threading.get_native_id(), flush=True)\n    \
            for i in range(500_000_000):\n        math.sqrt(i)\n\
        print('ready', flush=True)\n\
        sys.stdin.readline()\n\
        threads = [threading.Thread(target=work) for _ in range(2)]\n\
        for t in threads:\n    t.start()\n\
        for t in threads:\n    t.join()\n";
    let mut py = Python::start(&pyenv_python(11), code);
    assert_eq!(py.line(), "ready");
    let process = PythonProcess::attach(py.pid()).unwrap();
    let mut probes = GilProbes::attach(&process).unwrap();
    assert_eq!(probes.threads(), 1, "only the main thread so far");
    py.send("go");
    let workers = [py.tid(), py.tid()];
    let mut taken: BTreeMap<u32, usize> = BTreeMap::new();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(10));
        for e in probes.drain().iter().filter(|e| e.kind == GilEventKind::Take) {
            *taken.entry(e.tid).or_default() += 1;
        }
    }
    assert_eq!(probes.threads(), 3);
    drop(py);
    for w in &workers {
        assert!(taken.get(w).is_some_and(|&n| n > 10), "worker {w} took the GIL {:?} times", taken.get(w));
    }
    assert_eq!(probes.untraced(), 0);
}
