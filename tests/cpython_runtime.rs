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
    // Its lanes were read from its GILs (exact where uprobes are allowed, as
    // root; else sampled); the simulation's are the lock's own.
    for (run, lanes) in
        runs.iter().zip([["exact"; 2], ["exact", "measured"], ["exact"; 2], ["exact", "measured"]])
    {
        assert!(lanes.contains(&run["lanes"].as_str().unwrap_or("")), "{run}");
    }
    // No calibration was stored, so the run calibrated itself and stored one.
    assert!(cache.join("gilscope/calibration.json").exists());

    let table = gilscope(&["run", "--runtime", "both", "--workers", "2", "--iterations", "300000"], &cache);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("simulation vs CPython"), "{text}");
    // Per model, the GIL side by side: hand-overs, holds, each worker's share.
    let gil =
        text.split("the GIL, simulated vs read from CPython").nth(1).unwrap_or_else(|| panic!("{text}"));
    for row in [
        "threading · CPython lanes ",
        "GIL switches",
        "hold median",
        "hold p90",
        "held share T0",
        "held share T1",
        "multiprocessing · CPython lanes ",
        "held share P1",
    ] {
        assert!(gil.contains(row), "no {row:?} in {gil}");
    }
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

/// The children of `pid` and theirs, from /proc.
fn tree(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for task in tasks.flatten() {
                if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                    for child in text.split_whitespace().filter_map(|c| c.parse::<u32>().ok()) {
                        out.push(child);
                        todo.push(child);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn the_subinterpreter_model_runs_one_process_with_an_interpreter_per_worker() {
    let cache = scratch("subinterpreters");
    let mut app = common::gilscope()
        .args(["run", "--models", "subinterpreters", "--runtime", "cpython", "--workers", "3"])
        .args(["--iterations", "3000000", "--rounds", "1", "--json"])
        .env("XDG_CACHE_HOME", &cache)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start gilscope");
    // While the model runs, the OS sees one interpreter process under gilscope.
    let mut most = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_mins(1) && app.try_wait().ok().flatten().is_none() {
        let pythons = tree(app.id())
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| {
                    c.contains("--model\0subinterpreters") || c.contains("--model=subinterpreters")
                })
            })
            .count();
        most = most.max(pythons);
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = app.wait_with_output().expect("gilscope ends");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(most, 1, "one process for all the interpreters");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let run = &report["runs"][0];
    assert_eq!(run["model"], "subinterpreters");
    assert_eq!(run["processes"], 1, "{run}");
    assert_eq!(run["gils"], 3, "an interpreter and a GIL per worker: {run}");
    assert!(run["python"].as_str().is_some_and(|v| v.starts_with("3.1") && v >= "3.12"), "{run}");
}

#[test]
fn fork_starts_a_process_faster_than_forkserver_and_forkserver_faster_than_spawn() {
    let cache = scratch("start-methods");
    let start_us = |method: &str| {
        let out = gilscope(
            &[
                "run",
                "--models",
                "processes",
                "--runtime",
                "cpython",
                "--start-method",
                method,
                // Four: forkserver's own server start is shared by its
                // workers, so with two it can come out as slow as spawn.
                "--workers",
                "4",
            ]
            .iter()
            .chain(&["--iterations", "200000", "--rounds", "3", "--json"])
            .copied()
            .collect::<Vec<_>>(),
            &cache,
        );
        assert!(out.status.success(), "{method}: {}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(report["runs"][0]["start_method"], method);
        report["runs"][0]["start_us"].as_f64().unwrap_or(0.0)
    };
    let (fork, forkserver, spawn) = (start_us("fork"), start_us("forkserver"), start_us("spawn"));
    assert!(
        fork < forkserver && forkserver < spawn,
        "fork {fork} µs, forkserver {forkserver} µs, spawn {spawn} µs"
    );
}

#[test]
fn a_python_older_than_3_12_gets_a_clear_message_for_subinterpreters() {
    let cache = scratch("old-python");
    let empty = scratch("no-pyenv");
    let out = common::gilscope()
        .args([
            "run",
            "--models",
            "subinterpreters",
            "--runtime",
            "cpython",
            "--python",
            "/usr/bin/python3.11",
        ])
        .env("XDG_CACHE_HOME", &cache)
        // Nowhere to find a newer one: no PATH but the system's, no pyenv.
        .env("PATH", "/usr/bin:/bin")
        .env("PYENV_ROOT", &empty)
        .env("HOME", &empty)
        .output()
        .expect("start gilscope");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("3.11") && stderr.contains("install python3.12 or later"), "{stderr}");
}

#[test]
fn killing_gilscope_mid_subinterpreter_run_leaves_no_interpreter_process() {
    let cache = scratch("kill-subinterpreters");
    let mut app = common::gilscope()
        .args(["run", "--models", "subinterpreters", "--runtime", "cpython", "--workers", "2"])
        .args(["--iterations", "50000000", "--rounds", "1"])
        .env("XDG_CACHE_HOME", &cache)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start gilscope");
    let mut seen = Vec::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            seen = tree(app.id())
                .into_iter()
                .filter(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| c.contains("subinterpreters"))
                })
                .collect();
            !seen.is_empty()
        }),
        "the subinterpreter process never started"
    );
    // SAFETY: plain syscall on our own child.
    unsafe { libc::kill(app.id() as i32, libc::SIGKILL) };
    let _ = app.wait();
    assert!(
        wait_until(Duration::from_secs(3), || seen.iter().all(|&p| !alive(p))),
        "{seen:?} outlived gilscope"
    );
}
