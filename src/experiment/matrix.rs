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

/// What the command line asked for: `--model` (one of its choices) or
/// `--models` (a list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    Named(ModelChoice),
    Models(Vec<Model>),
}

/// The runs to make, in order: each model under each runtime, the runtimes
/// of one model side by side. An error is a usage error (exit 2).
pub fn runs(
    base: &Experiment,
    choice: Choice,
    hybrid_processes: u32,
    runtimes: &[Runtime],
) -> Result<Vec<RunSpec>, String> {
    let hybrid = Model::Hybrid { processes: hybrid_processes };
    let with = |model, gil| RunSpec { experiment: Experiment { gil, ..base.clone() }, model };
    let gil = base.gil;
    let choice = match choice {
        Choice::Models(models) => {
            if models.is_empty() {
                return Err("--models: name at least one model".to_owned());
            }
            return Ok(each_runtime(models.into_iter().map(|m| with(m, gil)).collect(), runtimes));
        }
        Choice::Named(choice) => choice,
    };
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
    if choice == ModelChoice::Hybrid && runtimes.contains(&Runtime::Cpython) {
        return Err("--runtime: the hybrid model runs on the simulated runtime only".to_owned());
    }
    Ok(each_runtime(models, runtimes))
}

/// Each run under each runtime, side by side; the hybrid on the simulation only.
fn each_runtime(models: Vec<RunSpec>, runtimes: &[Runtime]) -> Vec<RunSpec> {
    let mut all = Vec::new();
    for run in models {
        for &runtime in runtimes {
            if runtime == Runtime::Cpython && matches!(run.model, Model::Hybrid { .. }) {
                continue;
            }
            all.push(RunSpec { experiment: Experiment { runtime, ..run.experiment.clone() }, ..run.clone() });
        }
    }
    all
}

/// The interpreters beside the chosen one that some runs need.
#[derive(Clone, Debug, Default)]
pub struct Fitted {
    /// What was changed, in sentences for the user.
    pub notes: Vec<String>,
    /// A 3.12 or later one, for subinterpreters.
    pub newer: Option<Python>,
    /// A free-threaded build, for the free-threaded model.
    pub free_threaded: Option<Python>,
}

/// Fits the runs to the interpreter found. A model it cannot run gets an
/// interpreter that can, found on PATH or in pyenv (said in a note); where
/// there is none: a GIL-off or subinterpreter run asked for by name is an
/// error, one that `all` merely offered is left out; the free-threaded model
/// runs simulated instead, labelled so.
pub fn fit_to_python(runs: &mut Vec<RunSpec>, choice: &Choice, python: &Python) -> Result<Fitted, String> {
    fit_with(runs, choice, python, |want| crate::cpython::discover::find(|p| want.fits(p)))
}

/// What a run needs of an interpreter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Subinterpreters,
    FreeThreaded,
}

impl Need {
    pub fn fits(self, p: &Python) -> bool {
        match self {
            Need::Subinterpreters => p.has_subinterpreters(),
            Need::FreeThreaded => p.free_threaded_build,
        }
    }
}

fn fit_with(
    runs: &mut Vec<RunSpec>,
    choice: &Choice,
    python: &Python,
    find: impl Fn(Need) -> Option<Python>,
) -> Result<Fitted, String> {
    let mut fitted = Fitted::default();
    let cpython = |r: &RunSpec| r.experiment.runtime == Runtime::Cpython;
    let offered = *choice == Choice::Named(ModelChoice::All);
    // Threads asked to run with the GIL off (--gil off): only a free-threaded build can.
    let gil_off = |r: &RunSpec| cpython(r) && r.gil_off() && r.model != Model::FreeThreaded;
    if !python.free_threaded_build && runs.iter().any(gil_off) {
        if !offered {
            return Err(no_gil_off(python));
        }
        runs.retain(|r| !gil_off(r));
        fitted.notes.push(format!(
            "no GIL-off run of the real CPython: {} is not a free-threaded build (try --python python3.13t)",
            python.describe()
        ));
    }
    let subs = |r: &RunSpec| cpython(r) && r.model.own_interpreters();
    if !python.has_subinterpreters() && runs.iter().any(subs) {
        match find(Need::Subinterpreters) {
            Some(newer) => {
                fitted.notes.push(format!(
                    "subinterpreters run on {} ({} has none with a GIL of their own)",
                    newer.describe(),
                    python.describe()
                ));
                fitted.newer = Some(newer);
            }
            None if offered => runs.retain(|r| !subs(r)),
            None => return Err(no_subinterpreters(python)),
        }
    }
    let free = |r: &RunSpec| cpython(r) && r.model == Model::FreeThreaded;
    if !python.free_threaded_build && runs.iter().any(free) {
        if let Some(ft) = find(Need::FreeThreaded) {
            fitted.notes.push(format!("the free-threaded model runs on {}", ft.describe()));
            fitted.free_threaded = Some(ft);
        } else {
            let simulated = runs.iter().any(|r| r.model == Model::FreeThreaded && !cpython(r));
            if simulated {
                runs.retain(|r| !free(r));
            } else {
                for run in runs.iter_mut().filter(|r| free(r)) {
                    run.experiment.runtime = Runtime::Sim;
                }
            }
            fitted.notes.push(
                "no free-threaded CPython here (python3.13t or later, on PATH or in pyenv): the free-threaded model is simulated"
                    .to_owned(),
            );
        }
    }
    Ok(fitted)
}

/// Why `python` cannot run interpreters of their own, and what to do.
pub fn no_subinterpreters(python: &Python) -> String {
    format!(
        "{} has no subinterpreters with a GIL of their own (Python 3.12 or later has them), and no newer python3 was found on PATH or in pyenv; install python3.12 or later, or pass --python",
        python.describe()
    )
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
        let runs =
            runs(&Experiment::new(2), Choice::Named(ModelChoice::Both), 2, &[Runtime::Sim, Runtime::Cpython]);
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
        assert!(
            runs(&Experiment::new(4), Choice::Named(ModelChoice::Hybrid), 2, &[Runtime::Cpython]).is_err()
        );
        let all =
            runs(&Experiment::new(4), Choice::Named(ModelChoice::All), 2, &[Runtime::Sim, Runtime::Cpython]);
        let hybrids: Vec<Runtime> = all
            .unwrap_or_default()
            .iter()
            .filter(|r| matches!(r.model, Model::Hybrid { .. }))
            .map(|r| r.experiment.runtime)
            .collect();
        assert_eq!(hybrids, [Runtime::Sim]);
    }

    fn nothing_else(_: Need) -> Option<Python> {
        None
    }

    #[test]
    fn a_gil_off_cpython_needs_a_free_threaded_build() {
        let all = Choice::Named(ModelChoice::All);
        let mut runs_all = runs(&Experiment::new(2), all.clone(), 2, &[Runtime::Cpython]).unwrap_or_default();
        let fitted = fit_with(&mut runs_all, &all, &python(false), nothing_else);
        assert_eq!(fitted.map(|f| f.notes.len()).ok(), Some(1));
        assert!(runs_all.iter().all(|r| !r.gil_off()));
        let off = Experiment { gil: false, ..Experiment::new(2) };
        let threads = Choice::Named(ModelChoice::Threads);
        let mut named = runs(&off, threads.clone(), 2, &[Runtime::Cpython]).unwrap_or_default();
        assert!(fit_with(&mut named, &threads, &python(false), nothing_else).is_err());
        assert!(
            fit_with(&mut named, &threads, &python(true), nothing_else).is_ok_and(|f| f.notes.is_empty())
        );
    }

    #[test]
    fn subinterpreters_on_an_old_python_take_a_newer_one_or_say_what_to_install() {
        let four = Choice::Models(crate::experiment::model::NAMED.to_vec());
        let mut asked = runs(&Experiment::new(2), four.clone(), 2, &[Runtime::Cpython]).unwrap_or_default();
        let error =
            fit_with(&mut asked.clone(), &four, &python(false), nothing_else).err().unwrap_or_default();
        assert!(error.contains("install python3.12 or later"), "{error}");
        let newer = Python { version: "3.13.0".into(), ..python(false) };
        let fitted = fit_with(&mut asked, &four, &python(false), |need| {
            (need == Need::Subinterpreters).then(|| newer.clone())
        });
        let fitted = fitted.unwrap_or_default();
        assert_eq!(fitted.newer.map(|p| p.version), Some("3.13.0".to_owned()));
        // No free-threaded build anywhere: that model is simulated, and the note says so.
        let free = asked.iter().find(|r| r.model == Model::FreeThreaded).map(|r| r.experiment.runtime);
        assert_eq!(free, Some(Runtime::Sim));
        assert!(
            fitted.notes.iter().any(|n| n.contains("free-threaded model is simulated")),
            "{:?}",
            fitted.notes
        );
    }
}
