//! Worker processes never outlive gilscope, and a broken worker fails its
//! run with a message instead of a panic or a hang.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails
#![allow(clippy::cast_possible_wrap, clippy::similar_names)] // pids for kill(2); short names side by side

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

mod common;
use common::{alive, wait_until};

use gilscope::experiment::plan::Plan;
use gilscope::experiment::spec::{Experiment, Model, RunSpec};
use gilscope::experiment::supervisor::{self, Launch, Report};
use gilscope::experiment::tally::{Lane, Tally};

fn gilscope() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gilscope"))
}

/// Children of `pid`, from /proc (every thread's list).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    out
}

fn killing_gilscope_run_leaves_no_worker(model: &str, signal: i32) {
    let mut app = common::gilscope()
        .args(["run", "--model", model, "--workers", "2", "--iterations", "15000000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gilscope run");
    let pid = app.id();
    // The baseline (one worker alone) comes first; wait until the model's
    // own workers are up: two processes, or one process of two threads.
    let mut workers = Vec::new();
    assert!(
        wait_until(Duration::from_secs(20), || {
            workers = children(pid);
            match model {
                "processes" => workers.len() >= 2,
                _ => workers.iter().any(|&w| {
                    std::fs::read(format!("/proc/{w}/cmdline"))
                        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("--roles=cpu,cpu"))
                }),
            }
        }),
        "gilscope run never started its workers"
    );
    // SAFETY: plain syscall on our own child.
    unsafe { libc::kill(pid as i32, signal) };
    let _ = app.wait();
    assert!(
        wait_until(Duration::from_secs(3), || workers.iter().all(|&w| !alive(w))),
        "workers {workers:?} outlived gilscope (signal {signal})"
    );
}

#[test]
fn sigkill_of_gilscope_run_leaves_no_worker_behind() {
    killing_gilscope_run_leaves_no_worker("threads", libc::SIGKILL);
}

#[test]
fn sigkill_mid_multiprocessing_run_leaves_no_worker_behind() {
    killing_gilscope_run_leaves_no_worker("processes", libc::SIGKILL);
}

#[test]
fn ctrl_c_of_gilscope_run_leaves_no_worker_behind() {
    killing_gilscope_run_leaves_no_worker("processes", libc::SIGINT);
}

fn collect(launches: &[Launch], workers: u32) -> Tally {
    let (tx, rx) = crossbeam_channel::unbounded();
    let running = supervisor::start(launches, 7, &tx).expect("start");
    let spec = RunSpec { experiment: Experiment::new(workers), model: Model::Threads };
    let mut tally = Tally::new(spec, running.requested_at, running.streams());
    while !tally.is_over() {
        let report = rx.recv_timeout(Duration::from_secs(10)).expect("the run hung");
        assert_eq!(report.run(), 7);
        tally.apply(report);
    }
    tally
}

fn shell(script: &str) -> Launch {
    Launch { program: "sh".into(), args: vec!["-c".into(), script.into()], ..Launch::default() }
}

#[test]
fn a_stream_that_is_not_the_wire_format_fails_the_run_by_name() {
    let tally = collect(&[shell("echo hello there; sleep 5")], 1);
    let why = tally.failure.expect("garbage must fail the run");
    assert!(why.contains("gilscope header"), "{why}");
}

#[test]
fn a_truncated_stream_fails_the_run() {
    let header = "gilscope 1 pid=1 runtime=sim gil=on threads=1 first=0 timeline=exact";
    let tally = collect(&[shell(&format!("echo '{header}'; echo 'take 5 0'; echo 'progress 6 0 1'"))], 1);
    let why = tally.failure.expect("a truncated record must fail the run");
    assert!(why.contains("malformed"), "{why}");
    let tally = collect(&[shell(&format!("echo '{header}'; echo 'take 5 0'"))], 1);
    let why = tally.failure.expect("a stream that stops early must fail the run");
    assert!(why.contains("truncated"), "{why}");
}

#[test]
fn a_worker_that_dies_mid_run_fails_the_run_and_shows_as_failed() {
    let plan = Plan::with_program(gilscope());
    let spec = RunSpec {
        experiment: Experiment { iterations: 500_000_000, ..Experiment::new(2) },
        model: Model::Processes,
    };
    let launches = plan.launches(&spec).expect("launches");
    let (tx, rx) = crossbeam_channel::unbounded();
    let running = supervisor::start(&launches, 1, &tx).expect("start");
    let mut tally = Tally::new(spec, running.requested_at, running.streams());
    // Wait for progress, then kill one of the two processes as a crash would.
    while tally.workers.iter().all(|w| w.done == 0) {
        tally.apply(rx.recv_timeout(Duration::from_secs(10)).expect("no progress"));
    }
    let victim = running.pids()[1];
    running.kill_one(victim);
    while !tally.is_over() {
        tally.apply(rx.recv_timeout(Duration::from_secs(10)).expect("the run hung"));
    }
    let why = tally.failure.clone().expect("a killed worker must fail the run");
    assert!(why.contains(&victim.to_string()) && why.contains("SIGKILL"), "{why}");
    assert!(tally.workers.iter().any(|w| w.lane() == Lane::Failed));
    drop(running);
    assert!(wait_until(Duration::from_secs(3), || !alive(victim)));
}

#[test]
fn dropping_a_run_kills_its_whole_process_group() {
    let plan = Plan::with_program(gilscope());
    let spec = RunSpec {
        experiment: Experiment { iterations: 500_000_000, ..Experiment::new(3) },
        model: Model::Processes,
    };
    let (tx, _rx) = crossbeam_channel::unbounded();
    let running = supervisor::start(&plan.launches(&spec).expect("launches"), 2, &tx).expect("start");
    let pids = running.pids().to_vec();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|&p| alive(p)));
    drop(running);
    assert!(wait_until(Duration::from_secs(3), || pids.iter().all(|&p| !alive(p))), "{pids:?} survived");
}

#[test]
fn a_missing_program_is_an_error_not_a_panic() {
    let launch = Launch { program: "/nonexistent/gilscope".into(), ..Launch::default() };
    let (tx, _rx) = crossbeam_channel::unbounded::<Report>();
    let err = supervisor::start(&[launch], 3, &tx).err().expect("must fail");
    assert!(err.to_string().contains("/nonexistent/gilscope"), "{err}");
}
