//! `gilscope run`: the baseline and the models, timed in rounds (baseline,
//! model, model, … then again), never overlapping; then their figures as
//! tables or JSON, each speedup with its spread and a word when the machine
//! was too busy to trust it. `--record` and `--trace` keep every run too.

use std::fmt::Write as _;

use serde::Serialize;

use crate::cli::RunArgs;
use crate::commands::say;
use crate::cpython::Python;
use crate::experiment::baseline;
use crate::experiment::calibration::Calibration;
use crate::experiment::comparison::{BaselineRound, Rounds, Timed, summarize, verdict};
use crate::experiment::matrix;
use crate::experiment::plan::Plan;
use crate::experiment::scoreboard;
use crate::experiment::spec::{Experiment, Model, RunSpec};
use crate::experiment::tally::RunResult;
use crate::experiment::{time_run, time_run_watched};
use crate::format::{duration_label, memory_label, thousands};
use crate::protocol::Runtime;
use crate::recording::tape::{Context, RunTape};
use crate::recording::{Machine, trace};
use crate::sim::workload::Role;

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
    rounds: u32,
    /// The workers' jobs one after another, each alone, under the first
    /// runtime (median over the rounds): the speedups' baseline.
    baseline_s: f64,
    runs: &'a [RunResult],
    /// What the runs say together, or why nothing is said.
    verdict: Vec<String>,
    /// The article's claims, measured here: one row per run.
    scoreboard: Vec<scoreboard::Row>,
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
        notes = prepare_cpython(args, python, &mut plan, &mut runs)?;
    }
    let experiment = runs.first().map(|r| r.experiment.clone()).ok_or("nothing to run")?;
    // The runtimes the runs use: a model no interpreter here can run may
    // have moved to the simulation.
    let mut runtimes: Vec<Runtime> = Vec::new();
    for run in &runs {
        if !runtimes.contains(&run.experiment.runtime) {
            runtimes.push(run.experiment.runtime);
        }
    }
    let runtimes = runtimes.as_slice();
    let cores = crate::cli::cores();
    let rounds = measure_and_keep(args, &runs, runtimes, &experiment, &plan)?;
    let results: Vec<RunResult> = runs
        .iter()
        .zip(&rounds)
        .filter_map(|(spec, r)| {
            let mut result = summarize(r, &spec.experiment, cores, spec.contends_for_a_gil())?;
            if spec.experiment.runtime == Runtime::Cpython {
                result.python = plan.python_for(spec.model).ok().map(|p| p.version.clone());
                if spec.model == Model::Processes {
                    result.start_method = Some(spec.experiment.start_method.name());
                }
            }
            Some(result)
        })
        .collect();
    // A verdict compares models under one runtime, never across runtimes.
    let verdicts: Vec<String> = runtimes
        .iter()
        .filter_map(|&runtime| {
            let pick = |i: &usize| runs[*i].experiment.runtime == runtime;
            let same: Vec<usize> = (0..runs.len()).filter(pick).collect();
            let results: Vec<RunResult> = same.iter().map(|&i| results[i].clone()).collect();
            let rounds: Vec<Rounds> = same.iter().map(|&i| rounds[i].clone()).collect();
            let line = verdict(&results, &rounds, &experiment)?;
            Some(if runtimes.len() > 1 { format!("{line} ({})", runtime_label(runtime)) } else { line })
        })
        .collect();
    let pairs: Vec<(RunSpec, RunResult)> = runs.iter().cloned().zip(results.iter().cloned()).collect();
    let board = scoreboard::rows(&pairs);
    if args.json {
        let report = JsonReport {
            gilscope: env!("CARGO_PKG_VERSION"),
            workload: experiment.workload.name(),
            workers: experiment.workers,
            iterations: experiment.iterations,
            switch_interval_ms: experiment.switch_interval.as_secs_f64() * 1e3,
            iteration_ns: experiment.iteration_ns,
            cores,
            rounds: args.rounds,
            baseline_s: results.first().and_then(|r| r.baseline_s).unwrap_or(f64::NAN),
            runs: &results,
            verdict: verdicts,
            scoreboard: board,
        };
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())
    } else {
        let mut text = notes;
        text.push_str(&tables(&experiment, runtimes, args.rounds, &runs, &results));
        if !verdicts.is_empty() {
            let _ = writeln!(text);
        }
        for line in &verdicts {
            let _ = writeln!(text, "{line}");
        }
        text.push_str(&scoreboard_text(&board, cores));
        if runtimes.len() > 1 {
            text.push_str(&fidelity(&results));
        }
        Ok(text.trim_end().to_owned())
    }
}

/// Fits the runs to the interpreter `python` (and the ones found beside it),
/// and calibrates the simulation against it if nothing was stored; the
/// lines the user should read first.
fn prepare_cpython(
    args: &RunArgs,
    python: Python,
    plan: &mut Plan,
    runs: &mut Vec<RunSpec>,
) -> Result<String, String> {
    let mut notes = String::new();
    let fitted = matrix::fit_to_python(runs, &args.choice(), &python)?;
    for note in &fitted.notes {
        let _ = writeln!(notes, "{note}");
    }
    plan.newer_python = fitted.newer;
    plan.free_threaded_python = fitted.free_threaded;
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
        for run in runs.iter_mut() {
            run.experiment.iteration_ns = calibration.iteration_ns;
        }
        plan.calibrated(calibration);
    }
    if let Some(note) = plan.use_python(python) {
        say(&note);
    }
    // A simulated subinterpreter spends what starting a real one costs: if
    // the calibration in use has no such figure, it is measured now.
    let interpreters = runs.iter().any(|r| matches!(r.model, Model::Subinterpreters { .. }));
    if interpreters
        && plan.calibration.as_ref().is_some_and(|c| c.interpreter_start_ns.is_none())
        && let Ok(python) = plan.python_for(Model::Subinterpreters { shared_gil: false })
    {
        let measured = python.interpreter_start_ns()?;
        let _ = writeln!(
            notes,
            "measured: starting a worker in a subinterpreter of {} takes {}",
            python.describe(),
            duration_label(measured as f64 / 1e9)
        );
        if let Some(c) = plan.calibration.as_mut() {
            c.interpreter_start_ns = Some(measured as f64);
        }
    }
    Ok(notes)
}

/// Times `rounds` rounds, interleaved: in each, the baseline of every
/// runtime, then every run; returns each run's rounds.
fn measure(
    runs: &[RunSpec],
    runtimes: &[Runtime],
    experiment: &Experiment,
    plan: &Plan,
    rounds: u32,
    tape: &mut Option<RunTape>,
) -> Result<Vec<Rounds>, String> {
    let mut out = vec![Rounds::default(); runs.len()];
    for round in 1..=rounds.max(1) {
        if let Some(tape) = tape.as_mut() {
            tape.round(round);
        }
        let mut baselines = Vec::new();
        for &runtime in runtimes {
            baselines
                .push((runtime, time_baseline(&Experiment { runtime, ..experiment.clone() }, plan, tape)?));
        }
        for (spec, rounds) in runs.iter().zip(&mut out) {
            let timed = timed(spec, plan, false, tape)?;
            let base = baselines.iter().find(|(r, _)| *r == spec.experiment.runtime).map(|(_, b)| *b);
            rounds.timed.push(timed);
            rounds.baselines.push(base.unwrap_or(BaselineRound {
                total_s: f64::NAN,
                outside: 0.0,
                io_alone_ms: None,
                after_s: None,
            }));
        }
    }
    Ok(out)
}

/// [`measure`], on a tape when `--record` or `--trace` asks for one (the
/// runs then sampled by the OS as the live view samples them), and what the
/// tape kept written out.
fn measure_and_keep(
    args: &RunArgs,
    runs: &[RunSpec],
    runtimes: &[Runtime],
    experiment: &Experiment,
    plan: &Plan,
) -> Result<Vec<Rounds>, String> {
    let mut tape = (args.record.is_some() || args.trace.is_some()).then(|| RunTape::new(true));
    let rounds = measure(runs, runtimes, experiment, plan, args.rounds, &mut tape)?;
    if let Some(tape) = tape {
        keep(tape, runs, plan, args)?;
    }
    Ok(rounds)
}

/// Writes what the tape kept: the recording (`--record`), the trace (`--trace`).
fn keep(tape: RunTape, runs: &[RunSpec], plan: &Plan, args: &RunArgs) -> Result<(), String> {
    let context = Context {
        machine: Machine::here(crate::cli::cores()),
        python: plan.python.as_ref().map(|p| (p.path.display().to_string(), p.version.clone())),
    };
    let recording = tape.finish(runs, &context);
    if let Some(path) = &args.record {
        recording.save(path)?;
        say(&format!("recorded to {} (gilscope replay {0})", path.display()));
    }
    if let Some(path) = &args.trace {
        trace::write(&recording, path)?;
        say(&format!("trace written to {} (open it in https://ui.perfetto.dev)", path.display()));
    }
    Ok(())
}

/// Times one run, on the tape when there is one.
fn timed(spec: &RunSpec, plan: &Plan, baseline: bool, tape: &mut Option<RunTape>) -> Result<Timed, String> {
    match tape {
        Some(tape) => {
            tape.run(spec, baseline);
            time_run_watched(spec, plan, &mut |seen| tape.seen(seen))
        }
        None => time_run(spec, plan),
    }
}

/// One round's baseline: each role's worker alone, summed over the workers.
fn time_baseline(e: &Experiment, plan: &Plan, tape: &mut Option<RunTape>) -> Result<BaselineRound, String> {
    let mut measured = baseline::Baseline::default();
    let (mut outside, mut io_alone_ms) = (0.0_f64, None);
    for spec in baseline::specs(e) {
        let timed =
            timed(&spec, plan, true, tape).map_err(|e| format!("baseline (one worker alone): {e}"))?;
        outside = outside.max(timed.outside);
        if spec.experiment.workload.role(0) == Role::Io {
            io_alone_ms = timed.result.io_latency_ms.map(|l| l.mean);
        }
        measured.record(spec, timed.result.wall_s);
    }
    Ok(BaselineRound {
        total_s: measured.total_s(e).unwrap_or(f64::NAN),
        outside,
        io_alone_ms,
        after_s: None,
    })
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
    out.push_str(&gil_fidelity(results));
    out
}

/// The GIL model by model: hand-overs, hold spans and each worker's held
/// share, the simulated lock's beside what was read of the real one.
fn gil_fidelity(results: &[RunResult]) -> String {
    let mut out = String::from(
        "
the GIL, simulated vs read from CPython
",
    );
    let _ = writeln!(out, "  {:<30}{:>12}{:>12}{:>8}", "", "sim", "cpython", "ratio");
    for pair in results.windows(2) {
        let [sim, real] = pair else { continue };
        if sim.runtime != "sim" || real.runtime != "cpython" || sim.model != real.model || !sim.gil {
            continue;
        }
        let _ = writeln!(out, "  {} · CPython lanes {}", sim.label, lanes_text(real));
        let mut row = |name: String, s: f64, c: f64, show: &dyn Fn(f64) -> String| {
            let ratio = if c > 0.0 { format!("{:.2}", s / c) } else { "–".to_owned() };
            let _ = writeln!(out, "    {name:<28}{:>12}{:>12}{ratio:>8}", show(s), show(c));
        };
        let count = |v: f64| thousands(v as u64);
        let ms = |v: f64| if v.is_nan() { "–".to_owned() } else { duration_label(v / 1e3) };
        let pct = |v: f64| format!("{:.0}%", v * 100.0);
        let switches =
            if real.lanes == "inferred" { "GIL switches (cpython ~inferred)" } else { "GIL switches" };
        row(switches.to_owned(), sim.gil_switches as f64, real.gil_switches as f64, &count);
        let hold = |r: &RunResult, f: fn(&crate::experiment::tally::Holds) -> f64| {
            r.hold_ms.as_ref().map_or(f64::NAN, f)
        };
        row("hold median".to_owned(), hold(sim, |h| h.median), hold(real, |h| h.median), &ms);
        row("hold p90".to_owned(), hold(sim, |h| h.p90), hold(real, |h| h.p90), &ms);
        let prefix = worker_prefix(sim);
        for (w, (s, c)) in sim.held_share.iter().zip(&real.held_share).enumerate() {
            row(format!("held share {prefix}{w}"), *s, *c, &pct);
        }
    }
    out
}

/// The scoreboard as a table: a row per run.
fn scoreboard_text(rows: &[scoreboard::Row], cores: u32) -> String {
    let mut out = format!("\nscoreboard · the article's claims, measured here ({cores} cores)\n");
    let _ = writeln!(
        out,
        "  {:<30}{:>18}{:>11}{:>10}{:>10}{:>8}{:>9}{:>6}{:>15}",
        "model",
        "start / worker",
        "resident",
        "unique",
        "shared",
        "procs",
        "threads",
        "GILs",
        "speedup (max)"
    );
    for r in rows {
        let kb = |v: u64| memory_label(v);
        let (resident, unique, shared) = match r.memory {
            Some(m) => (kb(m.rss_kb), kb(m.uss_kb), kb(m.rss_kb.saturating_sub(m.uss_kb))),
            None => ("–".to_owned(), "–".to_owned(), "–".to_owned()),
        };
        let label = if r.runtime == "sim" { format!("{} [sim]", r.label) } else { r.label.clone() };
        let _ = writeln!(
            out,
            "  {:<30}{:>18}{:>11}{:>10}{:>10}{:>8}{:>9}{:>6}{:>15}",
            label,
            format!("{} {}", duration_label(r.start_us / 1e6), r.starts_by),
            resident,
            unique,
            shared,
            r.processes,
            r.threads_per_process,
            r.gils,
            r.speedup.map_or("–".to_owned(), |s| format!("{s:.2}× ({:.0}×)", r.speedup_limit)),
        );
    }
    let _ = writeln!(
        out,
        "  unique: memory no other process maps (USS); shared: the rest of resident (RSS − USS)"
    );
    let runtime = |name: &str| rows.iter().any(|r| r.runtime == name);
    if let Some(note) = scoreboard::start_cost_note(runtime("sim"), runtime("cpython")) {
        let _ = writeln!(out, "  {note}");
    }
    out
}

fn runtime_label(runtime: Runtime) -> &'static str {
    match runtime {
        Runtime::Sim => "simulated CPython",
        Runtime::Cpython => "real CPython",
    }
}

/// The GIL's rows of a run's table: where its lanes came from (real
/// `CPython`), its hand-overs, hold spans, each worker's held share, waits.
fn gil_rows(r: &RunResult) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    let mut row = |name: &'static str, value: String| rows.push((name, value));
    let read = r.runtime == "cpython" && r.lanes != "inferred";
    if r.runtime == "cpython" && r.gil {
        row("GIL lanes", lanes_text(r));
    }
    // Inferred lanes guess hand-overs from gaps in the workers' progress;
    // read ones count the interpreter's own.
    if !r.gil {
        row("GIL switches", "none (no GIL)".to_owned());
    } else if read {
        row(
            "GIL switches",
            format!(
                "{} (the interpreter's own count; {} hand-overs in the lanes)",
                r.gil_switches, r.gil_switches_in_lanes
            ),
        );
    } else if r.runtime == "cpython" {
        row("GIL switches", format!("~{} (inferred)", r.gil_switches));
    } else {
        row("GIL switches", r.gil_switches.to_string());
    }
    if let Some(h) = r.hold_ms.filter(|_| r.gil) {
        row(
            "GIL hold",
            format!(
                "median {} · p90 {} ({} holds)",
                duration_label(h.median / 1e3),
                duration_label(h.p90 / 1e3),
                h.count
            ),
        );
    }
    if r.gil && !r.held_share.is_empty() {
        row("GIL held share", held_share_text(worker_prefix(r), &r.held_share));
    }
    // Inferred lanes take gaps in progress for waits: a gap is time not
    // running, a GIL wait or the OS scheduling something else.
    row(
        if r.runtime == "cpython" && !read { "not running (inferred)" } else { "GIL wait" },
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
    rows
}

/// Where a `CPython` run's GIL lanes came from: "measured (sampled every
/// 100 µs, 9,700 samples/s)", "exact (uprobes)", "inferred from progress
/// stamps: why".
fn lanes_text(r: &RunResult) -> String {
    match r.lanes {
        "measured" => {
            let every = r.sample_period_us.map_or(String::new(), |us| format!("sampled every {us:.0} µs"));
            match r.samples_per_s {
                Some(rate) => format!("measured ({every}, {} samples/s)", thousands(rate.round() as u64)),
                None => format!("measured ({every})"),
            }
        }
        "exact" => "exact (every take and release, from uprobes)".to_owned(),
        _ => format!(
            "inferred from progress stamps: {}",
            r.lanes_fallback.as_deref().unwrap_or("the GIL was not read")
        ),
    }
}

/// "T0 49% · T1 51%": each worker's share of its time at work holding the GIL.
fn held_share_text(prefix: char, shares: &[f64]) -> String {
    shares
        .iter()
        .enumerate()
        .map(|(w, s)| format!("{prefix}{w} {:.0}%", s * 100.0))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// How the screen names a run's workers: T0 for threads, P0 for processes.
fn worker_prefix(r: &RunResult) -> char {
    if r.processes > 1 && r.processes == r.workers { 'P' } else { 'T' }
}

/// "0.98× (0.95–1.01 over 3 rounds; at most 2×)"
fn speedup_text(r: &RunResult) -> String {
    let Some(s) = r.speedup else { return "–".to_owned() };
    let spread = match (r.speedup_min, r.speedup_max) {
        (Some(lo), Some(hi)) if r.rounds > 1 => format!("{lo:.2}–{hi:.2} over {} rounds; ", r.rounds),
        _ => "one round; ".to_owned(),
    };
    format!("{s:.2}×  ({spread}at most {:.0}×)", r.speedup_limit)
}

fn tables(
    experiment: &Experiment,
    runtimes: &[Runtime],
    rounds: u32,
    runs: &[RunSpec],
    results: &[RunResult],
) -> String {
    let mut out = String::new();
    let cores = crate::cli::cores();
    let _ = writeln!(
        out,
        "gilscope run · {} · {cores} cores · {rounds} round{}",
        experiment.describe(),
        if rounds == 1 { "" } else { "s" }
    );
    for runtime in runtimes {
        let baseline = results.iter().find(|r| r.runtime == runtime.as_str()).and_then(|r| r.baseline_s);
        let _ = writeln!(
            out,
            "{}: baseline, the {} workers' jobs one after another, each alone: {} (speedup = baseline ÷ wall time)",
            runtime_label(*runtime),
            experiment.workers,
            baseline.map_or("–".to_owned(), duration_label)
        );
    }
    for (spec, r) in runs.iter().zip(results) {
        let gils = if r.gils > 0 { r.gils.to_string() } else { "no".to_owned() };
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}{}  ·  {} process{} · {} worker thread{} · {gils} GIL{}",
            r.label,
            if runtimes.len() > 1 {
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
        row("speedup", speedup_text(r));
        row("cores used", format!("{:.2} (CPU time ÷ wall time: what noise does not move)", r.cores_used));
        if let Some(speed) = r.work_speed {
            row("work speed", format!("{:.0} % of the lone worker's (speedup ÷ cores used)", speed * 100.0));
        }
        row(
            "start cost / worker",
            format!(
                "{} (slowest worker {})",
                duration_label(r.start_us / 1e6),
                duration_label(r.start_us_max / 1e6)
            ),
        );
        row("peak memory", memory_label(r.peak_rss_kb));
        for (name, value) in gil_rows(r) {
            row(name, value);
        }
        if let Some(l) = r.io_latency_ms {
            let ms = |v: f64| duration_label(v / 1e3);
            let beside = if r.workers > 1 { " beside the other workers" } else { "" };
            row(
                "I/O request latency",
                format!(
                    "mean {} · p50 {} · p99 {} · max {} ({} requests{beside})",
                    ms(l.mean),
                    ms(l.p50),
                    ms(l.p99),
                    ms(l.max),
                    l.requests
                ),
            );
        }
        row("outside load", format!("{:.2} cores (other processes, while timed)", r.outside_load));
        for doubt in &r.doubts {
            let _ = writeln!(out, "  ⚠ not clean: {doubt}");
        }
    }
    out
}
