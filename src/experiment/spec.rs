//! What an experiment is: one struct, and the defaults in one place.

use std::time::Duration;

use serde::Serialize;

pub use crate::experiment::model::{Model, StartMethod};
use crate::format::{duration_label, plural, thousands};
use crate::protocol::Runtime;
use crate::sim::workload::Role;

pub const DEFAULT_ITERATIONS: u64 = 4_000_000;
pub const DEFAULT_SWITCH_INTERVAL: Duration = Duration::from_millis(5);
pub const MIN_SWITCH_INTERVAL: Duration = Duration::from_micros(100);
pub const MAX_SWITCH_INTERVAL: Duration = Duration::from_secs(1);
/// The article's "20 API requests".
pub const DEFAULT_REQUESTS: u32 = 20;
pub const DEFAULT_IO_WAIT: Duration = Duration::from_millis(50);
/// CPU spent handling one reply, in loop iterations (about 1 ms).
pub const DEFAULT_REPLY_ITERATIONS: u64 = 15_000;
/// What one `math.sqrt(i)` loop iteration costs `CPython` 3.11 on this
/// project's 2-core machines (measured 55–100 ns); `gilscope calibrate`
/// replaces it with a figure measured on the machine at hand.
pub const DEFAULT_ITERATION_NS: f64 = 70.0;
pub const MAX_WORKERS: u32 = 256;
pub const MAX_PACE: u32 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// The sqrt loop: sqrt(i) for i in 0..iterations, per worker.
    Cpu,
    /// R blocking requests per worker, the GIL released while waiting.
    Io,
    /// One I/O worker beside CPU workers: the convoy effect.
    Mixed,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Cpu => "cpu",
            Workload::Io => "io",
            Workload::Mixed => "mixed",
        }
    }

    /// The role of global worker `index`: in `mixed`, worker 0 does I/O.
    pub fn role(self, index: u32) -> Role {
        match self {
            Workload::Io => Role::Io,
            Workload::Mixed if index == 0 => Role::Io,
            Workload::Cpu | Workload::Mixed => Role::Cpu,
        }
    }
}

/// Everything that defines a run but the model.
#[derive(Clone, Debug, PartialEq)]
pub struct Experiment {
    pub workers: u32,
    pub workload: Workload,
    pub iterations: u64,
    pub switch_interval: Duration,
    /// false: free-threaded interpreter (the lock is skipped).
    pub gil: bool,
    pub requests: u32,
    pub io_wait: Duration,
    pub reply_iterations: u64,
    /// Target cost of one loop iteration, before the pace factor.
    pub iteration_ns: f64,
    /// Slows a run down this many times so it can be watched: the
    /// simulation makes every iteration this much costlier (real CPU work,
    /// never a sleep); the real interpreter, whose iterations cost what they
    /// cost, runs this many times more of them (and more requests).
    pub pace: u32,
    pub runtime: Runtime,
    /// How the real `CPython`'s multiprocessing starts its processes.
    pub start_method: StartMethod,
}

impl Experiment {
    pub fn new(workers: u32) -> Self {
        Experiment {
            workers,
            workload: Workload::Cpu,
            iterations: DEFAULT_ITERATIONS,
            switch_interval: DEFAULT_SWITCH_INTERVAL,
            gil: true,
            requests: DEFAULT_REQUESTS,
            io_wait: DEFAULT_IO_WAIT,
            reply_iterations: DEFAULT_REPLY_ITERATIONS,
            iteration_ns: DEFAULT_ITERATION_NS,
            pace: 1,
            runtime: Runtime::Sim,
            start_method: StartMethod::default(),
        }
    }

    /// The roles of the workers of process `p` under `model`.
    pub fn roles_of_process(&self, model: Model, p: u32) -> (u32, Vec<Role>) {
        let per = self.workers / model.processes(self.workers).max(1);
        let first = p * per;
        (first, (first..first + per).map(|w| self.workload.role(w)).collect())
    }

    /// The sqrt loop's length as it runs: the real interpreter is paced
    /// with more iterations.
    pub fn work_iterations(&self) -> u64 {
        match self.runtime {
            Runtime::Sim => self.iterations,
            Runtime::Cpython => self.iterations.saturating_mul(u64::from(self.pace.max(1))),
        }
    }

    /// Requests per I/O worker as they run: the real interpreter is paced
    /// with more of them.
    pub fn work_requests(&self) -> u32 {
        match self.runtime {
            Runtime::Sim => self.requests,
            Runtime::Cpython => self.requests.saturating_mul(self.pace.max(1)),
        }
    }

    /// How long one I/O request really waits: the pace stretches the waits
    /// of the simulation with its work (the real interpreter is not paced).
    pub fn effective_io_wait(&self) -> Duration {
        match self.runtime {
            Runtime::Sim => self.io_wait * self.pace.max(1),
            Runtime::Cpython => self.io_wait,
        }
    }

    /// One line describing the experiment, as the header and `gilscope run` show it.
    pub fn describe(&self) -> String {
        let wait = duration_label(self.effective_io_wait().as_secs_f64());
        let requests = if self.work_requests() != self.requests {
            format!("{} ({}× {}) requests × {wait}", self.work_requests(), self.pace, self.requests)
        } else if self.effective_io_wait() == self.io_wait {
            format!("{} requests × {wait}", self.requests)
        } else {
            format!(
                "{} requests × {wait} ({} paced)",
                self.requests,
                duration_label(self.io_wait.as_secs_f64())
            )
        };
        let sqrt = if self.work_iterations() == self.iterations {
            format!("sqrt × {}", thousands(self.iterations))
        } else {
            format!(
                "sqrt × {} ({}× {})",
                thousands(self.work_iterations()),
                self.pace,
                thousands(self.iterations)
            )
        };
        let work = match self.workload {
            Workload::Cpu => format!("CPU-bound: {sqrt} per worker"),
            Workload::Io => format!("I/O-bound: {requests} per worker"),
            Workload::Mixed => format!("mixed: 1 I/O worker ({requests}) beside {sqrt}"),
        };
        format!(
            "{work} · {} · switch {}",
            plural(u64::from(self.workers), "worker", "workers"),
            duration_label(self.switch_interval.as_secs_f64())
        )
    }

    /// Send a progress record about every 10 ms of work: the screen draws
    /// at most every 33 ms, and each record costs the live view a message
    /// (at every 2 ms they were a fifth of its main thread's work).
    pub fn progress_every(&self) -> u64 {
        let ns = self.iteration_ns * f64::from(self.pace.max(1));
        ((10_000_000.0 / ns) as u64).max(1)
    }
}

/// One run: an experiment under one model.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    pub experiment: Experiment,
    pub model: Model,
}

impl RunSpec {
    /// Whether the run's interpreters run without a GIL: asked for, and it
    /// matters (some process runs several workers). The one place this is
    /// decided; what the interpreters report of themselves is the tally's.
    pub fn gil_off(&self) -> bool {
        match self.model {
            Model::FreeThreaded => true,
            Model::Threads | Model::Hybrid { .. } => !self.experiment.gil,
            Model::Processes | Model::Subinterpreters { .. } => false,
        }
    }

    /// Whether several workers contend for one GIL.
    pub fn contends_for_a_gil(&self) -> bool {
        let workers = self.experiment.workers;
        !self.gil_off() && self.model.gils(workers) < workers
    }

    /// Whether all the workers share one GIL (the screen draws who holds it).
    pub fn one_shared_gil(&self) -> bool {
        self.contends_for_a_gil() && self.model.gils(self.experiment.workers) == 1
    }

    /// e.g. "threading", "threading (GIL off)", "hybrid 2×2".
    pub fn label(&self) -> String {
        let e = &self.experiment;
        let base = match self.model {
            Model::Hybrid { processes } => format!("hybrid {processes}×{}", e.workers / processes.max(1)),
            m => m.module().to_owned(),
        };
        if self.gil_off() && self.model != Model::FreeThreaded { format!("{base} (GIL off)") } else { base }
    }

    /// Why this combination cannot run, in a sentence for the user.
    pub fn check(&self) -> Result<(), String> {
        let e = &self.experiment;
        if let Model::Hybrid { processes } = self.model
            && (processes == 0 || !e.workers.is_multiple_of(processes))
        {
            return Err(format!(
                "hybrid needs the workers ({}) to divide evenly over {processes} processes",
                e.workers
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_gives_the_first_worker_io() {
        assert_eq!(Workload::Mixed.role(0), Role::Io);
        assert_eq!(Workload::Mixed.role(1), Role::Cpu);
        assert_eq!(Workload::Io.role(3), Role::Io);
    }

    #[test]
    fn models_split_workers_over_processes() {
        let e = Experiment::new(4);
        assert_eq!(e.roles_of_process(Model::Threads, 0), (0, vec![Role::Cpu; 4]));
        assert_eq!(e.roles_of_process(Model::Processes, 3), (3, vec![Role::Cpu]));
        assert_eq!(e.roles_of_process(Model::Hybrid { processes: 2 }, 1), (2, vec![Role::Cpu; 2]));
    }

    #[test]
    fn labels_say_what_runs() {
        let mut spec = RunSpec { experiment: Experiment::new(4), model: Model::Threads };
        assert_eq!(spec.label(), "threading");
        spec.experiment.gil = false;
        assert_eq!(spec.label(), "threading (GIL off)");
        spec.model = Model::Hybrid { processes: 2 };
        assert_eq!(spec.label(), "hybrid 2×2 (GIL off)");
        spec.model = Model::Hybrid { processes: 3 };
        assert!(spec.check().is_err());
    }

    #[test]
    fn the_real_interpreter_is_paced_with_more_work_and_says_how_much() {
        let e = Experiment { pace: 15, runtime: Runtime::Cpython, ..Experiment::new(2) };
        assert_eq!(e.work_iterations(), 60_000_000);
        assert_eq!(e.work_requests(), 300);
        assert_eq!(e.effective_io_wait(), e.io_wait, "never by sleeping longer");
        let text = e.describe();
        assert!(text.starts_with("CPU-bound: sqrt × 60,000,000 (15× 4,000,000) per worker"), "{text}");
        let io = Experiment { workload: Workload::Io, ..e.clone() };
        assert!(io.describe().contains("300 (15× 20) requests × 50 ms"), "{}", io.describe());
        let sim = Experiment { runtime: Runtime::Sim, ..e };
        assert_eq!(
            (sim.work_iterations(), sim.work_requests()),
            (4_000_000, 20),
            "the simulation slows each one"
        );
        assert!(sim.describe().starts_with("CPU-bound: sqrt × 4,000,000 per worker"), "{}", sim.describe());
    }

    #[test]
    fn the_description_says_how_long_a_paced_request_really_waits() {
        let e = Experiment { workload: Workload::Io, pace: 15, ..Experiment::new(2) };
        let text = e.describe();
        assert!(text.contains("20 requests × 750 ms (50 ms paced)"), "{text}");
        let real = Experiment { runtime: Runtime::Cpython, ..e };
        assert!(real.describe().contains("300 (15× 20) requests × 50 ms per worker"), "{}", real.describe());
    }

    #[test]
    fn the_gil_is_off_only_where_several_workers_could_share_it() {
        let off = Experiment { gil: false, ..Experiment::new(2) };
        assert!(RunSpec { experiment: off.clone(), model: Model::Threads }.gil_off());
        assert!(!RunSpec { experiment: off.clone(), model: Model::Processes }.gil_off());
        let on = RunSpec { experiment: Experiment::new(2), model: Model::Threads };
        assert!(on.contends_for_a_gil());
        assert!(!RunSpec { experiment: Experiment::new(2), model: Model::Processes }.contends_for_a_gil());
    }
}
