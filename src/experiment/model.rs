//! The ways of running N workers that gilscope compares. Each is one entry
//! here: its names, how it spreads workers over processes, and what a
//! student should expect of it. Screens and reports iterate over models;
//! they never assume how many there are.

/// How workers are spread over processes and GILs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Model {
    /// One process, N threads, one GIL.
    Threads,
    /// N processes, one thread and one GIL each.
    Processes,
    /// P processes of N / P threads each.
    Hybrid { processes: u32 },
}

impl Model {
    /// The short name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Model::Threads => "threads",
            Model::Processes => "processes",
            Model::Hybrid { .. } => "hybrid",
        }
    }

    /// The Python module a user would reach for.
    pub fn module(self) -> &'static str {
        match self {
            Model::Threads => "threading",
            Model::Processes => "multiprocessing",
            Model::Hybrid { .. } => "hybrid",
        }
    }

    /// How many processes run `workers` workers.
    pub fn processes(self, workers: u32) -> u32 {
        match self {
            Model::Threads => 1,
            Model::Processes => workers,
            Model::Hybrid { processes } => processes,
        }
    }

    /// Whether a GIL can matter at all: some process runs several workers.
    /// With one worker per process, GIL on or off is the same program.
    pub fn shares_processes(self, workers: u32) -> bool {
        self.processes(workers) < workers
    }

    /// The letter of a worker's lane: T for a thread, P for a process.
    pub fn lane_prefix(self) -> &'static str {
        match self {
            Model::Processes => "P",
            Model::Threads | Model::Hybrid { .. } => "T",
        }
    }

    /// What the model is, in a few words, with its GIL on or off.
    pub fn idea(self, gil_off: bool) -> &'static str {
        match (self, gil_off) {
            (Model::Threads, false) => "threads of one process share its GIL",
            (Model::Threads, true) => "threads of one process, no GIL at all",
            (Model::Processes, _) => "one process per worker: a GIL each",
            (Model::Hybrid { .. }, false) => "processes of threads: a GIL per process",
            (Model::Hybrid { .. }, true) => "processes of threads, no GIL at all",
        }
    }
}
