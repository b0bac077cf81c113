//! Which runs a headless invocation makes: the models asked for, under each
//! runtime asked for, and the rules for what cannot run (a hybrid on the real
//! `CPython`, a GIL-off `CPython` without a free-threaded build).

use crate::cpython::Python;
use crate::experiment::spec::{Experiment, Model, RunSpec};
use crate::protocol::Runtime;

/// The models `gilscope run --model` can ask for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelChoice {
    /// One process, N threads, one GIL
    Threads,
    /// N processes, one GIL each
    Processes,
    /// threads, then processes
    Both,
    /// P processes of N/P threads each (see --processes)
    Hybrid,
    /// threads with the GIL on, threads with it off, processes, and hybrid when N is even
    All,
}

/// The runs to make, in order: each model under each runtime, the runtimes
/// of one model side by side. An error is a usage error (exit 2).
pub fn runs(
    base: &Experiment,
    choice: ModelChoice,
    hybrid_processes: u32,
    runtimes: &[Runtime],
) -> Result<Vec<RunSpec>, String> {
    let hybrid = Model::Hybrid { processes: hybrid_processes };
    let with = |model, gil| RunSpec { experiment: Experiment { gil, ..base.clone() }, model };
    let gil = base.gil;
    let models = match choice {
        ModelChoice::Threads => vec![with(Model::Threads, gil)],
        ModelChoice::Processes => vec![with(Model::Processes, gil)],
        ModelChoice::Both => vec![with(Model::Threads, gil), with(Model::Processes, gil)],
        ModelChoice::Hybrid => vec![with(hybrid, gil)],
        ModelChoice::All => {
            let mut runs =
                vec![with(Model::Threads, true), with(Model::Threads, false), with(Model::Processes, true)];
            if with(hybrid, true).check().is_ok() && base.workers > hybrid_processes {
                runs.push(with(hybrid, true));
            }
            runs
        }
    };
    for run in &models {
        run.check().map_err(|e| format!("--processes: {e}"))?;
    }
    let mut all = Vec::new();
    for run in models {
        for &runtime in runtimes {
            if runtime == Runtime::Cpython && matches!(run.model, Model::Hybrid { .. }) {
                if choice == ModelChoice::Hybrid {
                    return Err("--runtime: the hybrid model runs on the simulated runtime only".to_owned());
                }
                continue;
            }
            all.push(RunSpec { experiment: Experiment { runtime, ..run.experiment.clone() }, ..run.clone() });
        }
    }
    Ok(all)
}

/// Fits the runs to the interpreter found: `all` asks for whatever can run,
/// so a GIL-off `CPython` run without a free-threaded build is left out with a
/// note; asked for by name, it is an error. Returns the notes.
pub fn fit_to_python(
    runs: &mut Vec<RunSpec>,
    choice: ModelChoice,
    python: &Python,
) -> Result<Vec<String>, String> {
    let impossible = |r: &RunSpec| r.experiment.runtime == Runtime::Cpython && r.gil_off();
    if python.free_threaded_build || !runs.iter().any(impossible) {
        return Ok(Vec::new());
    }
    if choice != ModelChoice::All {
        return Err(no_gil_off(python));
    }
    runs.retain(|r| !impossible(r));
    Ok(vec![format!(
        "no GIL-off run of the real CPython: {} is not a free-threaded build (try --python python3.13t)",
        python.describe()
    )])
}

/// Why `python` cannot run threads without its GIL.
pub fn no_gil_off(python: &Python) -> String {
    format!(
        "{} cannot run without its GIL; pass --python with a free-threaded build (python3.13t)",
        python.describe()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python(free_threaded_build: bool) -> Python {
        Python {
            path: "python3".into(),
            version: "3.11.7".into(),
            gil: true,
            free_threaded_build,
            script: "w.py".into(),
        }
    }

    #[test]
    fn both_runtimes_run_each_model_side_by_side() {
        let runs = runs(&Experiment::new(2), ModelChoice::Both, 2, &[Runtime::Sim, Runtime::Cpython]);
        let order: Vec<(&str, Runtime)> =
            runs.unwrap_or_default().iter().map(|r| (r.model.name(), r.experiment.runtime)).collect();
        assert_eq!(
            order,
            [
                ("threads", Runtime::Sim),
                ("threads", Runtime::Cpython),
                ("processes", Runtime::Sim),
                ("processes", Runtime::Cpython)
            ]
        );
    }

    #[test]
    fn the_hybrid_runs_on_the_simulation_only() {
        assert!(runs(&Experiment::new(4), ModelChoice::Hybrid, 2, &[Runtime::Cpython]).is_err());
        let all = runs(&Experiment::new(4), ModelChoice::All, 2, &[Runtime::Sim, Runtime::Cpython]);
        let hybrids: Vec<Runtime> = all
            .unwrap_or_default()
            .iter()
            .filter(|r| matches!(r.model, Model::Hybrid { .. }))
            .map(|r| r.experiment.runtime)
            .collect();
        assert_eq!(hybrids, [Runtime::Sim]);
    }

    #[test]
    fn a_gil_off_cpython_needs_a_free_threaded_build() {
        let mut all = runs(&Experiment::new(2), ModelChoice::All, 2, &[Runtime::Cpython]).unwrap_or_default();
        let notes = fit_to_python(&mut all, ModelChoice::All, &python(false));
        assert_eq!(notes.map(|n| n.len()), Ok(1));
        assert!(all.iter().all(|r| !r.gil_off()));
        let off = Experiment { gil: false, ..Experiment::new(2) };
        let mut threads = runs(&off, ModelChoice::Threads, 2, &[Runtime::Cpython]).unwrap_or_default();
        assert!(fit_to_python(&mut threads, ModelChoice::Threads, &python(false)).is_err());
        assert_eq!(fit_to_python(&mut threads, ModelChoice::Threads, &python(true)), Ok(vec![]));
    }
}
