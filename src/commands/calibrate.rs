//! `gilscope calibrate`: make one simulated iteration cost what one `CPython`
//! iteration costs on this machine, and check that it does.

use std::fmt::Write as _;

use crate::cli::CalibrateArgs;
use crate::cpython::Python;
use crate::experiment::calibration::Calibration;
use crate::experiment::plan::Plan;
use crate::experiment::run_to_end;
use crate::experiment::spec::{Experiment, Model, RunSpec};
use crate::format::{duration_label, thousands};

pub fn execute(args: &CalibrateArgs) -> Result<String, String> {
    let python = Python::probe(&args.python)?;
    let calibration = Calibration::measure(&python, args.iterations, 5)?;
    let path = calibration.store()?;
    // Check: one simulated worker alone against the same loop in CPython.
    let mut plan = Plan::measure()?;
    plan.calibrated(calibration.clone());
    let spec = RunSpec {
        experiment: Experiment {
            iterations: args.iterations,
            iteration_ns: calibration.iteration_ns,
            ..Experiment::new(1)
        },
        model: Model::Threads,
    };
    let sim = run_to_end(&spec, &plan)?.wall_s;
    let real = python.bare_loop_ns(args.iterations)? as f64 / 1e9;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {:.1} ns per iteration of `for i in range(n): math.sqrt(i)` (median of 5 × {})",
        python.describe(),
        calibration.iteration_ns,
        thousands(args.iterations)
    );
    if let Some(ns) = calibration.interpreter_start_ns {
        let _ = writeln!(
            out,
            "starting a worker in a subinterpreter of its own: {} (created, the worker loaded in it; median of 3)",
            duration_label(ns / 1e9)
        );
    }
    let _ = writeln!(out, "stored in {}; simulated runs now use it", path.display());
    let _ = write!(
        out,
        "check: {} iterations take {} simulated, {} in CPython ({:.2}×)",
        thousands(args.iterations),
        duration_label(sim),
        duration_label(real),
        sim / real
    );
    Ok(out)
}
