//! The convoy effect's latency, simulated beside real `CPython`: the
//! simulation's `mixed` interpreter run in-process, and
//! `benches/convoy_referee.py` (plain Python, no gilscope code) as the
//! referee, interleaved round by round (sim, `CPython`, sim, `CPython`…).
//!
//! A request's latency runs from the I/O worker's request to the moment it
//! holds the GIL again. Only requests made while every CPU worker was in its
//! loop count (after the last one started, before the first one finished),
//! so both runtimes are measured under the same contention.
//!
//! `cargo bench --bench convoy [-- --rounds 5 --requests 200 --io-wait-ms 1
//!  --cpu 1,3 --interval-ms 1,5,20 --python python3,python3.12 --sim-only
//!  --progress-ms 10]`
//!
//! By default the simulated workers send no progress records: the bare
//! engine beside the bare referee. `--progress-ms 10` has each send one per
//! 10 ms of work, as in `gilscope run` (whose real-CPython workers flush
//! their records about every 15 ms). Any thread woken beside a hand-over
//! moves the 3-thread tail: at 3 × 20 ms the bare engine's pooled p99 was
//! 168 ms against the referee's 287, and 275 against 213 with the records.
//!
//! With several interpreters the referee runs under each in turn, every
//! round: how far `CPython`'s own versions differ is the scale against which
//! the simulation's distance means something.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a bench stops where it fails

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gilscope::cpython::Python;
use gilscope::experiment::calibration::Calibration;
use gilscope::experiment::spec::DEFAULT_REPLY_ITERATIONS;
use gilscope::experiment::stats::Spread;
use gilscope::protocol::Record;
use gilscope::sim::interpreter::Interpreter;
use gilscope::sim::workload::{Role, WorkParams};

const REFEREE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/convoy_referee.py");

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn list(name: &str, default: &[u64]) -> Vec<u64> {
    arg(name).map_or_else(|| default.to_vec(), |v| v.split(',').filter_map(|x| x.parse().ok()).collect())
}

/// The q-quantile by the nearest-rank rule, as the referee computes it.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

/// One run's figures, in ms.
#[derive(Clone)]
struct Figures {
    mean: f64,
    p50: f64,
    p99: f64,
    requests: usize,
    /// Wall time of the I/O worker's requests, s.
    elapsed_s: f64,
    /// Every counted request's latency, sorted.
    sorted_ms: Vec<f64>,
}

fn figures(mut ms: Vec<f64>, elapsed_s: f64) -> Figures {
    ms.sort_by(f64::total_cmp);
    Figures {
        mean: ms.iter().sum::<f64>() / ms.len().max(1) as f64,
        p50: percentile(&ms, 0.5),
        p99: percentile(&ms, 0.99),
        requests: ms.len(),
        elapsed_s,
        sorted_ms: ms,
    }
}

/// The simulation: worker 0 does I/O, workers 1..=cpu run `iterations` of
/// the sqrt loop each, recording their progress every `progress_every`.
fn simulate(
    cpu: u32,
    interval: Duration,
    io_wait: Duration,
    requests: u32,
    units: u32,
    iterations: u64,
    progress_every: u64,
) -> Figures {
    let mut roles = vec![Role::Io];
    roles.extend(std::iter::repeat_n(Role::Cpu, cpu as usize));
    let interpreter = Interpreter {
        first_worker: 0,
        roles,
        gil: true,
        own_gils: false,
        switch_interval: interval,
        params: WorkParams {
            iterations,
            units,
            requests,
            io_wait,
            reply_iterations: DEFAULT_REPLY_ITERATIONS,
            progress_every,
        },
        process_requested_at: None,
        interpreter_start: Duration::ZERO,
    };
    // Records go through a channel to another thread, as in a worker process.
    let records = common::records_of(&interpreter);
    let (mut last_start, mut first_finish) = (0, u64::MAX);
    for r in &records {
        match *r {
            Record::Started { t, worker, .. } if worker > 0 => last_start = last_start.max(t),
            Record::Finished { t, worker } if worker > 0 => first_finish = first_finish.min(t),
            _ => {}
        }
    }
    let mut spans = (u64::MAX, 0);
    let latencies: Vec<f64> = records
        .iter()
        .filter_map(|r| match *r {
            Record::Reply { t, latency_ns, .. } if t - latency_ns >= last_start && t <= first_finish => {
                spans = (spans.0.min(t - latency_ns), spans.1.max(t));
                Some(latency_ns as f64 / 1e6)
            }
            _ => None,
        })
        .collect();
    figures(latencies, spans.1.saturating_sub(spans.0) as f64 / 1e9)
}

fn referee(python: &Path, cpu: u32, interval: Duration, io_wait: Duration, requests: u32) -> Figures {
    let out = Command::new(python)
        .arg(REFEREE)
        .args(["--cpu-threads", &cpu.to_string()])
        .args(["--switch-interval-s", &interval.as_secs_f64().to_string()])
        .args(["--io-wait-s", &io_wait.as_secs_f64().to_string()])
        .args(["--requests", &requests.to_string()])
        .args(["--reply-iterations", &DEFAULT_REPLY_ITERATIONS.to_string()])
        .output()
        .expect("python3 runs the referee");
    assert!(out.status.success(), "referee: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the referee prints JSON");
    assert_eq!(v["all_busy"], true, "the referee's CPU threads were not all busy");
    let ms = v["latencies_ns"]
        .as_array()
        .expect("latencies")
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .map(|x| x / 1e6)
        .collect();
    figures(ms, v["elapsed_s"].as_f64().unwrap_or(0.0))
}

fn main() -> Result<(), String> {
    let rounds = arg("--rounds").and_then(|v| v.parse().ok()).unwrap_or(5);
    let requests = arg("--requests").and_then(|v| v.parse().ok()).unwrap_or(200);
    let io_wait = Duration::from_micros(
        arg("--io-wait-ms").and_then(|v| v.parse::<f64>().ok()).map_or(1000, |ms| (ms * 1e3) as u64),
    );
    let cpus = list("--cpu", &[1, 3]);
    let intervals = list("--interval-ms", &[1, 5, 20]);
    let sim_only = std::env::args().any(|a| a == "--sim-only");
    let progress_ms: Option<f64> = arg("--progress-ms").and_then(|v| v.parse().ok());

    let pythons = arg("--python")
        .unwrap_or_else(|| "python3".to_owned())
        .split(',')
        .map(|p| Python::probe(Path::new(p)))
        .collect::<Result<Vec<_>, _>>()?;
    // The simulation is calibrated on the first.
    let python = &pythons[0];
    let calibration = Calibration::measure(python, 2_000_000, 3)?;
    let iteration_ns = calibration.iteration_ns;
    let units = ((iteration_ns * calibration.sim_units_per_ns.unwrap_or(1.0)).round() as u32).max(1);
    let progress_every = progress_ms.map_or(1 << 40, |ms| ((ms * 1e6 / iteration_ns) as u64).max(1));
    println!(
        "convoy bench · {} · {iteration_ns:.1} ns per iteration · {requests} requests × {} ms wait · {rounds} rounds, interleaved",
        pythons.iter().map(Python::describe).collect::<Vec<_>>().join(", "),
        io_wait.as_secs_f64() * 1e3
    );

    let configs: Vec<(u32, Duration)> = cpus
        .iter()
        .flat_map(|&c| intervals.iter().map(move |&ms| (c as u32, Duration::from_millis(ms))))
        .collect();
    let mut sim: Vec<Vec<Figures>> = vec![Vec::new(); configs.len()];
    let names: Vec<String> = pythons.iter().map(|p| format!("CPython {}", p.version)).collect();
    // real[p][k]: interpreter p, configuration k.
    let mut real: Vec<Vec<Vec<Figures>>> = vec![vec![Vec::new(); configs.len()]; pythons.len()];
    let show = |f: Option<&Figures>| f.map_or("—".to_owned(), |f| format!("{:.1} / {:.1}", f.mean, f.p99));
    for round in 0..rounds {
        for (k, &(cpu, interval)) in configs.iter().enumerate() {
            let busy = common::wait_for_quiet(3, Duration::from_mins(10));
            let mut said = Vec::new();
            if !sim_only {
                for (p, py) in pythons.iter().enumerate() {
                    real[p][k].push(referee(&py.path, cpu, interval, io_wait, requests));
                    said.push(format!("{} {}", names[p], show(real[p][k].last())));
                }
            }
            // Enough CPU work per thread to outlast the requests: the
            // referee's wall time for them (or a guess), shared by `cpu`
            // threads, and 40 % more.
            let guess =
                f64::from(requests) * (io_wait.as_secs_f64() + f64::from(cpu + 1) * interval.as_secs_f64());
            let elapsed = real.iter().filter_map(|r| r[k].last()).map(|f| f.elapsed_s).fold(guess, f64::max);
            let work_s = 1.4 * elapsed / f64::from(cpu);
            sim[k].push(simulate(
                cpu,
                interval,
                io_wait,
                requests,
                units,
                (work_s * 1e9 / iteration_ns) as u64,
                progress_every,
            ));
            eprintln!(
                "round {round}: {cpu} cpu × {} ms · mean / p99 ms: sim {} · {} · {busy} runnable before",
                interval.as_millis(),
                show(sim[k].last()),
                if said.is_empty() { "CPython —".to_owned() } else { said.join(" · ") }
            );
        }
    }

    report(rounds, &configs, &sim, &real, &names);
    Ok(())
}

/// The median of a figure over rounds, with its least and most.
fn stat(runs: &[Figures], f: fn(&Figures) -> f64) -> String {
    let v: Vec<f64> = runs.iter().map(f).collect();
    Spread::of(&v).map_or("—".to_owned(), |s| format!("{:.1} ({:.1}–{:.1})", s.median, s.min, s.max))
}

/// Every round's requests taken together, sorted.
fn pooled(runs: &[Figures]) -> Vec<f64> {
    let mut all: Vec<f64> = runs.iter().flat_map(|f| f.sorted_ms.iter().copied()).collect();
    all.sort_by(f64::total_cmp);
    all
}

/// One row per configuration and runtime: medians over rounds (min–max),
/// and the p99 and maximum of every round's requests pooled, which one late
/// wake-up moves less than one run's p99 (its second or third slowest
/// request). The last column compares each pooled p99 with the first
/// interpreter's.
fn report(
    rounds: usize,
    configs: &[(u32, Duration)],
    sim: &[Vec<Figures>],
    real: &[Vec<Vec<Figures>>],
    names: &[String],
) {
    println!(
        "
ms; medians over {rounds} rounds (min–max); pooled: every round's requests together"
    );
    println!(
        "  {:<12}{:<16}{:>22}{:>22}{:>20}{:>12}{:>10}{:>7}{:>12}",
        "cpu × int.", "runtime", "mean", "p99", "p50", "pooled p99", "max", "n", "÷ first"
    );
    for (k, &(cpu, interval)) in configs.iter().enumerate() {
        let first = real.first().map(|r| percentile(&pooled(&r[k]), 0.99));
        let runtimes = std::iter::once(("sim".to_owned(), &sim[k]))
            .chain(names.iter().zip(real).map(|(n, r)| (n.clone(), &r[k])))
            .filter(|(_, runs)| !runs.is_empty());
        for (name, runs) in runtimes {
            let all = pooled(runs);
            let p99 = percentile(&all, 0.99);
            println!(
                "  {:<12}{:<16}{:>22}{:>22}{:>20}{:>12.1}{:>10.1}{:>7}{:>12}",
                format!("{cpu} × {} ms", interval.as_millis()),
                name,
                stat(runs, |f| f.mean),
                stat(runs, |f| f.p99),
                stat(runs, |f| f.p50),
                p99,
                all.last().copied().unwrap_or(f64::NAN),
                runs.iter().map(|f| f.requests).min().unwrap_or(0),
                first.filter(|f| f.is_finite()).map_or("—".to_owned(), |f| format!("{:.2}", p99 / f)),
            );
        }
    }
}
