//! `gilscope run`: the models one after the other, never overlapping, then
//! their figures as tables or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::cli::{ModelChoice, RunArgs};
use crate::cpython::{Calibration, Python};
use crate::experiment::plan::Plan;
use crate::experiment::run_to_end;
use crate::experiment::spec::{Experiment, Model, RunSpec, Workload};
use crate::experiment::tally::RunResult;
use crate::protocol::Runtime;

#[derive(Serialize)]
struct Report<'a> {
    gilscope: &'static str,
    workload: &'static str,
    workers: u32,
    iterations: u64,
    switch_interval_ms: f64,
    /// What one simulated loop iteration costs (calibrated or default).
    iteration_ns: f64,
    cores: u32,
    /// The workers' jobs one after another, each alone, under the first
    /// runtime: the speedups' reference (each run carries its own too).
    serial_wall_s: f64,
    runs: &'a [RunResult],
}

/// Runs everything `args` asks for; returns the text to print.
/// `python` is the interpreter already probed, when a CPython run is asked for.
pub fn execute(args: &RunArgs, python: Option<Python>) -> Result<String, String> {
    let mut runs = args.runs()?;
    let mut plan = Plan::measure()?;
    let mut notes = String::new();
    if runs.iter().any(|r| r.experiment.runtime == Runtime::Cpython) {
        let python = match python {
            Some(python) => python,
            None => Python::probe(&args.experiment.python)?,
        };
        if args.model == ModelChoice::All && !python.free_threaded_build {
            // `all` asks for whatever can run; a GIL-off CPython needs a free-threaded build.
            runs.retain(|r| r.experiment.runtime != Runtime::Cpython || r.experiment.gil);
            let _ = writeln!(
                notes,
                "no GIL-off run of the real CPython: {} is not a free-threaded build (try --python python3.13t)",
                python.describe()
            );
        }
        if Calibration::load().is_none() {
            // Without it the simulation's iterations would not cost what CPython's do.
            let calibration = Calibration::measure(&python, 1_000_000, 3)?;
            let path = calibration.store()?;
            let _ = writeln!(
                notes,
                "calibrated: {} spends {:.1} ns per loop iteration (stored in {})",
                python.describe(),
                calibration.iteration_ns,
                path.display()
            );
            for run in &mut runs {
                run.experiment.iteration_ns = calibration.iteration_ns;
            }
            if let Some(units_per_ns) = calibration.sim_units_per_ns {
                plan.units_per_ns = units_per_ns;
            }
        }
        plan.python = Some(python);
    }
    let experiment = runs[0].experiment.clone();
    // One serial reference per runtime, measured before the models, in this invocation.
    let mut baselines = Vec::new();
    for &runtime in args.experiment.runtime.runtimes() {
        // One lone thread never waits for a GIL: time it with the GIL on,
        // which any interpreter can do.
        let e = Experiment { runtime, gil: true, ..experiment.clone() };
        baselines.push((runtime, baseline(&e, &plan)?));
    }
    let baseline_of = |runtime| baselines.iter().find(|(r, _)| *r == runtime).map_or(f64::NAN, |(_, b)| *b);
    let mut results = Vec::with_capacity(runs.len());
    for spec in &runs {
        let mut result = run_to_end(spec, &plan)?;
        let serial = baseline_of(spec.experiment.runtime);
        result.serial_wall_s = Some(serial);
        result.speedup = Some(serial / result.wall_s);
        results.push(result);
    }
    let baseline = baseline_of(experiment.runtime);
    let experiment = &experiment;
    if args.json {
        let report = Report {
            gilscope: env!("CARGO_PKG_VERSION"),
            workload: experiment.workload.name(),
            workers: experiment.workers,
            iterations: experiment.iterations,
            switch_interval_ms: experiment.switch_interval.as_secs_f64() * 1e3,
            iteration_ns: experiment.iteration_ns,
            cores: crate::cli::cores(),
            serial_wall_s: baseline,
            runs: &results,
        };
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())
    } else {
        let mut text = notes;
        text.push_str(&tables(experiment, &baselines, &runs, &results));
        if baselines.len() > 1 {
            text.push_str(&fidelity(&results));
        }
        Ok(text)
    }
}

/// How far the simulation agrees with CPython, model by model.
fn fidelity(results: &[RunResult]) -> String {
    let mut out = String::from("\nsimulation vs CPython (measured interleaved, this invocation)\n");
    let _ = writeln!(
        out,
        "  {:<22}{:>10}{:>10}{:>8}   {:>10}{:>10}{:>8}",
        "model", "speedup", "", "", "cores", "", ""
    );
    let _ = writeln!(
        out,
        "  {:<22}{:>10}{:>10}{:>8}   {:>10}{:>10}{:>8}",
        "", "sim", "cpython", "ratio", "sim", "cpython", "ratio"
    );
    // Runs come in pairs: each model under the simulation, then under CPython.
    for pair in results.windows(2) {
        let [sim, real] = pair else { continue };
        if sim.runtime != "sim" || real.runtime != "cpython" || sim.model != real.model {
            continue;
        }
        let (s, c) = (sim.speedup.unwrap_or(f64::NAN), real.speedup.unwrap_or(f64::NAN));
        let _ = writeln!(
            out,
            "  {:<22}{:>9.2}×{:>9.2}×{:>8.2}   {:>10.2}{:>10.2}{:>8.2}",
            sim.label,
            s,
            c,
            s / c,
            sim.cores_used,
            real.cores_used,
            sim.cores_used / real.cores_used
        );
    }
    out
}

/// How long the workers' jobs take one after another, each alone: N × one
/// worker alone, or for `mixed` one I/O worker plus N − 1 CPU workers.
/// "Alone" is one thread in one process, timed like the models from its
/// start request to its end. Speedup = this / the model's wall time. Seconds.
fn baseline(experiment: &Experiment, plan: &Plan) -> Result<f64, String> {
    let alone = |workload| {
        let spec = RunSpec {
            experiment: Experiment { workers: 1, workload, ..experiment.clone() },
            model: Model::Threads,
        };
        run_to_end(&spec, plan).map(|r| r.wall_s).map_err(|e| format!("baseline (one worker alone): {e}"))
    };
    let n = f64::from(experiment.workers);
    Ok(match experiment.workload {
        Workload::Mixed => alone(Workload::Io)? + (n - 1.0) * alone(Workload::Cpu)?,
        w => n * alone(w)?,
    })
}

pub fn runtime_label(runtime: Runtime) -> &'static str {
    match runtime {
        Runtime::Sim => "simulated CPython",
        Runtime::Cpython => "real CPython",
    }
}

/// "4,000,000"
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn duration_label(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else if seconds >= 1e-3 {
        let ms = seconds * 1e3;
        if (ms - ms.round()).abs() < 1e-9 { format!("{ms:.0} ms") } else { format!("{ms:.1} ms") }
    } else {
        format!("{:.0} µs", seconds * 1e6)
    }
}

pub fn memory_label(kb: u64) -> String {
    if kb >= 1024 * 1024 {
        format!("{:.1} GB", kb as f64 / 1048576.0)
    } else {
        format!("{:.1} MB", kb as f64 / 1024.0)
    }
}

/// One line describing an experiment, as the header shows it.
pub fn describe(e: &Experiment) -> String {
    let work = match e.workload {
        Workload::Cpu => format!("CPU-bound: sqrt × {} per worker", thousands(e.iterations)),
        Workload::Io => format!(
            "I/O-bound: {} requests × {} per worker",
            e.requests,
            duration_label(e.io_wait.as_secs_f64())
        ),
        Workload::Mixed => {
            format!("mixed: 1 I/O worker ({} requests) beside sqrt × {}", e.requests, thousands(e.iterations))
        }
    };
    format!(
        "{work} · {} worker{} · switch {}",
        e.workers,
        if e.workers == 1 { "" } else { "s" },
        duration_label(e.switch_interval.as_secs_f64())
    )
}

fn tables(
    experiment: &Experiment,
    baselines: &[(Runtime, f64)],
    runs: &[RunSpec],
    results: &[RunResult],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "gilscope run · {} · {} cores", describe(experiment), crate::cli::cores());
    for (runtime, baseline) in baselines {
        let _ = writeln!(
            out,
            "{}: the {} workers' jobs one after another, each alone: {} (speedup = that / wall time)",
            runtime_label(*runtime),
            experiment.workers,
            duration_label(*baseline)
        );
    }
    for (spec, r) in runs.iter().zip(results) {
        let gils = if r.gil { r.processes.to_string() } else { "no".to_owned() };
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}{}  ·  {} process{} · {} worker thread{} · {gils} GIL{}",
            r.label,
            if baselines.len() > 1 {
                format!(" [{}]", runtime_label(spec.experiment.runtime))
            } else {
                String::new()
            },
            r.processes,
            if r.processes == 1 { "" } else { "es" },
            r.workers,
            if r.workers == 1 { "" } else { "s" },
            if gils == "1" { "" } else { "s" }
        );
        let mut row = |name: &str, value: String| {
            let _ = writeln!(out, "  {name:<24}{value}");
        };
        row("wall time", duration_label(r.wall_s));
        row("speedup", format!("{:.2}×", r.speedup.unwrap_or(0.0)));
        row("cores used", format!("{:.2}", r.cores_used));
        row(
            "start cost / worker",
            format!("{} (max {})", duration_label(r.start_us / 1e6), duration_label(r.start_us_max / 1e6)),
        );
        row("peak memory", memory_label(r.peak_rss_kb));
        // The real CPython's hand-overs are inferred from gaps in its progress.
        if r.runtime == "cpython" {
            row("GIL switches", format!("~{} (inferred)", if r.gil { r.gil_switches } else { 0 }));
        } else {
            row("GIL switches", r.gil_switches.to_string());
        }
        // CPython's lanes are inferred from gaps in progress: a gap is time not
        // running, a GIL wait or the OS scheduling something else.
        row(
            if r.runtime == "cpython" { "not running (inferred)" } else { "GIL wait" },
            if r.gil_waits == 0 {
                "none".to_owned()
            } else {
                format!(
                    "mean {} · max {} ({} waits)",
                    duration_label(r.gil_wait_mean_ms / 1e3),
                    duration_label(r.gil_wait_max_ms / 1e3),
                    r.gil_waits
                )
            },
        );
        if let (Some(mean), Some(max)) = (r.io_latency_mean_ms, r.io_latency_max_ms) {
            row(
                "I/O request latency",
                format!("mean {} · max {}", duration_label(mean / 1e3), duration_label(max / 1e3)),
            );
        }
    }
    // A verdict compares models under one runtime, never across runtimes.
    let mut first = true;
    for (runtime, _) in baselines {
        let same: Vec<RunResult> =
            results.iter().filter(|r| r.runtime == runtime.as_str()).cloned().collect();
        if let Some(verdict) = verdict(&same) {
            let _ = write!(out, "{}{verdict}", if first { "\n" } else { "" });
            if baselines.len() > 1 {
                let _ = write!(out, " ({})", runtime_label(*runtime));
            }
            let _ = writeln!(out);
            first = false;
        }
    }
    out
}

/// "→ multiprocessing is 1.95× faster than threading"
pub fn verdict(results: &[RunResult]) -> Option<String> {
    if results.len() < 2 {
        return None;
    }
    let fastest = results.iter().min_by(|a, b| a.wall_s.total_cmp(&b.wall_s))?;
    let slowest = results.iter().max_by(|a, b| a.wall_s.total_cmp(&b.wall_s))?;
    let ratio = slowest.wall_s / fastest.wall_s;
    Some(if ratio < 1.05 {
        format!("→ {} and {} take about as long ({ratio:.2}×)", fastest.label, slowest.label)
    } else {
        format!("→ {} is {ratio:.2}× faster than {}", fastest.label, slowest.label)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(4_000_000), "4,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(duration_label(0.005), "5 ms");
        assert_eq!(duration_label(0.0051), "5.1 ms");
        assert_eq!(duration_label(2.5), "2.50 s");
        assert_eq!(duration_label(0.000_062), "62 µs");
    }
}
