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
    assert!(threads < 1.3, "threads under one GIL sped up {threads}×");
    assert!(processes > 1.3 * threads, "processes {processes}× vs threads {threads}×");
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
        run(&args)["runs"][0]["io_latency_mean_ms"].as_f64().unwrap_or(0.0)
    };
    let (with_gil, without) = (latency("on"), latency("off"));
    // The convoy effect: each reply waits up to a switch interval (5 ms) for
    // the CPU thread to let go; without a GIL it is handled at once.
    assert!(without < 8.0, "a 5 ms request took {without} ms with no GIL");
    assert!(with_gil > without + 2.0, "with the GIL {with_gil} ms, without {without} ms");
}
