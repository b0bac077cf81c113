//! `gilscope run` end to end, at small sizes, and every bad flag rejected.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails
#![allow(clippy::cast_possible_wrap, clippy::similar_names)] // pids for kill(2); short names side by side

use std::process::Output;

mod common;

fn gilscope(args: &[&str]) -> Output {
    common::gilscope().args(args).output().expect("start gilscope")
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    let out = gilscope(&all);
    assert!(out.status.success(), "{all:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("--json prints one JSON object")
}

#[test]
fn run_reports_both_models_with_measured_figures() {
    let report = json(&["--workers", "2", "--iterations", "300000"]);
    let runs = report["runs"].as_array().expect("runs array");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["model"], "threads");
    assert_eq!(runs[1]["model"], "processes");
    for run in runs {
        assert_eq!(run["workers"], 2);
        for key in ["wall_s", "speedup", "cores_used", "start_us"] {
            let v = run[key].as_f64().unwrap_or(-1.0);
            assert!(v > 0.0, "{key} = {v} in {run}");
        }
        assert!(run["gil_switches"].is_u64());
    }
    // One process for threading, one per worker for multiprocessing, as the workers reported.
    assert_eq!(runs[0]["processes"], 1);
    assert_eq!(runs[1]["processes"], 2);
    // Two processes never contend for one GIL.
    assert_eq!(runs[1]["gil_switches"], 0);
    assert_eq!(runs[1]["gil_waits"], 0);
}

#[test]
fn threads_contend_for_one_gil_and_take_turns() {
    let report = json(&[
        "--model",
        "threads",
        "--workers",
        "2",
        "--iterations",
        "2000000",
        "--switch-interval",
        "1ms",
    ]);
    let run = &report["runs"][0];
    assert!(run["gil_switches"].as_u64().unwrap_or(0) >= 5, "{run}");
    // With the GIL, two CPU-bound threads use about one core between them.
    let cores = run["cores_used"].as_f64().unwrap_or(0.0);
    assert!(cores < 1.5, "threads with a GIL used {cores} cores");
}

#[test]
fn free_threaded_threads_never_wait_for_a_gil() {
    let report = json(&["--model", "threads", "--gil", "off", "--workers", "2", "--iterations", "300000"]);
    let run = &report["runs"][0];
    assert_eq!(run["gil"], false);
    assert_eq!(run["gil_waits"], 0);
    assert_eq!(run["gil_switches"], 0);
}

#[test]
fn io_workload_reports_request_latency() {
    let report = json(&[
        "--workload",
        "io",
        "--workers",
        "2",
        "--requests",
        "3",
        "--io-wait",
        "5ms",
        "--model",
        "threads",
    ]);
    let latency = report["runs"][0]["io_latency_ms"]["mean"].as_f64().expect("latency");
    assert!(latency >= 5.0, "a 5 ms request took {latency} ms");
}

#[test]
fn mixed_and_hybrid_and_all_run() {
    let report = json(&[
        "--workload",
        "mixed",
        "--model",
        "all",
        "--workers",
        "4",
        "--iterations",
        "200000",
        "--requests",
        "2",
        "--io-wait",
        "2ms",
    ]);
    let models: Vec<String> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(models, ["threading", "threading (GIL off)", "multiprocessing", "hybrid 2×2"]);
}

#[test]
fn the_table_names_the_winner() {
    let out = gilscope(&["run", "--workers", "2", "--iterations", "300000"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["threading", "multiprocessing", "wall time", "speedup", "start cost", "GIL switches", "→"]
    {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
}

#[test]
fn every_bad_flag_gets_one_line_naming_it_and_exit_2() {
    for (args, flag) in [
        (&["run", "--workers", "0"][..], "--workers"),
        (&["run", "--workers", "many"], "--workers"),
        (&["run", "--workers", "100000"], "--workers"),
        (&["run", "--iterations", "-5"], "--iterations"),
        (&["run", "--iterations", "0"], "--iterations"),
        (&["run", "--switch-interval", "0"], "--switch-interval"),
        (&["run", "--switch-interval", "5 parsecs"], "--switch-interval"),
        (&["run", "--switch-interval", "2s"], "--switch-interval"),
        (&["run", "--workload", "gpu"], "--workload"),
        (&["run", "--model", "fibers"], "--model"),
        (&["run", "--gil", "maybe"], "--gil"),
        (&["run", "--pace", "0"], "--pace"),
        (&["run", "--requests", "0"], "--requests"),
        (&["run", "--io-wait", "-1ms"], "--io-wait"),
        (&["run", "--model", "hybrid", "--workers", "3", "--processes", "2"], "--processes"),
        (&["run", "--frobnicate"], "--frobnicate"),
        (&["--workers", "x"], "--workers"),
    ] {
        let out = gilscope(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?} printed more than one line:\n{err}");
        assert!(err.contains(flag), "{args:?}: {err:?} does not name {flag}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn the_worker_subcommand_is_hidden_from_help() {
    let out = gilscope(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("run"), "{help}");
    assert!(!help.lines().any(|l| l.trim_start().starts_with("worker")), "{help}");
}

#[test]
fn many_short_lived_worker_processes_all_start() {
    // Early workers finish while later ones are still being spawned into their group.
    let report = json(&["--model", "processes", "--workers", "64", "--iterations", "1000"]);
    assert_eq!(report["runs"][0]["processes"], 64);
}

/// Runs gilscope with its stdout read by `reader` (which may stop reading
/// early); its exit status and stderr.
fn with_reader(
    args: &[&str],
    reader: impl FnOnce(std::process::ChildStdout),
) -> (std::process::ExitStatus, String) {
    let mut child = common::gilscope()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start gilscope");
    reader(child.stdout.take().expect("piped stdout"));
    let out = child.wait_with_output().expect("wait for gilscope");
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_closed_stdout_ends_quietly_not_with_a_panic() {
    use std::io::BufRead;
    let run: &[&str] = &["run", "--workers", "1", "--iterations", "1000"];
    let calibrate: &[&str] = &["calibrate", "--iterations", "10000"];
    for args in [run, calibrate] {
        // `gilscope … | true`: nobody reads at all.
        let (status, err) = with_reader(args, drop);
        assert!(matches!(status.code(), Some(0 | 141)), "{args:?} | true: {status} {err}");
        assert!(err.is_empty(), "{args:?} | true said: {err}");
        // `gilscope … | head -1`: one line read, then the pipe closes.
        let (status, err) = with_reader(args, |out| {
            let mut line = String::new();
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        });
        assert!(matches!(status.code(), Some(0 | 141)), "{args:?} | head -1: {status} {err}");
        assert!(err.is_empty(), "{args:?} | head -1 said: {err}");
    }
}
