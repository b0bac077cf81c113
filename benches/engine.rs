//! The engine's figures, measured side by side in one run:
//!
//! - speedup of threads (GIL on), threads (GIL off) and processes over the
//!   workers' jobs run one after another, cpu workload, seed size;
//! - the cost of recording every GIL event (records encoded and written, as a
//!   worker does, against a recorder that drops them);
//! - the start cost per worker, thread vs process.
//!
//! `cargo bench --bench engine` (add `-- --rounds N --workers N` to change).

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use gilscope::clock::now_ns;
use gilscope::experiment::plan::Plan;
use gilscope::experiment::run_to_end;
use gilscope::experiment::spec::{Experiment, Model, RunSpec};
use gilscope::protocol::Record;
use gilscope::sim::gil::Recorder;
use gilscope::sim::interpreter::Interpreter;
use gilscope::sim::workload::{Role, WorkParams};

struct Discard;

impl Recorder for Discard {
    fn record(&self, record: Record) {
        black_box(record);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn arg(name: &str, default: u32) -> u32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> Result<(), String> {
    let rounds = arg("--rounds", 5) as usize;
    let workers = arg("--workers", 2);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let plan = Plan::with_program(PathBuf::from(env!("CARGO_BIN_EXE_gilscope")));
    let experiment = Experiment::new(workers);
    println!(
        "engine bench · {workers} workers · {cores} cores · cpu workload, {} iterations · {rounds} rounds, interleaved",
        experiment.iterations
    );

    // Speedups and start costs.
    let spec = |model, gil, n| RunSpec { experiment: Experiment { gil, workers: n, ..experiment.clone() }, model };
    let runs = [
        ("threads, GIL on", spec(Model::Threads, true, workers)),
        ("threads, GIL off", spec(Model::Threads, false, workers)),
        ("processes", spec(Model::Processes, true, workers)),
    ];
    let mut speedups = vec![Vec::new(); runs.len()];
    let mut starts = vec![Vec::new(); runs.len()];
    for _ in 0..rounds {
        let alone = run_to_end(&spec(Model::Processes, true, 1), &plan)?.wall_s;
        for (k, (_, run)) in runs.iter().enumerate() {
            let r = run_to_end(run, &plan)?;
            speedups[k].push(f64::from(workers) * alone / r.wall_s);
            starts[k].push(r.start_us);
        }
    }
    let ideal = f64::from(workers.min(cores));
    println!("\nspeedup (median of {rounds}; ideal min(N, cores) = {ideal})");
    for (k, (name, _)) in runs.iter().enumerate() {
        let s = median(speedups[k].clone());
        println!("  {name:<18} {s:>5.2}×  ({:.2} of ideal)   start cost per worker {:>7.0} µs", s / ideal, median(starts[k].clone()));
    }

    // Recording overhead: the same interpreter, records encoded and written
    // as the worker does, against records dropped on the spot.
    let interpreter = Interpreter {
        first_worker: 0,
        roles: vec![Role::Cpu; workers as usize],
        gil: true,
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
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let mut records = 0;
    for _ in 0..rounds {
        let (tx, rx) = crossbeam_channel::unbounded::<Record>();
        let writer = std::thread::spawn(move || {
            let mut out = std::io::BufWriter::new(std::io::sink());
            let mut n = 0;
            while let Ok(r) = rx.recv() {
                let _ = writeln!(out, "{r}");
                n += 1;
                if rx.is_empty() {
                    let _ = out.flush();
                }
            }
            n
        });
        let t = now_ns();
        interpreter.run(tx);
        with.push((now_ns() - t) as f64);
        records = writer.join().unwrap_or(0);
        let t = now_ns();
        interpreter.run(Discard);
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
