//! One simulated interpreter process: its GIL (or, for subinterpreters, one
//! GIL per worker) and its worker threads.
//!
//! Its main thread starts the workers as `threading.Thread.start()` does in
//! `CPython`: holding the GIL, it creates worker k's thread, then blocks
//! (GIL released) until k has taken the GIL and signalled that it runs, then
//! takes the GIL back like any waiter before it can start k + 1. A worker
//! that goes to work at once is CPU-bound by then, so winning the GIL back
//! costs up to a switch interval and a drop request; one that waits for the
//! start gun lets go of the GIL at once. After the last one the main thread
//! lets go and joins them.

use std::sync::mpsc;
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
    /// worker's start cost runs from the main thread's request for its thread.
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
    /// Woken when a worker starts to wait: the thread that sends the
    /// records out, so that the worker's start reaches gilscope now rather
    /// than at its next poll, up to 15 ms later, all of it spent waiting.
    herald: std::sync::OnceLock<std::thread::Thread>,
}

impl StartGun {
    /// A gun that has already fired: workers start their work at once.
    pub fn fired() -> Self {
        StartGun { fired: Mutex::new(true), went: Condvar::new(), herald: std::sync::OnceLock::new() }
    }

    /// Has `thread` woken whenever a worker starts to wait.
    pub fn heralded_by(&self, thread: std::thread::Thread) {
        let _ = self.herald.set(thread);
    }

    pub fn has_fired(&self) -> bool {
        *self.fired.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn fire(&self) {
        *self.fired.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.went.notify_all();
    }

    pub fn wait(&self) {
        if let Some(herald) = self.herald.get() {
            herald.unpark();
        }
        let mut fired = self.fired.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while !*fired {
            fired = self.went.wait(fired).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

/// What an interpreter's GIL counted over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GilCounts {
    /// Hand-overs between different threads, the main thread's included.
    pub switches: u64,
    /// Times a waiter asked the holder to drop it.
    pub drop_requests: u64,
}

impl Interpreter {
    /// Runs every worker to completion, each starting its work when `gun`
    /// fires, and returns what the GILs counted (the main thread's
    /// hand-overs included). Records go to `recorder` as
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
        // A process of one worker started by its parent runs that worker in
        // its main thread, as multiprocessing does: no thread to start.
        let main_starts_threads = self.process_requested_at.is_none() || self.roles.len() > 1;
        if main_starts_threads {
            gil.take_as_main();
        }
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
            let requested = match self.process_requested_at {
                Some(t) if k == 0 => t,
                _ => now_ns(),
            };
            let (started_tx, started_rx) = mpsc::sync_channel::<()>(1);
            let spawned = std::thread::Builder::new().name(format!("worker-{worker}")).spawn(move || {
                // Goes to work at once, as a `CPython` thread does, unless it
                // must wait for the start gun (or start an interpreter first).
                let runs_now = gun.has_fired() && interpreter_start.is_zero();
                shared.take_to_start(worker, requested, runs_now);
                shared.recorder().record(Record::Process { t: now_ns(), worker, pid });
                // The receiver is gone only if the main thread gave up.
                let _ = started_tx.send(());
                if !runs_now {
                    shared.release_unrecorded(worker);
                    gun.wait();
                    if !interpreter_start.is_zero() {
                        let _one_at_a_time =
                            creating.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        spend_cpu(interpreter_start);
                    }
                    shared.take(worker);
                }
                match role {
                    Role::Cpu => run_cpu(&shared, worker, &params),
                    Role::Io => run_io(&shared, worker, &params),
                }
                let t = now_ns();
                shared.recorder().record(Record::Cpu { t, worker, cpu_ns: thread_cpu_ns() });
                shared.recorder().record(Record::Finished { t, worker });
            });
            let handle = match spawned {
                Ok(handle) => handle,
                Err(e) => return Err(format!("cannot start worker {worker}: {e}")),
            };
            threads.push(handle);
            if main_starts_threads {
                // `_started.wait()`: blocks with the GIL released, then wants it back.
                gil.release_as_main();
                let started = started_rx.recv();
                gil.take_as_main();
                if started.is_err() {
                    return Err(format!("worker {worker} died before it started"));
                }
            }
        }
        if main_starts_threads {
            gil.release_as_main();
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
    use crate::protocol::ReleaseReason;
    use crate::sim::workload::calibrate_units;

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

    /// Every record of one run, in the order they were made.
    #[derive(Default)]
    struct Log(Mutex<Vec<Record>>);

    impl Recorder for Arc<Log> {
        fn record(&self, record: Record) {
            self.0.lock().unwrap().push(record);
        }
    }

    /// An interpreter of `roles` at `interval`, each CPU worker with about
    /// `cpu` of work; an I/O worker asks for `requests` of 1 ms.
    fn interpreter(roles: &[Role], interval: Duration, cpu: Duration, requests: u32) -> Interpreter {
        const ITERATION_NS: u64 = 100;
        Interpreter {
            first_worker: 0,
            roles: roles.to_vec(),
            gil: true,
            own_gils: false,
            switch_interval: interval,
            params: WorkParams {
                iterations: cpu.as_nanos() as u64 / ITERATION_NS,
                units: calibrate_units(ITERATION_NS as f64),
                requests,
                io_wait: Duration::from_millis(1),
                reply_iterations: 1000,
                progress_every: 10_000,
            },
            process_requested_at: None,
            interpreter_start: Duration::ZERO,
        }
    }

    /// Runs [`interpreter`] with its workers at work as soon as they start
    /// (as `CPython`'s threads, and every in-process run without a race);
    /// returns the switches and the records.
    fn run(roles: &[Role], interval: Duration, cpu: Duration, requests: u32) -> (u64, Vec<Record>) {
        let log = Arc::new(Log::default());
        let _cores = crate::sim::one_at_a_time();
        let counts =
            interpreter(roles, interval, cpu, requests).run(&log, &Arc::new(StartGun::fired())).unwrap();
        let records = log.0.lock().unwrap().clone();
        (counts.switches, records)
    }

    fn times(records: &[Record], f: impl Fn(&Record) -> Option<u64>) -> Vec<u64> {
        records.iter().filter_map(f).collect()
    }

    #[test]
    fn the_main_thread_wins_the_gil_back_before_it_starts_the_next_worker() {
        let interval = Duration::from_millis(5);
        let (_, records) = run(&[Role::Cpu, Role::Cpu], interval, Duration::from_millis(60), 0);
        let started = times(&records, |r| match *r {
            Record::Started { t, .. } => Some(t),
            _ => None,
        });
        assert_eq!(started.len(), 2);
        // Worker 0 runs from the moment it starts; the main thread must time
        // out once and ask it to drop before it can start worker 1.
        let gap = started[1] - started[0];
        assert!(gap >= interval.as_nanos() as u64, "worker 1 started {gap} ns after worker 0");
        let dropped = records.iter().any(|r| {
            matches!(r, Record::Release { worker: 0, reason: ReleaseReason::DropRequest, t } if *t < started[1])
        });
        assert!(dropped, "worker 0 was never asked to drop before worker 1 started");
    }

    #[test]
    fn the_main_thread_leaves_no_records_but_its_hand_overs_count() {
        let (switches, records) = run(&[Role::Cpu], Duration::from_millis(1), Duration::from_millis(50), 0);
        // main → worker 0 → main (after a drop request) → worker 0 once main joins.
        assert_eq!(switches, 3);
        assert!(records.iter().all(|r| r.worker().is_none_or(|w| w == 0)));
        let takes = records.iter().filter(|r| matches!(r, Record::Take { .. })).count();
        assert_eq!(takes, 2, "worker 0 takes at its start and after the main thread let go");
        assert!(matches!(records.first(), Some(Record::Started { .. })), "{:?}", records.first());
    }

    #[test]
    fn workers_waiting_for_the_gun_let_go_of_the_gil_so_starting_them_takes_no_switch_interval() {
        // Far longer than starting three threads takes, even on a busy machine:
        // a main thread that had to win the GIL back by a drop request would
        // not have started them all within the patience below.
        let interval = Duration::from_secs(30);
        let cpu = Duration::from_millis(5);
        let gun = Arc::new(StartGun::default());
        let log = Arc::new(Log::default());
        let _cores = crate::sim::one_at_a_time();
        let running = {
            let (log, gun) = (Arc::clone(&log), Arc::clone(&gun));
            let interpreter = interpreter(&[Role::Cpu; 3], interval, cpu, 0);
            std::thread::spawn(move || interpreter.run(&log, &gun))
        };
        let count = |what: fn(&Record) -> bool| log.0.lock().unwrap().iter().filter(|r| what(r)).count();
        let patience = std::time::Instant::now() + Duration::from_secs(10);
        while count(|r| matches!(r, Record::Started { .. })) < 3 {
            assert!(std::time::Instant::now() < patience, "the workers did not all start before the gun");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(count(|r| matches!(r, Record::Take { .. })), 0, "a worker went to work before the gun");
        let fired_at = now_ns();
        gun.fire();
        running.join().unwrap().unwrap();
        let records = log.0.lock().unwrap().clone();
        let takes = times(&records, |r| match *r {
            Record::Take { t, .. } => Some(t),
            _ => None,
        });
        assert!(takes.len() >= 3 && takes.iter().all(|&t| t >= fired_at), "{takes:?} before {fired_at}");
    }
}
