//! One simulated interpreter process: its GIL (or, for subinterpreters, one
//! GIL per worker) and its worker threads.

use std::sync::{Arc, Condvar, Mutex};
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

/// The start gun. A worker that started (its first instruction ran and was
/// recorded) waits for it before its work, so that all the workers of a race
/// begin together however long the last one took to start: starting them
/// stays fast because no worker is busy meanwhile.
#[derive(Debug, Default)]
pub struct StartGun {
    fired: Mutex<bool>,
    went: Condvar,
}

impl StartGun {
    /// A gun that has already fired: workers start their work at once.
    pub fn fired() -> Self {
        StartGun { fired: Mutex::new(true), went: Condvar::new() }
    }

    pub fn fire(&self) {
        *self.fired.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.went.notify_all();
    }

    pub fn wait(&self) {
        let mut fired = self.fired.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while !*fired {
            fired = self.went.wait(fired).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

/// What an interpreter's GIL counted over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GilCounts {
    /// Hand-overs between different workers.
    pub switches: u64,
    /// Times a waiter asked the holder to drop it.
    pub drop_requests: u64,
}

impl Interpreter {
    /// Runs every worker to completion, each starting its work when `gun`
    /// fires, and returns what the GILs counted. Records go to `recorder` as
    /// they happen. An error means the process must exit: a worker could
    /// not start or panicked.
    pub fn run<R: Recorder + Clone + Send + 'static>(
        &self,
        recorder: &R,
        gun: &Arc<StartGun>,
    ) -> Result<GilCounts, String> {
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
            let gun = Arc::clone(gun);
            let thread_requested = now_ns();
            let requested = match self.process_requested_at {
                Some(t) if k == 0 => t,
                _ => thread_requested,
            };
            let spawned = std::thread::Builder::new().name(format!("worker-{worker}")).spawn(move || {
                let t = now_ns();
                shared.recorder().record(Record::Started { t, worker, requested });
                shared.recorder().record(Record::Process { t, worker, pid });
                gun.wait();
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
        Ok(GilCounts {
            switches: gils.iter().map(|g| g.switches()).sum(),
            drop_requests: gils.iter().map(|g| g.drop_requests()).sum(),
        })
    }
}
