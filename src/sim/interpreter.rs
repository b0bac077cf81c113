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
    /// CPU time each worker spends starting its interpreter once the gun
    /// fires, one interpreter at a time as `CPython`'s main thread creates
    /// them (the subinterpreter models, from the calibration; zero else).
    pub interpreter_start: Duration,
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
        // One interpreter is created at a time: whoever holds this creates.
        let creating = Arc::new(Mutex::new(()));
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
            let (creating, interpreter_start) = (Arc::clone(&creating), self.interpreter_start);
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
                if !interpreter_start.is_zero() {
                    let _one_at_a_time = creating.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    spend_cpu(interpreter_start);
                }
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

/// Keeps this thread busy until it has used `cpu` of CPU time: work, not a
/// sleep, as creating an interpreter is.
fn spend_cpu(cpu: Duration) {
    let until = thread_cpu_ns() + cpu.as_nanos() as u64;
    let mut x = 1.0_f64;
    while thread_cpu_ns() < until {
        for _ in 0..1_000 {
            x = std::hint::black_box(x.sqrt() + 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpreters_start_one_at_a_time_after_the_gun_and_take_cpu_to_start() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let interpreter = Interpreter {
            first_worker: 0,
            roles: vec![Role::Cpu; 2],
            gil: true,
            own_gils: true,
            switch_interval: Duration::from_millis(5),
            params: WorkParams {
                iterations: 1_000,
                units: 1,
                requests: 0,
                io_wait: Duration::ZERO,
                reply_iterations: 0,
                progress_every: 1_000,
            },
            process_requested_at: None,
            interpreter_start: Duration::from_millis(40),
        };
        let gun = Arc::new(StartGun::default());
        gun.fire();
        let fired = now_ns();
        interpreter.run(&tx, &gun).expect("it runs");
        drop(tx);
        let mut first: std::collections::BTreeMap<u32, u64> = std::collections::BTreeMap::new();
        for record in &rx {
            if let Record::Take { t, worker } = record {
                first.entry(worker).or_insert(t);
            }
        }
        let mut first_take: Vec<u64> = first.into_values().collect();
        first_take.sort_unstable();
        assert_eq!(first_take.len(), 2);
        // Each waited for its own interpreter's 40 ms; the second also for the first's.
        assert!(first_take[0] >= fired + 39_000_000, "{first_take:?} after {fired}");
        assert!(first_take[1] >= first_take[0] + 35_000_000, "{first_take:?}");
    }
}
