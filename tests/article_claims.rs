//! The claims of the article gilscope comes from (threads or processes?),
//! measured end to end by `gilscope run` on this machine.
//! These tests compare timings, so they run one at a time (a lock), each
//! comparing two runs of one invocation, with margins far from the edges.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails
#![allow(clippy::cast_possible_wrap, clippy::similar_names)] // pids for kill(2); short names side by side

use std::sync::Mutex;

mod common;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    let out = common::gilscope().args(&all).output().expect("start gilscope");
    assert!(out.status.success(), "{all:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

#[test]
fn cpu_bound_work_speeds_up_with_processes_not_threads() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    assert!(cores() >= 2, "this claim needs 2 cores; the machine has {}", cores());
    let report = run(&["--workers", "2", "--iterations", "3000000"]);
    let speedup = |i: usize| report["runs"][i]["speedup"].as_f64().unwrap_or(0.0);
    let (threads, processes) = (speedup(0), speedup(1));
    let clean = report["runs"].as_array().is_some_and(|runs| runs.iter().all(|r| r["clean"] == true));
    if clean {
        assert!(threads < 1.3, "threads under one GIL sped up {threads}×");
        assert!(processes > 1.3 * threads, "processes {processes}× vs threads {threads}×");
    } else {
        // Other work on the machine took the cores: gilscope must say so, not judge.
        let verdict = report["verdict"][0].as_str().unwrap_or("");
        assert!(verdict.starts_with("→ no verdict"), "unclean runs, yet: {verdict}");
    }
}

#[test]
fn io_bound_work_speeds_up_with_threads_too() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let report = run(&["--workload", "io", "--workers", "4", "--requests", "5", "--io-wait", "20ms"]);
    let threads = report["runs"][0]["speedup"].as_f64().unwrap_or(0.0);
    // Four workers that mostly wait overlap their waits: far better than one at a time.
    assert!(threads > 2.5, "threads on I/O-bound work: {threads}×");
}

#[test]
fn an_io_thread_beside_a_cpu_thread_waits_for_the_gil_after_each_request() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let latency = |gil: &str| {
        let args = [
            "--workload",
            "mixed",
            "--model",
            "threads",
            "--workers",
            "2",
            "--requests",
            "10",
            "--io-wait",
            "5ms",
            "--iterations",
            "6000000",
            "--gil",
            gil,
        ];
        run(&args)["runs"][0]["io_latency_ms"]["mean"].as_f64().unwrap_or(0.0)
    };
    let (with_gil, without) = (latency("on"), latency("off"));
    // The convoy effect: each reply waits up to a switch interval (5 ms) for
    // the CPU thread to let go; without a GIL it is handled at once.
    assert!(without < 8.0, "a 5 ms request took {without} ms with no GIL");
    assert!(with_gil > without + 2.0, "with the GIL {with_gil} ms, without {without} ms");
}

#[test]
fn a_machine_busy_with_other_work_is_flagged_and_gets_no_verdict() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // A hog outside gilscope's process tree: a core spinning all along.
    let mut hog =
        std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn().expect("sh runs");
    let report = run(&["--workers", "2", "--iterations", "2000000", "--rounds", "1"]);
    let _ = hog.kill();
    let _ = hog.wait();
    for run in report["runs"].as_array().expect("runs") {
        let outside = run["outside_load"].as_f64().unwrap_or(0.0);
        assert!(outside > 0.4, "a spinning core beside the run showed as {outside} cores: {run}");
        assert_eq!(run["clean"], false, "{run}");
        assert!(run["doubts"][0].as_str().unwrap_or("").contains("busy"), "{run}");
    }
    let verdict = report["verdict"][0].as_str().unwrap_or("");
    assert!(verdict.starts_with("→ no verdict"), "{verdict}");
}

#[test]
fn every_run_carries_its_spread_limit_cores_and_load_and_io_runs_their_latency() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let report = run(&["--workers", "2", "--iterations", "500000", "--rounds", "3"]);
    assert_eq!(report["rounds"], 3);
    for run in report["runs"].as_array().expect("runs") {
        for key in ["speedup", "speedup_min", "speedup_max", "speedup_limit", "cores_used", "outside_load"] {
            assert!(run[key].is_f64(), "{key} in {run}");
        }
        assert_eq!(run["rounds"], 3);
        assert!(run["clean"].is_boolean());
        let (lo, mid, hi) =
            (run["speedup_min"].as_f64(), run["speedup"].as_f64(), run["speedup_max"].as_f64());
        assert!(lo <= mid && mid <= hi, "{run}");
        assert_eq!(run["speedup_limit"], 2.0);
        // How fast its CPU seconds worked: the speedup over the cores used.
        let speed = run["work_speed"].as_f64().expect("work_speed of a CPU-bound run");
        let expected = mid.unwrap_or(0.0) / run["cores_used"].as_f64().unwrap_or(1.0);
        assert!((speed - expected).abs() < 1e-9, "{run}");
    }
    let io = run(&[
        "--workload",
        "mixed",
        "--workers",
        "2",
        "--requests",
        "5",
        "--io-wait",
        "5ms",
        "--rounds",
        "1",
    ]);
    for run in io["runs"].as_array().expect("runs") {
        let latency = &run["io_latency_ms"];
        for key in ["mean", "p50", "p99", "max"] {
            assert!(latency[key].as_f64().is_some_and(|v| v > 0.0), "{key} in {run}");
        }
        assert!(latency["requests"].as_u64().is_some_and(|n| n >= 1), "{run}");
        assert!(run["work_speed"].is_null(), "waiting uses no CPU: no work speed for I/O: {run}");
    }
}

#[test]
fn speedup_compares_with_the_workers_jobs_run_one_after_another() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // Two threads under one GIL do the work of two lone workers in about the
    // time of two lone workers: a speedup near 1, whatever the cores.
    // One round: the speedup is that round's baseline ÷ its wall time.
    let report = run(&["--model", "threads", "--workers", "2", "--iterations", "2000000", "--rounds", "1"]);
    let run = &report["runs"][0];
    let speedup = run["speedup"].as_f64().unwrap_or(0.0);
    // Unless something else slowed the baseline, which gilscope then says.
    if run["clean"] == true {
        assert!((0.6..1.5).contains(&speedup), "threads under a GIL: speedup {speedup}");
    } else {
        assert!(
            run["doubts"][0].as_str().is_some_and(|d| d.contains("busy") || d.contains("impossible")),
            "{run}"
        );
    }
    let baseline = run["baseline_s"].as_f64().unwrap_or(0.0);
    let wall = run["wall_s"].as_f64().unwrap_or(0.0);
    assert!((speedup - baseline / wall).abs() < 1e-9, "speedup is baseline / wall");
    assert_eq!(report["baseline_s"], run["baseline_s"]);
}
