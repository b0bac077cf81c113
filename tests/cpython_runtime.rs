//! The real `CPython` through gilscope's own machinery: `--runtime cpython`,
//! `--runtime both`, `gilscope calibrate`, and a Python worker that dies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails
#![allow(clippy::cast_possible_wrap, clippy::similar_names)] // pids for kill(2); short names side by side

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use gilscope::cpython::Python;
use gilscope::experiment::plan::Plan;
use gilscope::experiment::spec::{Experiment, Model, RunSpec};
use gilscope::experiment::supervisor;
use gilscope::experiment::tally::{Lane, Tally};
use gilscope::protocol::Runtime;

mod common;
use common::{alive, next_reports, scratch, wait_until};

fn python3() -> Python {
    Python::probe(std::path::Path::new("python3")).expect("python3 is on every machine; these tests need it")
}

/// gilscope with the cache folder `cache`, shared by the calls of one test.
fn gilscope(args: &[&str], cache: &std::path::Path) -> Output {
    common::gilscope().args(args).env("XDG_CACHE_HOME", cache).output().expect("start gilscope")
}

#[test]
fn a_missing_interpreter_is_one_clear_line_naming_python() {
    let out = gilscope(&["run", "--runtime", "cpython", "--python", "/no/such/python"], &scratch("missing"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--python") && err.contains("/no/such/python"), "{err}");
}

#[test]
fn the_simulated_runtime_works_without_any_python() {
    let out = gilscope(
        &["run", "--json", "--iterations", "100000", "--python", "/no/such/python"],
        &scratch("nopython"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn runtime_both_runs_each_model_under_each_runtime_side_by_side() {
    let cache = scratch("both");
    let out =
        gilscope(&["run", "--runtime", "both", "--json", "--workers", "2", "--iterations", "300000"], &cache);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let runs = report["runs"].as_array().expect("runs");
    let pairs: Vec<(String, String)> = runs
        .iter()
        .map(|r| {
            (r["model"].as_str().unwrap_or("").to_owned(), r["runtime"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    let expected =
        [("threads", "sim"), ("threads", "cpython"), ("processes", "sim"), ("processes", "cpython")];
    assert_eq!(pairs, expected.map(|(m, r)| (m.to_owned(), r.to_owned())));
    for run in runs {
        assert!(run["speedup"].as_f64().unwrap_or(0.0) > 0.0, "{run}");
        assert!(run["cores_used"].as_f64().unwrap_or(0.0) > 0.0, "{run}");
    }
    // CPython's multiprocessing really ran in 2 processes, its threading in 1.
    assert_eq!(runs[1]["processes"], 1);
    assert_eq!(runs[3]["processes"], 2);
    // No calibration was stored, so the run calibrated itself and stored one.
    assert!(cache.join("gilscope/calibration.json").exists());

    let table = gilscope(&["run", "--runtime", "both", "--workers", "2", "--iterations", "300000"], &cache);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("simulation vs CPython"), "{text}");
}

#[test]
fn calibrate_stores_cpythons_cost_and_runs_use_it() {
    let cache = scratch("calibrate");
    let out = gilscope(&["calibrate", "--iterations", "300000"], &cache);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("ns per iteration") && text.contains("check:"), "{text}");
    let stored: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(cache.join("gilscope/calibration.json")).expect("stored"),
    )
    .expect("json");
    let ns = stored["iteration_ns"].as_f64().expect("iteration_ns");
    assert!((5.0..5000.0).contains(&ns), "{ns} ns per iteration");
    let run = gilscope(&["run", "--json", "--iterations", "100000", "--model", "threads"], &cache);
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("json");
    assert_eq!(report["iteration_ns"].as_f64(), Some(ns));
}

/// Starts a `CPython` multiprocessing run and waits until its workers progress.
fn cpython_run_in_progress() -> (supervisor::Running, crossbeam_channel::Receiver<supervisor::Event>, Tally) {
    let mut plan = Plan::with_program(PathBuf::from(env!("CARGO_BIN_EXE_gilscope")));
    plan.python = Some(python3());
    let spec = RunSpec {
        experiment: Experiment { iterations: 400_000_000, runtime: Runtime::Cpython, ..Experiment::new(2) },
        model: Model::Processes,
    };
    let (tx, rx) = supervisor::channel();
    let launches = plan.launches(&spec).expect("launches");
    let running = supervisor::start_one(1, launches, Duration::from_secs(30), &tx);
    let mut tally = Tally::new(spec, running.requested_at, running.streams());
    let deadline = Instant::now() + Duration::from_secs(20);
    while tally.workers.iter().any(|w| w.done == 0 || w.pid.is_none()) {
        assert!(Instant::now() < deadline, "the CPython workers never made progress");
        for report in next_reports(&rx, Duration::from_secs(20)) {
            tally.apply(report);
        }
    }
    (running, rx, tally)
}

fn finish(rx: &crossbeam_channel::Receiver<supervisor::Event>, tally: &mut Tally) {
    while !tally.is_over() {
        for report in next_reports(rx, Duration::from_secs(10)) {
            tally.apply(report);
        }
    }
}

#[test]
fn a_python_worker_killed_mid_run_fails_the_run_cleanly() {
    let (running, rx, mut tally) = cpython_run_in_progress();
    let victim = tally.workers[1].pid.expect("worker 1 reported its pid");
    let other = tally.workers[0].pid.expect("worker 0 reported its pid");
    // SAFETY: plain syscall on a process of our own run.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    finish(&rx, &mut tally);
    let why = tally.failure.clone().expect("a killed worker must fail the run");
    assert!(why.contains(&victim.to_string()), "{why}");
    assert!(tally.workers.iter().any(|w| w.lane() == Lane::Failed));
    drop(running);
    wait_until(Duration::from_secs(3), || !alive(victim) && !alive(other));
    assert!(!alive(other), "the surviving CPython worker {other} outlived its run");
}

#[test]
fn killing_the_python_parent_fails_the_run_and_takes_its_children() {
    let (running, rx, mut tally) = cpython_run_in_progress();
    let parent = running.pids()[0];
    let children: Vec<u32> = tally.workers.iter().filter_map(|w| w.pid).collect();
    // SAFETY: plain syscall on a process of our own run.
    unsafe { libc::kill(parent as i32, libc::SIGKILL) };
    finish(&rx, &mut tally);
    let why = tally.failure.clone().expect("a killed interpreter must fail the run");
    assert!(why.contains("SIGKILL"), "{why}");
    wait_until(Duration::from_secs(3), || children.iter().all(|&c| !alive(c)));
    assert!(children.iter().all(|&c| !alive(c)), "CPython children {children:?} outlived their parent");
    drop(running);
}
