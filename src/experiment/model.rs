//! The ways of running N workers that gilscope compares. Each is one entry
//! here: its names, how it spreads workers over processes and GILs, and
//! what a student should expect of it. Screens and reports iterate over
//! models; they never assume how many there are.

/// How workers are spread over processes, interpreters and GILs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Model {
    /// One process, N threads, one GIL (`threading`).
    Threads,
    /// N processes, one thread and one GIL each (`multiprocessing`).
    Processes,
    /// One process, N interpreters, each running one worker: a GIL each
    /// (PEP 684), or all sharing the main one (the "legacy" control).
    Subinterpreters { shared_gil: bool },
    /// One process, N threads, no GIL at all (free-threaded `CPython`, PEP 703).
    FreeThreaded,
    /// P processes of N / P threads each.
    Hybrid { processes: u32 },
}

/// The four the live view and `--models` know by name, in their order on screen.
pub const NAMED: [Model; 4] =
    [Model::Threads, Model::Processes, Model::Subinterpreters { shared_gil: false }, Model::FreeThreaded];

impl Model {
    /// The short name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Model::Threads => "threads",
            Model::Processes => "processes",
            Model::Subinterpreters { .. } => "subinterpreters",
            Model::FreeThreaded => "free-threaded",
            Model::Hybrid { .. } => "hybrid",
        }
    }

    /// The model of a `--models` name.
    pub fn parse(name: &str) -> Option<Model> {
        NAMED.into_iter().find(|m| m.name() == name)
    }

    /// What a user would reach for, as panels and tables title it.
    pub fn module(self) -> &'static str {
        match self {
            Model::Threads => "threading",
            Model::Processes => "multiprocessing",
            Model::Subinterpreters { shared_gil: false } => "subinterpreters",
            Model::Subinterpreters { shared_gil: true } => "subinterpreters (shared GIL)",
            Model::FreeThreaded => "free-threaded",
            Model::Hybrid { .. } => "hybrid",
        }
    }

    /// How many processes run `workers` workers.
    pub fn processes(self, workers: u32) -> u32 {
        match self {
            Model::Threads | Model::Subinterpreters { .. } | Model::FreeThreaded => 1,
            Model::Processes => workers,
            Model::Hybrid { processes } => processes,
        }
    }

    /// How many GILs the workers have among them (0: none at all).
    pub fn gils(self, workers: u32) -> u32 {
        match self {
            Model::Threads | Model::Subinterpreters { shared_gil: true } => 1,
            Model::Processes | Model::Subinterpreters { shared_gil: false } => workers,
            Model::FreeThreaded => 0,
            Model::Hybrid { processes } => processes,
        }
    }

    /// Whether a process runs several workers.
    pub fn shares_processes(self, workers: u32) -> bool {
        self.processes(workers) < workers
    }

    /// Each worker runs in an interpreter of its own (its own GIL, no
    /// shared Python objects) inside one process.
    pub fn own_interpreters(self) -> bool {
        matches!(self, Model::Subinterpreters { .. })
    }

    /// The letter of a worker's lane: T a thread, P a process, I an interpreter.
    pub fn lane_prefix(self) -> &'static str {
        match self {
            Model::Processes => "P",
            Model::Subinterpreters { .. } => "I",
            Model::Threads | Model::FreeThreaded | Model::Hybrid { .. } => "T",
        }
    }

    /// What the model is, in a few words, with its GIL on or off.
    pub fn idea(self, gil_off: bool) -> &'static str {
        match (self, gil_off) {
            (Model::Threads, false) => "threads of one process share its GIL",
            (Model::Threads | Model::FreeThreaded, _) => "threads of one process, no GIL at all",
            (Model::Processes, _) => "one process per worker: a GIL each",
            (Model::Subinterpreters { shared_gil: false }, _) => {
                "one process, an interpreter and a GIL per worker"
            }
            (Model::Subinterpreters { shared_gil: true }, _) => "interpreters of one process sharing one GIL",
            (Model::Hybrid { .. }, false) => "processes of threads: a GIL per process",
            (Model::Hybrid { .. }, true) => "processes of threads, no GIL at all",
        }
    }
}

/// How `multiprocessing` starts its processes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartMethod {
    /// A copy of the parent (the default on Linux before Python 3.14).
    #[default]
    Fork,
    /// A copy of a small server process started once (the default from 3.14).
    Forkserver,
    /// A fresh interpreter that imports the program (the default on macOS and Windows).
    Spawn,
}

impl StartMethod {
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::Fork => "fork",
            StartMethod::Forkserver => "forkserver",
            StartMethod::Spawn => "spawn",
        }
    }

    /// The next one, for the key that cycles them.
    #[must_use]
    pub fn next(self) -> StartMethod {
        match self {
            StartMethod::Fork => StartMethod::Forkserver,
            StartMethod::Forkserver => StartMethod::Spawn,
            StartMethod::Spawn => StartMethod::Fork,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_named_model_reads_back_from_its_name() {
        for model in NAMED {
            assert_eq!(Model::parse(model.name()), Some(model));
        }
        assert_eq!(Model::parse("fibers"), None);
    }

    #[test]
    fn the_models_count_their_gils_as_python_would() {
        assert_eq!(
            NAMED.map(|m| (m.processes(4), m.gils(4))),
            [(1, 1), (4, 4), (1, 4), (1, 0)],
            "threading, multiprocessing, subinterpreters, free-threaded"
        );
        assert_eq!(Model::Subinterpreters { shared_gil: true }.gils(4), 1);
    }
}
