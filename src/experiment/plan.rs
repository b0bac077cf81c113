//! Turns a run spec into the processes to start.

use std::path::PathBuf;

use crate::cpython::Python;
use crate::experiment::calibration::{Calibration, Stored};
use crate::experiment::matrix::{no_gil_off, no_subinterpreters};
use crate::experiment::spec::{DEFAULT_ITERATION_NS, Model, RunSpec};
use crate::experiment::supervisor::Launch;
use crate::protocol::Runtime;
use crate::sim::workload::measure_units_per_ns;
use crate::worker::WorkerArgs;

/// What it takes to start workers on this machine.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The gilscope binary, which is also the simulated worker.
    pub program: PathBuf,
    /// Cost units that make one simulated iteration last one nanosecond.
    pub units_per_ns: f64,
    /// The real interpreter, when the `CPython` runtime is wanted.
    pub python: Option<Python>,
    /// A 3.12 or later one for the subinterpreter model, when `python` is older.
    pub newer_python: Option<Python>,
    /// A free-threaded build for the free-threaded model, when `python` is not one.
    pub free_threaded_python: Option<Python>,
    /// What `gilscope calibrate` stored, read once here.
    pub calibration: Option<Calibration>,
    /// What the user should hear about the calibration: a stored one
    /// refused, or one measured on another interpreter than the one in use.
    pub notes: Vec<String>,
}

impl Plan {
    /// Finds our own binary and the machine's sqrt speed: the one measured
    /// beside `CPython` by `gilscope calibrate` if there is one, so that both
    /// runtimes speed up and slow down together with the machine; else
    /// measured now (~20 ms).
    pub fn measure() -> Result<Self, String> {
        let program = std::env::current_exe().map_err(|e| format!("cannot find the gilscope binary: {e}"))?;
        let mut notes = Vec::new();
        let calibration = match Calibration::load()? {
            Stored::Sound(calibration) => Some(calibration),
            Stored::None => None,
            Stored::Refused(why) => {
                notes.push(why);
                None
            }
        };
        let units_per_ns =
            calibration.as_ref().and_then(|c| c.sim_units_per_ns).unwrap_or_else(measure_units_per_ns);
        Ok(Plan {
            program,
            units_per_ns,
            python: None,
            newer_python: None,
            free_threaded_python: None,
            calibration,
            notes,
        })
    }

    /// A plan whose sqrt speed is measured now, without any calibration.
    pub fn with_program(program: PathBuf) -> Self {
        Plan {
            program,
            units_per_ns: measure_units_per_ns(),
            python: None,
            newer_python: None,
            free_threaded_python: None,
            calibration: None,
            notes: Vec::new(),
        }
    }

    /// Runs the `CPython` runtime on `python` from now on. Returns a line for
    /// the user when the stored calibration was measured on another
    /// interpreter (it is still used: it is the best figure there is).
    pub fn use_python(&mut self, python: Python) -> Option<String> {
        let note = self.calibration.as_ref().filter(|c| !c.measured_on(&python)).map(|c| {
            format!(
                "the calibration was measured on {}, not on {} (in use); run `gilscope calibrate --python {}` to measure it",
                c.interpreter(),
                python.describe(),
                python.path.display()
            )
        });
        self.python = Some(python);
        note
    }

    /// What one loop iteration costs: `CPython`'s, as calibrated, else the default.
    pub fn iteration_ns(&self) -> f64 {
        self.calibration.as_ref().map_or(DEFAULT_ITERATION_NS, |c| c.iteration_ns)
    }

    /// Takes a fresh calibration for the runs that follow.
    pub fn calibrated(&mut self, calibration: Calibration) {
        if let Some(units_per_ns) = calibration.sim_units_per_ns {
            self.units_per_ns = units_per_ns;
        }
        self.calibration = Some(calibration);
    }

    pub fn launches(&self, spec: &RunSpec) -> Result<Vec<Launch>, String> {
        match spec.experiment.runtime {
            Runtime::Sim => Ok(self.sim_launches(spec)),
            Runtime::Cpython => self.cpython_launches(spec),
        }
    }

    /// The interpreter that runs `model`: subinterpreters with their own
    /// GIL need 3.12 or later.
    pub fn python_for(&self, model: Model) -> Result<&Python, String> {
        let python =
            self.python.as_ref().ok_or("the CPython runtime needs a Python interpreter (--python)")?;
        if model.own_interpreters() && !python.has_subinterpreters() {
            return self.newer_python.as_ref().ok_or_else(|| no_subinterpreters(python));
        }
        if model == Model::FreeThreaded && !python.free_threaded_build {
            return self.free_threaded_python.as_ref().ok_or_else(|| no_gil_off(python));
        }
        Ok(python)
    }

    fn cpython_launches(&self, spec: &RunSpec) -> Result<Vec<Launch>, String> {
        let python = self.python_for(spec.model)?;
        let e = &spec.experiment;
        let model = match spec.model {
            Model::Threads | Model::FreeThreaded => "threads",
            Model::Processes => "processes",
            Model::Subinterpreters { .. } => "subinterpreters",
            Model::Hybrid { .. } => {
                return Err("the hybrid model runs on the simulated runtime only".to_owned());
            }
        };
        // Isolated (-I): nothing is imported from the working folder or from
        // beside the script, and PYTHON* variables are ignored. The children
        // multiprocessing starts stay isolated: fork copies the flags, and
        // spawn and forkserver pass -I (and -X gil) on to the interpreters
        // they start (`subprocess._args_from_interpreter_flags`, 3.8–3.13).
        let mut interpreter_args = vec!["-I".to_owned()];
        if spec.gil_off() {
            if !python.free_threaded_build {
                return Err(no_gil_off(python));
            }
            interpreter_args.extend(["-X".to_owned(), "gil=0".to_owned()]);
        }
        // With the GIL asked for, the interpreter keeps its own default: a
        // free-threaded build runs without it, and the run is labelled so.
        let workload = e.workload.name();
        let mut args = [
            interpreter_args,
            vec![
                python.script.display().to_string(),
                format!("--model={model}"),
                format!("--workers={}", e.workers),
                "--first-worker=0".to_owned(),
                format!("--workload={workload}"),
                // Paced with more work, never with sleeps.
                format!("--iterations={}", e.work_iterations()),
                format!("--requests={}", e.work_requests()),
                // The same wait as the simulation's, to the nanosecond.
                format!("--io-ms={}", e.io_wait.as_secs_f64() * 1e3),
                format!("--reply-iterations={}", e.reply_iterations),
                format!("--switch-interval-s={}", e.switch_interval.as_secs_f64()),
                // Its workers begin at gilscope's start gun, once it reads their GIL.
                "--gun".to_owned(),
            ],
        ]
        .concat();
        match spec.model {
            Model::Processes => args.push(format!("--start-method={}", e.start_method.name())),
            Model::Subinterpreters { shared_gil: true } => args.push("--shared-gil".to_owned()),
            _ => {}
        }
        Ok(vec![Launch {
            program: python.path.clone(),
            args,
            env: Vec::new(),
            requested_at_flag: Some("--spawned-at".to_owned()),
            workers: e.workers,
            // With no GIL there is no lock to read.
            watch_gil: !spec.gil_off() && !python.free_threaded_build,
        }])
    }

    fn sim_launches(&self, spec: &RunSpec) -> Vec<Launch> {
        let e = &spec.experiment;
        let iteration_ns = e.iteration_ns * f64::from(e.pace.max(1));
        let units = ((iteration_ns * self.units_per_ns).round() as u32).max(1);
        let processes = spec.model.processes(e.workers);
        (0..processes)
            .map(|p| {
                let (first_worker, roles) = e.roles_of_process(spec.model, p);
                let args = WorkerArgs {
                    first_worker,
                    roles,
                    gil: !spec.gil_off(),
                    own_gils: spec.model == Model::Subinterpreters { shared_gil: false },
                    switch_interval_ns: e.switch_interval.as_nanos() as u64,
                    iterations: e.iterations,
                    units,
                    requests: e.requests,
                    // Pace slows the whole run, waits included, so an I/O-bound
                    // workload stays I/O-bound however slowly it is watched.
                    io_wait_ns: e.io_wait.as_nanos() as u64 * u64::from(e.pace.max(1)),
                    reply_iterations: e.reply_iterations,
                    progress_every: e.progress_every(),
                    process_requested_at: None,
                    // Starting an interpreter costs what the real one measured
                    // (`gilscope calibrate`), slowed with the rest of the run.
                    interpreter_start_ns: match spec.model {
                        Model::Subinterpreters { .. } => self.calibration.as_ref().map_or(0, |c| {
                            (c.interpreter_start_ns.unwrap_or(0.0) * f64::from(e.pace.max(1))).round() as u64
                        }),
                        _ => 0,
                    },
                };
                Launch {
                    workers: args.roles.len() as u32,
                    program: self.program.clone(),
                    args: args.to_args(),
                    env: Vec::new(),
                    // In a model of many processes, starting the process is
                    // starting the worker: measure from the parent's request.
                    requested_at_flag: (spec.model == Model::Processes || processes > 1)
                        .then(|| "--process-requested-at".to_owned()),
                    // The simulated lock records every take and release itself.
                    watch_gil: false,
                }
            })
            .collect()
    }
}
