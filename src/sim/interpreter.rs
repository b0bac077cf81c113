//! One simulated interpreter process: its GIL (or, for subinterpreters, one
//! GIL per worker) and its worker threads.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{now_ns, thread_cpu_ns};
use crate::protocol::Record;
use crate::sim::gil::{Gil, Recorder};
use crate::sim::workload::{Role, WorkParams, run_cpu, run_io};

/// What one interpreter process runs.
#[derive(Clone, Debug)]
pub struct Interpreter {
    /// Global index of the first worker; thread k is worker `first_worker + k`.
    pub first_worker: u32,
    /// One role per worker thread.
    pub roles: Vec<Role>,
    pub gil: bool,
    /// Each worker in an interpreter of its own, with a GIL of its own
    /// (subinterpreters, PEP 684): nobody ever waits for another's lock.
    pub own_gils: bool,
    pub switch_interval: Duration,
    pub params: WorkParams,
    /// When the parent asked for this process, if the process itself is what
    /// starts the first worker (the multiprocessing model). Otherwise each
    /// worker's start cost is its thread spawn alone.
    pub process_requested_at: Option<u64>,
}

impl Interpreter {
    /// Runs every worker to completion and returns how often the GIL changed
    /// hands. Records go to `recorder` as they happen. An error means the
    /// process must exit: a worker could not start or panicked.
    pub fn run<R: Recorder + Clone + Send + 'static>(&self, recorder: &R) -> Result<u64, String> {
        let gil = Arc::new(Gil::new(self.gil, self.switch_interval, recorder.clone()));
        let mut gils = vec![Arc::clone(&gil)];
        let pid = std::process::id();
        let mut threads = Vec::with_capacity(self.roles.len());
        for (k, &role) in self.roles.iter().enumerate() {
            let worker = self.first_worker + k as u32;
            let shared = if self.own_gils && k > 0 {
                let own = Arc::new(Gil::new(self.gil, self.switch_interval, recorder.clone()));
                gils.push(Arc::clone(&own));
                own
            } else {
                Arc::clone(&gil)
            };
            let params = self.params.clone();
            let thread_requested = now_ns();
            let requested = match self.process_requested_at {
                Some(t) if k == 0 => t,
                _ => thread_requested,
            };
            let spawned = std::thread::Builder::new().name(format!("worker-{worker}")).spawn(move || {
                let t = now_ns();
                shared.recorder().record(Record::Started { t, worker, requested });
                shared.recorder().record(Record::Process { t, worker, pid });
                match role {
                    Role::Cpu => run_cpu(&shared, worker, &params),
                    Role::Io => run_io(&shared, worker, &params),
                }
                let t = now_ns();
                shared.recorder().record(Record::Cpu { t, worker, cpu_ns: thread_cpu_ns() });
                shared.recorder().record(Record::Finished { t, worker });
            });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => return Err(format!("cannot start worker {worker}: {e}")),
            }
        }
        for handle in threads {
            if handle.join().is_err() {
                return Err("a worker thread panicked".into());
            }
        }
        Ok(gils.iter().map(|g| g.switches()).sum())
    }
}
