//! The simulated GIL, following `CPython` 3.2+ (`Python/ceval_gil.c`).
//!
//! - The lock is a flag behind a mutex, with a condition variable to wait on.
//! - A waiter waits at most one switch interval at a time. If it timed out,
//!   the GIL is still held and no switch happened meanwhile, it sets the drop
//!   request and keeps waiting.
//! - The holder polls the drop request at every loop iteration and releases.
//! - Forced switching: a thread that released because of a drop request waits
//!   until another thread has taken the GIL before it may try again.
//! - Which waiter wins is up to the OS scheduler: there is no queue.
//!
//! With the GIL off (free-threaded `CPython`) `take` never waits.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::now_ns;
use crate::protocol::{Record, ReleaseReason};

/// Where a GIL reports what it does. Implemented by the worker's record
/// stream and by tests that collect events.
pub trait Recorder: Sync {
    fn record(&self, record: Record);

    /// A waiter timed out with no switch and asked the holder to drop. Not a
    /// record: nothing downstream draws them and they were over half of all
    /// records, so the GIL only counts them ([`Gil::drop_requests`]); tests
    /// that check their timing listen here.
    fn drop_request(&self, _t: u64, _worker: u32) {}
}

impl Recorder for crossbeam_channel::Sender<Record> {
    fn record(&self, record: Record) {
        // A closed stream means the process is going down; nothing to report to.
        let _ = self.send(record);
    }
}

struct State {
    locked: bool,
    /// The worker that took the GIL most recently (it may have released it since).
    last_holder: Option<u32>,
    /// Counts hand-overs between different workers.
    switch_number: u64,
}

pub struct Gil<R: Recorder> {
    enabled: bool,
    interval: Duration,
    state: Mutex<State>,
    /// Signalled on release: a waiter may take the GIL.
    released: Condvar,
    /// Signalled on every take: a forced dropper may stop waiting.
    switched: Condvar,
    drop_request: AtomicBool,
    switches: AtomicU64,
    drop_requests: AtomicU64,
    recorder: R,
}

impl<R: Recorder> Gil<R> {
    pub fn new(enabled: bool, interval: Duration, recorder: R) -> Self {
        Gil {
            enabled,
            interval: interval.max(Duration::from_micros(1)),
            state: Mutex::new(State { locked: false, last_holder: None, switch_number: 0 }),
            released: Condvar::new(),
            switched: Condvar::new(),
            drop_request: AtomicBool::new(false),
            switches: AtomicU64::new(0),
            drop_requests: AtomicU64::new(0),
            recorder,
        }
    }

    /// How often the GIL has passed from one worker to another.
    pub fn switches(&self) -> u64 {
        self.switches.load(Ordering::Relaxed)
    }

    /// How often a waiter asked the holder to drop the GIL.
    pub fn drop_requests(&self) -> u64 {
        self.drop_requests.load(Ordering::Relaxed)
    }

    pub fn recorder(&self) -> &R {
        &self.recorder
    }

    /// Polled by the holder at every loop iteration: cheap on purpose.
    #[inline]
    pub fn drop_requested(&self) -> bool {
        self.enabled && self.drop_request.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker thread that panicked while holding the mutex leaves the
        // flag consistent (every update is a single store), so go on.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Blocks until `worker` holds the GIL.
    pub fn take(&self, worker: u32) {
        if !self.enabled {
            self.recorder.record(Record::Take { t: now_ns(), worker });
            return;
        }
        let mut state = self.lock();
        if state.locked {
            self.recorder.record(Record::Wait { t: now_ns(), worker });
        }
        while state.locked {
            let saved_switch_number = state.switch_number;
            let (guard, timeout) = self
                .released
                .wait_timeout(state, self.interval)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state = guard;
            if timeout.timed_out() && state.locked && state.switch_number == saved_switch_number {
                self.drop_request.store(true, Ordering::Relaxed);
                self.drop_requests.fetch_add(1, Ordering::Relaxed);
                self.recorder.drop_request(now_ns(), worker);
            }
        }
        state.locked = true;
        if state.last_holder != Some(worker) {
            if state.last_holder.is_some() {
                self.switches.fetch_add(1, Ordering::Relaxed);
            }
            state.last_holder = Some(worker);
            state.switch_number += 1;
        }
        // Recorded under the mutex, so takes and releases are in lock order.
        self.recorder.record(Record::Take { t: now_ns(), worker });
        self.switched.notify_all();
        // A request aimed at the previous holder is void now.
        self.drop_request.store(false, Ordering::Relaxed);
    }

    /// Releases the GIL held by `worker`. If a drop request was pending, waits
    /// until another worker has taken it (forced switching).
    pub fn release(&self, worker: u32, reason: ReleaseReason) {
        if !self.enabled {
            self.recorder.record(Record::Release { t: now_ns(), worker, reason });
            return;
        }
        let mut state = self.lock();
        debug_assert!(state.locked, "worker {worker} released a GIL nobody held");
        state.locked = false;
        self.recorder.record(Record::Release { t: now_ns(), worker, reason });
        self.released.notify_one();
        if self.drop_request.load(Ordering::Relaxed) {
            self.drop_request.store(false, Ordering::Relaxed);
            // CPython waits once; looping makes spurious wake-ups harmless.
            while state.last_holder == Some(worker) {
                state = self.switched.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        }
    }

    /// What the holder does when it sees a drop request: let go, then queue up again.
    pub fn yield_to_waiter(&self, worker: u32) {
        self.release(worker, ReleaseReason::DropRequest);
        self.take(worker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// What a test GIL did: its records, and its drop requests in between.
    #[derive(Clone, Debug, PartialEq)]
    enum Logged {
        Record(Record),
        DropRequest { t: u64, worker: u32 },
    }

    #[derive(Default)]
    struct Log(Mutex<Vec<Logged>>);

    impl Recorder for Arc<Log> {
        fn record(&self, record: Record) {
            self.0.lock().unwrap().push(Logged::Record(record));
        }

        fn drop_request(&self, t: u64, worker: u32) {
            self.0.lock().unwrap().push(Logged::DropRequest { t, worker });
        }
    }

    fn spin(gil: &Gil<Arc<Log>>, worker: u32, for_how_long: Duration) {
        let end = now_ns() + for_how_long.as_nanos() as u64;
        gil.take(worker);
        while now_ns() < end {
            if gil.drop_requested() {
                gil.yield_to_waiter(worker);
            }
            std::hint::black_box((now_ns() as f64).sqrt());
        }
        gil.release(worker, ReleaseReason::Finished);
    }

    /// Runs `threads` busy workers on one GIL and returns what it recorded.
    fn contend(enabled: bool, threads: u32, interval: Duration, run: Duration) -> Vec<Record> {
        logged(enabled, threads, interval, run)
            .into_iter()
            .filter_map(|l| match l {
                Logged::Record(r) => Some(r),
                Logged::DropRequest { .. } => None,
            })
            .collect()
    }

    /// Runs `threads` busy workers on one GIL and returns its records and drop requests.
    fn logged(enabled: bool, threads: u32, interval: Duration, run: Duration) -> Vec<Logged> {
        let log = Arc::new(Log::default());
        let gil = Arc::new(Gil::new(enabled, interval, log.clone()));
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                let gil = gil.clone();
                std::thread::spawn(move || spin(&gil, w, run))
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        log.0.lock().unwrap().clone()
    }

    #[test]
    fn two_threads_never_hold_the_gil_at_once() {
        let records = contend(true, 3, Duration::from_millis(1), Duration::from_millis(120));
        // Records are appended under the GIL's mutex, so the log is in lock order.
        let mut holder = None;
        let mut takes = 0;
        for r in &records {
            match *r {
                Record::Take { worker, .. } => {
                    assert_eq!(holder, None, "worker {worker} took the GIL while {holder:?} held it");
                    holder = Some(worker);
                    takes += 1;
                }
                Record::Release { worker, .. } => {
                    assert_eq!(holder, Some(worker), "worker {worker} released a GIL it did not hold");
                    holder = None;
                }
                _ => {}
            }
        }
        assert_eq!(holder, None);
        assert!(takes > 10, "only {takes} takes: the GIL barely changed hands");
    }

    #[test]
    fn no_drop_request_before_the_switch_interval_has_passed() {
        let interval = Duration::from_millis(5);
        let logged = logged(true, 2, interval, Duration::from_millis(200));
        let mut last_take = 0;
        let mut requests = 0;
        for l in &logged {
            match *l {
                Logged::Record(Record::Take { t, .. }) => last_take = t,
                Logged::DropRequest { t, worker } => {
                    requests += 1;
                    assert!(
                        t - last_take >= interval.as_nanos() as u64,
                        "worker {worker} asked for a drop {} µs after the last take",
                        (t - last_take) / 1000
                    );
                }
                Logged::Record(_) => {}
            }
        }
        assert!(requests >= 10, "only {requests} drop requests in 200 ms at 5 ms");
    }

    #[test]
    fn after_a_forced_drop_the_dropper_does_not_retake_before_another_thread_has() {
        let records = contend(true, 2, Duration::from_millis(1), Duration::from_millis(100));
        let mut forced_dropper = None;
        let mut forced = 0;
        for r in &records {
            match *r {
                Record::Release { worker, reason: ReleaseReason::DropRequest, .. } => {
                    forced_dropper = Some(worker);
                    forced += 1;
                }
                Record::Take { worker, .. } => {
                    assert_ne!(
                        forced_dropper,
                        Some(worker),
                        "worker {worker} re-took the GIL it was asked to drop"
                    );
                    forced_dropper = None;
                }
                _ => {}
            }
        }
        assert!(forced >= 10, "only {forced} forced drops");
    }

    #[test]
    fn the_holder_runs_about_one_interval_between_switches() {
        let interval = Duration::from_millis(5);
        let records = contend(true, 2, interval, Duration::from_millis(300));
        let mut spans = Vec::new();
        let mut since = 0;
        for r in &records {
            match *r {
                Record::Take { t, .. } => since = t,
                Record::Release { t, reason: ReleaseReason::DropRequest, .. } => spans.push(t - since),
                _ => {}
            }
        }
        spans.sort_unstable();
        let median = spans[spans.len() / 2];
        assert!(
            (4_000_000..15_000_000).contains(&median),
            "median running span {median} ns for a 5 ms interval"
        );
    }

    #[test]
    fn gil_off_never_waits() {
        let logged = logged(false, 3, Duration::from_millis(1), Duration::from_millis(50));
        assert!(
            logged
                .iter()
                .all(|l| !matches!(l, Logged::Record(Record::Wait { .. }) | Logged::DropRequest { .. }))
        );
        let takes = logged.iter().filter(|l| matches!(l, Logged::Record(Record::Take { .. }))).count();
        assert_eq!(takes, 3, "each worker takes once and is never interrupted");
    }

    #[test]
    fn an_uncontended_gil_is_never_asked_to_drop() {
        let logged = logged(true, 1, Duration::from_millis(1), Duration::from_millis(30));
        assert_eq!(logged.len(), 2, "one take, one release, no drop request: {logged:?}");
    }
}
