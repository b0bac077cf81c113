//! The engine's figures, measured side by side in one run:
//!
//! - speedup of threads (GIL on), threads (GIL off) and processes over the
//!   workers' jobs run one after another (one worker alone, × N), cpu
//!   workload, 4,000,000 iterations;
//! - the cost of recording every GIL event (records encoded and written, as a
//!   worker does, against a recorder that drops them);
//! - the start cost per worker, thread vs process;
//! - with `--cpython`: the same models under the real python3, interleaved
//!   with the simulated ones, and the median running span under contention.
//!
//! `cargo bench --bench engine [-- --rounds N --workers N --cpython]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails
#![allow(clippy::cast_possible_wrap, clippy::similar_names)] // pids for kill(2); short names side by side

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gilscope::clock::now_ns;
use gilscope::cpython::Python;
use gilscope::experiment::calibration::Calibration;
use gilscope::experiment::plan::Plan;
use gilscope::experiment::run_tally;
use gilscope::experiment::spec::{Experiment, Model, RunSpec};
use gilscope::protocol::{Record, Runtime};
use gilscope::scenario;
use gilscope::sim::gil::Recorder;
use gilscope::sim::interpreter::{Interpreter, StartGun};
use gilscope::sim::workload::{Role, WorkParams};

#[derive(Clone)]
struct Discard;

/// A sink that counts the lines written to it.
struct Lines(u64);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // A few thousand records a run: no need for a faster count.
        #[allow(clippy::naive_bytecount)]
        let lines = buf.iter().filter(|b| **b == b'\n').count() as u64;
        self.0 += lines;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Recorder for Discard {
    fn record(&self, record: Record) {
        black_box(record);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn arg(name: &str, default: u32) -> u32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Row {
    name: String,
    spec: RunSpec,
    speedups: Vec<f64>,
    cores: Vec<f64>,
    starts: Vec<f64>,
    spans: Vec<f64>,
}

#[allow(clippy::too_many_lines)] // one measurement, read top to bottom
fn main() -> Result<(), String> {
    let rounds = arg("--rounds", 5) as usize;
    let workers = arg("--workers", 2);
    let with_cpython = std::env::args().any(|a| a == "--cpython");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let mut plan = Plan::with_program(PathBuf::from(env!("CARGO_BIN_EXE_gilscope")));
    let mut experiment = Experiment::new(workers);
    let mut runtimes = vec![Runtime::Sim];
    if with_cpython {
        let python = Python::probe(Path::new("python3"))?;
        // Measured now, not read from the cache: the machine's speed drifts.
        let calibration = Calibration::measure(&python, experiment.iterations, 3)?;
        println!("calibration: {} ns per iteration ({})", calibration.iteration_ns, python.describe());
        experiment.iteration_ns = calibration.iteration_ns;
        plan.calibrated(calibration);
        plan.python = Some(python);
        runtimes.push(Runtime::Cpython);
    }
    println!(
        "engine bench · {workers} workers · {cores} cores · cpu workload, {} iterations · {rounds} rounds, interleaved",
        experiment.iterations
    );

    let spec = |model, gil, n, runtime| RunSpec {
        experiment: Experiment { gil, workers: n, runtime, ..experiment.clone() },
        model,
    };
    let mut rows = Vec::new();
    for (name, model, gil) in [
        ("threads, GIL on", Model::Threads, true),
        ("threads, GIL off", Model::Threads, false),
        ("processes", Model::Processes, true),
    ] {
        for &runtime in &runtimes {
            if runtime == Runtime::Cpython && !gil {
                continue; // python3 here is not a free-threaded build
            }
            rows.push(Row {
                name: format!("{name} [{}]", runtime.as_str()),
                spec: spec(model, gil, workers, runtime),
                speedups: Vec::new(),
                cores: Vec::new(),
                starts: Vec::new(),
                spans: Vec::new(),
            });
        }
    }
    for _ in 0..rounds {
        let mut alone = Vec::new();
        for &runtime in &runtimes {
            let t = run_tally(&spec(Model::Threads, true, 1, runtime), &plan)?;
            alone.push((runtime, t.result().ok_or("no result")?.wall_s));
        }
        for row in &mut rows {
            let tally = run_tally(&row.spec, &plan)?;
            let r = tally.result().ok_or("no result")?;
            let base =
                alone.iter().find(|(rt, _)| *rt == row.spec.experiment.runtime).map_or(f64::NAN, |a| a.1);
            row.speedups.push(f64::from(workers) * base / r.wall_s);
            row.cores.push(r.cores_used);
            row.starts.push(r.start_us);
            // The median GIL hold of this round (ms), from the tally's histogram.
            row.spans.extend(tally.holds.percentile_ns(50.0).map(|ns| ns / 1e6));
        }
    }
    let ideal = f64::from(workers.min(cores));
    println!("\nmedians of {rounds} rounds; ideal speedup min(N, cores) = {ideal}");
    println!(
        "  {:<28}{:>9}{:>11}{:>8}{:>14}{:>16}",
        "model", "speedup", "of ideal", "cores", "start/worker", "running span"
    );
    for row in &rows {
        let s = median(row.speedups.clone());
        let span = median(row.spans.clone());
        println!(
            "  {:<28}{:>8.2}×{:>11.2}{:>8.2}{:>11.0} µs{:>13}",
            row.name,
            s,
            s / ideal,
            median(row.cores.clone()),
            median(row.starts.clone()),
            if span.is_nan() { "—".to_owned() } else { format!("{span:.2} ms") }
        );
    }
    if with_cpython {
        println!("\nsimulated / CPython speedup");
        for pair in rows.windows(2).filter(|p| {
            p[0].spec.experiment.runtime == Runtime::Sim
                && p[1].spec.experiment.runtime == Runtime::Cpython
                && p[0].spec.model == p[1].spec.model
        }) {
            let (s, c) = (median(pair[0].speedups.clone()), median(pair[1].speedups.clone()));
            println!("  {:<28}{:>6.2} ({:+.1} %)", pair[0].name, s / c, (s / c - 1.0) * 100.0);
        }
    }

    // Recording overhead: the same interpreter, records encoded and written
    // as the worker does (its own writer, into a sink), against records
    // dropped on the spot.
    let interpreter = Interpreter {
        first_worker: 0,
        roles: vec![Role::Cpu; workers as usize],
        gil: true,
        own_gils: false,
        switch_interval: Duration::from_millis(5),
        params: WorkParams {
            iterations: experiment.iterations,
            units: ((experiment.iteration_ns * plan.units_per_ns).round() as u32).max(1),
            requests: 0,
            io_wait: Duration::ZERO,
            reply_iterations: 0,
            progress_every: experiment.progress_every(),
        },
        process_requested_at: None,
        interpreter_start: Duration::ZERO,
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let mut records = 0;
    for _ in 0..rounds {
        let (tx, rx) = crossbeam_channel::bounded::<Record>(64 * 1024);
        let writer = std::thread::spawn(move || {
            let mut out = Lines(0);
            let hello = scenario::sim_header(1, 0, 1);
            gilscope::worker::write_stream(&mut out, &hello, &rx);
            out.0.saturating_sub(1)
        });
        let gun = Arc::new(StartGun::fired());
        let t = now_ns();
        interpreter.run(&tx, &gun)?;
        drop(tx); // the writer drains and ends
        writer.thread().unpark(); // it polls: have it look now
        with.push((now_ns() - t) as f64);
        records = writer.join().unwrap_or(0);
        let t = now_ns();
        interpreter.run(&Discard, &gun)?;
        without.push((now_ns() - t) as f64);
    }
    let (w, wo) = (median(with), median(without));
    println!(
        "\nrecording every GIL event: {:.1} ms with, {:.1} ms without → overhead {:+.2} % ({records} records per run)",
        w / 1e6,
        wo / 1e6,
        (w / wo - 1.0) * 100.0
    );
    Ok(())
}
