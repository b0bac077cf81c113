//! What starting threads costs, simulated beside real `CPython`: the
//! simulation's interpreter run in-process, and `benches/start_referee.py`
//! (plain Python, no gilscope code) as the referee, interleaved round by
//! round (sim, `CPython`, sim, `CPython`…).
//!
//! N threads run the sqrt loop. For each, the time from the first start
//! request to its first loop iteration (the simulation's `Started` records),
//! and the start cost per thread as gilscope shows it: (first iteration of
//! the last thread − first start request) / N.
//!
//! `cargo bench --bench thread_start [-- --rounds 5 --threads 2,4 --interval-ms 1,5,20]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a bench stops where it fails

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gilscope::cpython::Python;
use gilscope::experiment::calibration::Calibration;
use gilscope::protocol::Record;
use gilscope::sim::interpreter::Interpreter;
use gilscope::sim::workload::{Role, WorkParams};

const REFEREE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/start_referee.py");
/// Enough work that every thread is still busy when the last one starts.
const ITERATIONS: u64 = 4_000_000;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn list(name: &str, default: &[u64]) -> Vec<u64> {
    arg(name).map_or_else(|| default.to_vec(), |v| v.split(',').filter_map(|x| x.parse().ok()).collect())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

/// Each thread's first iteration, in ms after the first start request.
fn simulate(threads: u32, interval: Duration, units: u32) -> Vec<f64> {
    let interpreter = Interpreter {
        first_worker: 0,
        roles: vec![Role::Cpu; threads as usize],
        gil: true,
        own_gils: false,
        switch_interval: interval,
        params: WorkParams {
            iterations: ITERATIONS,
            units,
            requests: 0,
            io_wait: Duration::ZERO,
            reply_iterations: 0,
            progress_every: 1 << 40,
        },
        process_requested_at: None,
        interpreter_start: Duration::ZERO,
    };
    let mut started: Vec<(u32, u64, u64)> = common::records_of(&interpreter)
        .into_iter()
        .filter_map(|r| match r {
            Record::Started { t, worker, requested } => Some((worker, t, requested)),
            _ => None,
        })
        .collect();
    started.sort_unstable();
    let first_request = started.iter().map(|s| s.2).min().unwrap_or(0);
    started.iter().map(|s| (s.1 - first_request) as f64 / 1e6).collect()
}

fn referee(python: &Path, threads: u32, interval: Duration) -> Vec<f64> {
    let out = Command::new(python)
        .arg(REFEREE)
        .args(["--threads", &threads.to_string()])
        .args(["--switch-interval-s", &interval.as_secs_f64().to_string()])
        .args(["--iterations", &ITERATIONS.to_string()])
        .output()
        .expect("python3 runs the referee");
    assert!(out.status.success(), "referee: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the referee prints JSON");
    v["first_iteration_ns"]
        .as_array()
        .expect("first iterations")
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .map(|ns| ns / 1e6)
        .collect()
}

/// "median (min–max)" of one figure over the rounds.
fn stat(v: &[f64]) -> String {
    if v.is_empty() {
        return "—".to_owned();
    }
    let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    format!("{:.1} ({:.1}–{:.1})", median(v.to_vec()), lo, hi)
}

fn main() -> Result<(), String> {
    let rounds: usize = arg("--rounds").and_then(|v| v.parse().ok()).unwrap_or(5);
    let counts = list("--threads", &[2, 4]);
    let intervals = list("--interval-ms", &[1, 5, 20]);

    let python = Python::probe(Path::new("python3"))?;
    let calibration = Calibration::measure(&python, 2_000_000, 3)?;
    let units =
        ((calibration.iteration_ns * calibration.sim_units_per_ns.unwrap_or(1.0)).round() as u32).max(1);
    println!(
        "thread start bench · {} · {:.1} ns per iteration · {rounds} rounds, interleaved",
        python.describe(),
        calibration.iteration_ns
    );

    let configs: Vec<(u32, Duration)> = counts
        .iter()
        .flat_map(|&n| intervals.iter().map(move |&ms| (n as u32, Duration::from_millis(ms))))
        .collect();
    // [config][round] → first iterations, ms
    let mut sim: Vec<Vec<Vec<f64>>> = vec![Vec::new(); configs.len()];
    let mut real: Vec<Vec<Vec<f64>>> = vec![Vec::new(); configs.len()];
    for round in 0..rounds {
        for (k, &(n, interval)) in configs.iter().enumerate() {
            let busy = common::wait_for_quiet(3, Duration::from_mins(10));
            sim[k].push(simulate(n, interval, units));
            real[k].push(referee(&python.path, n, interval));
            let last = |runs: &[Vec<f64>]| runs.last().map_or(0.0, |r| r.iter().copied().fold(0.0, f64::max));
            eprintln!(
                "round {round}: {n} × {} ms · last thread's first iteration: sim {:.1} ms · CPython {:.1} ms · {busy} runnable before",
                interval.as_millis(),
                last(&sim[k]),
                last(&real[k])
            );
        }
    }

    println!("\nms after the first start request, medians over {rounds} rounds (min–max)");
    println!("  {:<18}{:<8}{:>24}{:>24}", "threads × switch", "thread", "sim", "CPython");
    for (k, &(n, interval)) in configs.iter().enumerate() {
        let label = format!("{n} × {} ms", interval.as_millis());
        for thread in 0..n as usize {
            let pick =
                |runs: &[Vec<f64>]| runs.iter().filter_map(|r| r.get(thread).copied()).collect::<Vec<_>>();
            println!(
                "  {:<18}{:<8}{:>24}{:>24}",
                if thread == 0 { label.as_str() } else { "" },
                format!("{thread}"),
                stat(&pick(&sim[k])),
                stat(&pick(&real[k]))
            );
        }
        let per_thread = |runs: &[Vec<f64>]| {
            runs.iter().map(|r| r.iter().copied().fold(0.0, f64::max) / f64::from(n)).collect::<Vec<_>>()
        };
        println!(
            "  {:<18}{:<8}{:>24}{:>24}",
            "",
            "cost/N",
            stat(&per_thread(&sim[k])),
            stat(&per_thread(&real[k]))
        );
    }
    Ok(())
}
