//! The instrumented `CPython` worker (`assets/python/gilscope_worker.py`) speaks
//! the wire format: every line it writes decodes with `gilscope::protocol`, and
//! the stream it writes is complete and consistent.
//!
//! These tests need `python3` on the PATH and fail loudly without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails
#![allow(clippy::cast_possible_wrap, clippy::similar_names)] // pids for kill(2); short names side by side

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

mod common;

use gilscope::protocol::{Hello, Record, ReleaseReason, Runtime, Timeline, decode, decode_hello};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/python/gilscope_worker.py");

/// How long one run may take before its stdin is closed, which stops it.
const DEADLINE: Duration = Duration::from_secs(30);

const ITERATIONS: u64 = 200_000;
const REQUESTS: u64 = 3;
const IO_MS: u64 = 5;
const REPLY_ITERATIONS: u64 = 20_000;

fn spawn(args: &[String]) -> Child {
    // Subinterpreters with a GIL each need 3.12 or later; python3 is 3.11 here.
    let python = if args.iter().any(|a| a == "subinterpreters") {
        common::pyenv_python("3.13").display().to_string()
    } else {
        "python3".to_owned()
    };
    Command::new(python)
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 (these tests need it on the PATH): {e}"))
}

/// Holds the worker's stdin open (the worker stops at its end of file) until
/// `done` is dropped or sent to, or `DEADLINE` passes.
fn hold_stdin(stdin: ChildStdin) -> mpsc::Sender<()> {
    let (done, wait) = mpsc::channel::<()>();
    thread::spawn(move || {
        let _ = wait.recv_timeout(DEADLINE);
        drop(stdin);
    });
    done
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs the worker to completion with its stdin held open.
fn run(args: &[String]) -> Run {
    let mut child = spawn(args);
    let done = hold_stdin(child.stdin.take().expect("piped stdin"));
    let output = child.wait_with_output().expect("waiting for python3");
    drop(done);
    Run {
        status: output.status,
        stdout: String::from_utf8(output.stdout).expect("the worker writes UTF-8"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Model {
    Threads,
    Processes,
    Subinterpreters,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Workload {
    Cpu,
    Io,
    Mixed,
}

fn worker_args(model: Model, workload: Workload, workers: u32, first: u32) -> Vec<String> {
    let model = match model {
        Model::Threads => "threads",
        Model::Processes => "processes",
        Model::Subinterpreters => "subinterpreters",
    };
    let workload = match workload {
        Workload::Cpu => "cpu",
        Workload::Io => "io",
        Workload::Mixed => "mixed",
    };
    [
        ("--model", model.to_owned()),
        ("--workers", workers.to_string()),
        ("--first-worker", first.to_string()),
        ("--workload", workload.to_owned()),
        ("--iterations", ITERATIONS.to_string()),
        ("--requests", REQUESTS.to_string()),
        ("--io-ms", IO_MS.to_string()),
        ("--reply-iterations", REPLY_ITERATIONS.to_string()),
        ("--switch-interval-s", "0.005".to_owned()),
        ("--spawned-at", "1".to_owned()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_owned(), value])
    .collect()
}

/// Decodes a whole stream: its header and every record, failing on any line
/// that does not decode.
fn decode_stream(stdout: &str) -> (Hello, Vec<Record>) {
    assert!(stdout.ends_with('\n'), "the stream ends mid-line: {stdout:?}");
    let mut lines = stdout.lines();
    let header = lines.next().expect("an empty stream");
    let hello = decode_hello(header).unwrap_or_else(|e| panic!("header {header:?}: {e}"));
    let records = lines.map(|line| decode(line).unwrap_or_else(|e| panic!("line {line:?}: {e}"))).collect();
    (hello, records)
}

/// Runs one workload under one model and checks everything the wire format
/// promises about the stream.
fn check(model: Model, workload: Workload, workers: u32, first: u32) {
    let started = Instant::now();
    let out = run(&worker_args(model, workload, workers, first));
    let context = format!("{model:?} {workload:?}: stderr {:?}", out.stderr);
    assert!(out.status.success(), "exit {}; {context}", out.status);
    let (hello, records) = decode_stream(&out.stdout);

    assert_eq!(hello.runtime, Runtime::Cpython, "{context}");
    assert!(
        matches!(hello.timeline, Timeline::Inferred { resolution_ns } if resolution_ns > 0),
        "timeline {:?}; {context}",
        hello.timeline
    );
    assert_eq!(hello.threads, workers, "{context}");
    assert_eq!(hello.first_worker, first, "{context}");

    if let Some(error) = records.iter().find(|r| matches!(r, Record::Error { .. })) {
        panic!("{error:?}; {context}");
    }

    let mut pids = BTreeSet::new();
    for w in first..first + workers {
        let io_worker = workload == Workload::Io || (workload == Workload::Mixed && w == first);
        pids.insert(check_worker(&records, w, io_worker, &context));
    }

    // Records name only our workers.
    for r in &records {
        if let Some(w) = r.worker() {
            assert!((first..first + workers).contains(&w), "{r:?} names a stranger; {context}");
        }
    }

    // One end per process, and only for processes the stream named.
    let ends: Vec<(u32, u64)> = records
        .iter()
        .filter_map(|r| match r {
            Record::End { pid, switches, .. } => Some((*pid, *switches)),
            _ => None,
        })
        .collect();
    let end_pids: BTreeSet<u32> = ends.iter().map(|&(pid, _)| pid).collect();
    assert_eq!(end_pids.len(), ends.len(), "one end per process: {ends:?}; {context}");
    match model {
        Model::Threads => {
            assert_eq!(pids, BTreeSet::from([hello.pid]), "threads share the top process; {context}");
            assert_eq!(ends.len(), 1, "{context}");
        }
        Model::Subinterpreters => {
            assert_eq!(
                pids,
                BTreeSet::from([hello.pid]),
                "every interpreter runs in the one process; {context}"
            );
            assert_eq!(ends.len(), 1, "{context}");
            assert_eq!(hello.gils, Some(workers), "a GIL per interpreter; {context}");
        }
        Model::Processes => {
            assert_eq!(pids.len(), workers as usize, "a process per worker; {context}");
            assert!(!pids.contains(&hello.pid), "workers run in children; {context}");
            assert_eq!(ends.len(), workers as usize + 1, "children and parent end; {context}");
            for &(pid, switches) in &ends {
                assert_eq!(switches, 0, "end of {pid}: one thread, no GIL switches; {context}");
            }
        }
    }
    pids.insert(hello.pid);
    assert_eq!(end_pids, pids, "{context}");
    assert!(
        matches!(records.last(), Some(Record::End { pid, .. }) if *pid == hello.pid),
        "the top process ends the stream; {context}"
    );
    assert!(started.elapsed() < Duration::from_secs(20), "{context}: too slow");
}

/// Checks the records of worker `w`; returns the process it ran in.
fn check_worker(records: &[Record], w: u32, io_worker: bool, context: &str) -> u32 {
    let mine: Vec<&Record> = records.iter().filter(|r| r.worker() == Some(w)).collect();
    let context = format!("worker {w}: {context}");

    // start, process, finished
    let starts: Vec<_> = mine
        .iter()
        .filter_map(|r| match r {
            Record::Started { t, requested, .. } => Some((*t, *requested)),
            _ => None,
        })
        .collect();
    assert_eq!(starts.len(), 1, "one start; {context}");
    let (t0, requested) = starts[0];
    assert!(requested > 0 && requested <= t0, "start {t0} asked for at {requested}; {context}");
    let worker_pids: Vec<u32> = mine
        .iter()
        .filter_map(|r| match r {
            Record::Process { pid, .. } => Some(*pid),
            _ => None,
        })
        .collect();
    assert_eq!(worker_pids.len(), 1, "one process record; {context}");
    let finished = mine.iter().filter(|r| matches!(r, Record::Finished { .. })).count();
    assert_eq!(finished, 1, "one finished; {context}");
    assert!(matches!(mine.last(), Some(Record::Finished { .. })), "finished comes last; {context}");
    for r in &mine {
        let t = r.time().expect("worker records carry a time");
        assert!(t >= t0, "{r:?} before the start at {t0}; {context}");
    }

    // Takes and releases alternate, starting with a take and ending with
    // the release at finish; their times never go backwards.
    let lane: Vec<&&Record> =
        mine.iter().filter(|r| matches!(r, Record::Take { .. } | Record::Release { .. })).collect();
    assert!(lane.len() >= 2, "a take and a release at least; {context}");
    let mut last_t = 0;
    for (i, r) in lane.iter().enumerate() {
        let t = r.time().unwrap();
        assert!(t >= last_t, "{r:?} goes back in time; {context}");
        last_t = t;
        if i % 2 == 0 {
            assert!(matches!(r, Record::Take { .. }), "expected a take, got {r:?}; {context}");
        } else {
            assert!(matches!(r, Record::Release { .. }), "expected a release, got {r:?}; {context}");
        }
    }
    // Its work begins at the start gun (at once, without --gun): the first
    // take is its first instruction after it.
    assert!(matches!(lane[0], Record::Take { t, .. } if *t >= t0), "first take after start; {context}");
    let finishes: Vec<_> = lane
        .iter()
        .filter(|r| matches!(r, Record::Release { reason: ReleaseReason::Finished, .. }))
        .collect();
    assert_eq!(finishes.len(), 1, "one release at finish; {context}");
    assert!(
        matches!(lane.last(), Some(Record::Release { reason: ReleaseReason::Finished, .. })),
        "the last release is the finish; {context}"
    );
    let drops = lane
        .iter()
        .filter(|r| matches!(r, Record::Release { reason: ReleaseReason::DropRequest, .. }))
        .count();
    assert_eq!(drops, 0, "an inferred timeline has no drop requests; {context}");

    // Progress never goes backwards and ends complete.
    let progress: Vec<(u64, u64, u64)> = mine
        .iter()
        .filter_map(|r| match r {
            Record::Progress { t, done, total, .. } => Some((*t, *done, *total)),
            _ => None,
        })
        .collect();
    assert!(!progress.is_empty(), "some progress; {context}");
    let total = if io_worker { REQUESTS } else { ITERATIONS };
    let mut last = (0, 0);
    for &(t, done, of) in &progress {
        assert_eq!(of, total, "progress total; {context}");
        assert!(t >= last.0 && done >= last.1, "progress went back at {t}: {done}; {context}");
        last = (t, done);
    }
    assert_eq!(last.1, total, "progress ends complete; {context}");

    // I/O: one io, exact release and reply per request.
    let count = |f: fn(&Record) -> bool| mine.iter().filter(|r| f(r)).count() as u64;
    let ios = count(|r| matches!(r, Record::IoBegin { .. }));
    let io_releases = count(|r| matches!(r, Record::Release { reason: ReleaseReason::Io, .. }));
    let replies: Vec<u64> = mine
        .iter()
        .filter_map(|r| match r {
            Record::Reply { latency_ns, .. } => Some(*latency_ns),
            _ => None,
        })
        .collect();
    if io_worker {
        assert_eq!((ios, io_releases, replies.len() as u64), (REQUESTS, REQUESTS, REQUESTS), "{context}");
        for latency in replies {
            assert!(latency >= IO_MS * 1_000_000, "reply latency {latency} ns is below the wait; {context}");
        }
    } else {
        assert_eq!((ios, io_releases, replies.len()), (0, 0, 0), "a CPU worker does no I/O; {context}");
    }
    worker_pids[0]
}

#[test]
fn cpu_under_threads() {
    check(Model::Threads, Workload::Cpu, 2, 0);
}

#[test]
fn io_under_threads() {
    check(Model::Threads, Workload::Io, 2, 0);
}

#[test]
fn mixed_under_threads() {
    check(Model::Threads, Workload::Mixed, 3, 4);
}

#[test]
fn cpu_under_processes() {
    check(Model::Processes, Workload::Cpu, 2, 0);
}

#[test]
fn io_under_processes() {
    check(Model::Processes, Workload::Io, 2, 0);
}

#[test]
fn mixed_under_processes() {
    check(Model::Processes, Workload::Mixed, 2, 2);
}

#[test]
fn cpu_under_subinterpreters() {
    check(Model::Subinterpreters, Workload::Cpu, 2, 0);
}

#[test]
fn mixed_under_subinterpreters() {
    check(Model::Subinterpreters, Workload::Mixed, 3, 1);
}

#[test]
fn bare_prints_the_nanoseconds_of_the_plain_loop() {
    let out = run(&["--bare".to_owned(), "--iterations".to_owned(), "100000".to_owned()]);
    assert!(out.status.success(), "exit {}; stderr {:?}", out.status, out.stderr);
    let line = out.stdout.strip_suffix('\n').expect("one line");
    let ns: u64 = line.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert!(ns > 0);
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    for args in [
        &["--bogus"][..],
        &["--workers", "0"],
        &["--model", "fibres"],
        &["--workload", "gpu"],
        &["--iterations", "many"],
        &["--switch-interval-s", "-1"],
    ] {
        let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: stderr {:?}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: stderr {:?}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: stdout {:?}", out.stdout);
    }
}

/// A run of two CPU workers from `first` on, far longer than any test waits,
/// once every worker runs: the worker, its stdin and stdout, and the pid each
/// worker reported.
fn two_running_workers(
    model: Model,
    first: u32,
) -> (Child, ChildStdin, BufReader<ChildStdout>, BTreeMap<u32, u32>) {
    let mut args = worker_args(model, Workload::Cpu, 2, first);
    let at = args.iter().position(|a| a == "--iterations").unwrap() + 1;
    "1000000000".clone_into(&mut args[at]);
    let mut child = spawn(&args);
    let stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut pids = BTreeMap::new();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    decode_hello(line.trim_end()).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    while pids.len() < 2 {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the stream ended early");
        if let Record::Process { worker, pid, .. } = decode(line.trim_end()).unwrap() {
            pids.insert(worker, pid);
        }
    }
    (child, stdin, stdout, pids)
}

/// Closing the worker's stdin stops it, and its children with it, even in the
/// middle of a long run.
fn stops_at_end_of_stdin(model: Model) {
    let (mut child, stdin, mut stdout, pids) = two_running_workers(model, 0);
    let closed = Instant::now();
    drop(stdin);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(closed.elapsed() < Duration::from_secs(5), "took {:?} to stop", closed.elapsed());
    assert!(!status.success(), "a stopped run must not look complete");
    let last = rest.lines().last().unwrap_or_default();
    assert!(matches!(decode(last), Ok(Record::Error { .. })), "last line {last:?}");

    // The workers are gone too (or zombies waiting for init to reap them).
    if cfg!(target_os = "linux") {
        for (&worker, &pid) in &pids {
            let gone = || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => true,
                Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, s)| s.trim_start().starts_with('Z')),
            };
            let deadline = Instant::now() + Duration::from_secs(3);
            while !gone() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
            assert!(gone(), "worker {worker} (pid {pid}) outlived its stream");
        }
    }
}

#[test]
fn threads_stop_at_end_of_stdin() {
    stops_at_end_of_stdin(Model::Threads);
}

#[test]
fn processes_stop_at_end_of_stdin() {
    stops_at_end_of_stdin(Model::Processes);
}

/// The OS names of the threads of `pid`, the main thread's included.
fn os_thread_names(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("a live process has tasks");
    let mut names: Vec<String> = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect();
    names.sort();
    names
}

/// gilscope counts worker threads by their OS name, which Python 3.13 and
/// older never set from a `threading.Thread`'s: the worker sets it itself.
fn the_os_sees_each_worker_named_by_its_global_index(model: Model) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let (mut child, stdin, _stdout, pids) = two_running_workers(model, 3);
    let names: BTreeMap<u32, Vec<String>> = pids.values().map(|&pid| (pid, os_thread_names(pid))).collect();
    drop(stdin);
    let _ = child.wait();
    for (worker, pid) in pids {
        let named = format!("worker-{worker}");
        assert!(names[&pid].contains(&named), "{model:?}: no thread {named} in process {pid}: {names:?}");
    }
    let workers: usize = names.values().flatten().filter(|n| n.starts_with("worker-")).count();
    assert_eq!(workers, 2, "{model:?}: only the workers are named so: {names:?}");
}

#[test]
fn thread_workers_are_named_worker_n_for_the_os() {
    the_os_sees_each_worker_named_by_its_global_index(Model::Threads);
}

#[test]
fn process_workers_are_named_worker_n_for_the_os() {
    the_os_sees_each_worker_named_by_its_global_index(Model::Processes);
}

#[test]
fn the_interpreter_start_is_measured_where_subinterpreters_exist_and_refused_in_words_where_not() {
    for version in ["3.12", "3.13"] {
        let out = Command::new(common::pyenv_python(version))
            .args(["-I", SCRIPT, "--bare", "--interpreter-start"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{version}: {}", String::from_utf8_lossy(&out.stderr));
        let ns: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        // Creating an interpreter and loading the worker in it: milliseconds.
        assert!((100_000..2_000_000_000).contains(&ns), "{version}: {ns} ns");
    }
    let out = Command::new(common::pyenv_python("3.11"))
        .args(["-I", SCRIPT, "--bare", "--interpreter-start"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("3.12 or later"));
}
