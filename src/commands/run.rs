//! `gilscope run`: the models one after the other, never overlapping, then
//! their figures as tables or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::cli::RunArgs;
use crate::commands::say;
use crate::cpython::Python;
use crate::experiment::baseline::{self, Baseline};
use crate::experiment::calibration::Calibration;
use crate::experiment::matrix;
use crate::experiment::plan::Plan;
use crate::experiment::run_to_end;
use crate::experiment::spec::{Experiment, RunSpec};
use crate::experiment::tally::RunResult;
use crate::experiment::verdict::verdict;
use crate::format::{duration_label, memory_label};
use crate::protocol::Runtime;

/// What `--json` prints.
#[derive(Serialize)]
struct JsonReport<'a> {
    gilscope: &'static str,
    workload: &'static str,
    workers: u32,
    iterations: u64,
    switch_interval_ms: f64,
    /// What one simulated loop iteration costs (calibrated or default).
    iteration_ns: f64,
    cores: u32,
    /// The workers' jobs one after another, each alone, under the first
    /// runtime: the speedups' baseline (each run carries its own too).
    baseline_s: f64,
    runs: &'a [RunResult],
}

/// Runs everything `args` asks for; returns the text to print.
/// `python` is the interpreter already probed, when a `CPython` run is asked for.
pub fn execute(args: &RunArgs, python: Option<Python>) -> Result<String, String> {
    let mut plan = Plan::measure()?;
    for note in &plan.notes {
        say(note);
    }
    let mut runs = args.runs(plan.iteration_ns())?;
    let mut notes = String::new();
    if runs.iter().any(|r| r.experiment.runtime == Runtime::Cpython) {
        let python = match python {
            Some(python) => python,
            None => Python::probe(&args.experiment.python)?,
        };
        for note in matrix::fit_to_python(&mut runs, args.model, &python)? {
            let _ = writeln!(notes, "{note}");
        }
        if plan.calibration.is_none() {
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
            plan.calibrated(calibration);
        }
        if let Some(note) = plan.use_python(python) {
            say(&note);
        }
    }
    let experiment = runs.first().map(|r| r.experiment.clone()).ok_or("nothing to run")?;
    // One baseline per runtime, measured before the models, in this invocation.
    let mut baselines = Vec::new();
    for &runtime in args.experiment.runtime.runtimes() {
        let e = Experiment { runtime, ..experiment.clone() };
        let mut measured = Baseline::default();
        for spec in baseline::specs(&e) {
            let wall_s =
                run_to_end(&spec, &plan).map_err(|e| format!("baseline (one worker alone): {e}"))?.wall_s;
            measured.record(spec, wall_s);
        }
        baselines.push((runtime, measured.total_s(&e).unwrap_or(f64::NAN)));
    }
    let baseline_of = |runtime| baselines.iter().find(|(r, _)| *r == runtime).map_or(f64::NAN, |(_, b)| *b);
    let mut results = Vec::with_capacity(runs.len());
    for spec in &runs {
        let mut result = run_to_end(spec, &plan)?;
        let serial = baseline_of(spec.experiment.runtime);
        result.baseline_s = Some(serial);
        result.speedup = Some(serial / result.wall_s);
        results.push(result);
    }
    let baseline = baseline_of(experiment.runtime);
    let experiment = &experiment;
    if args.json {
        let report = JsonReport {
            gilscope: env!("CARGO_PKG_VERSION"),
            workload: experiment.workload.name(),
            workers: experiment.workers,
            iterations: experiment.iterations,
            switch_interval_ms: experiment.switch_interval.as_secs_f64() * 1e3,
            iteration_ns: experiment.iteration_ns,
            cores: crate::cli::cores(),
            baseline_s: baseline,
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

/// How far the simulation agrees with `CPython`, model by model.
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

fn runtime_label(runtime: Runtime) -> &'static str {
    match runtime {
        Runtime::Sim => "simulated CPython",
        Runtime::Cpython => "real CPython",
    }
}

fn tables(
    experiment: &Experiment,
    baselines: &[(Runtime, f64)],
    runs: &[RunSpec],
    results: &[RunResult],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "gilscope run · {} · {} cores", experiment.describe(), crate::cli::cores());
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
