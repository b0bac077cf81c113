//! The simulated GIL, following `CPython` 3.2+ (`Python/ceval_gil.c`).
//!
//! - The lock is a flag behind a mutex, with a condition variable to wait on:
//!   the POSIX ones `CPython` uses (see `pthread.rs` for why not Rust's).
//! - A waiter waits at most one switch interval at a time. If it timed out,
//!   the GIL is still held and no switch happened meanwhile, it sets the drop
//!   request and keeps waiting.
//! - The holder polls the drop request at every loop iteration and releases.
//! - Forced switching: a thread that released because of a drop request waits
//!   until another thread has taken the GIL before it may try again.
//! - Which waiter wins is up to the OS scheduler and the condition variable:
//!   there is no queue.
//! - Besides the workers, the interpreter's main thread takes the GIL while
//!   it starts them; it leaves no records, but its hand-overs are switches.
//!
//! With the GIL off (free-threaded `CPython`) `take` never waits.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::now_ns;
use crate::protocol::{Record, ReleaseReason};
use crate::sim::pthread::{Condvar, Mutex as PMutex, MutexGuard};

/// Where a GIL reports what it does. Implemented by the worker's record
/// stream and by tests that collect events.
///
/// Takes and releases come out in lock order, yet none is recorded under
/// the GIL's mutex: a release is recorded before the releasing thread takes
/// the mutex, a take after the taking thread lets go of it (its time read
/// under it). Sending a record costs a microsecond or more (cache lines
/// crossing cores) where `CPython`'s critical sections last a fraction of
/// one, and the convoy's latency tail follows how long those last: with
/// records sent under the mutex, the simulated p99 at 3 CPU threads and
/// 20 ms was twice real `CPython`'s.
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

/// How often [`next_records`] looks for records: as often as the `CPython`
/// worker writes its own (about every 15 ms of work).
pub const POLL_RECORDS_EVERY: Duration = Duration::from_millis(15);

/// Waits until records fed by a GIL's [`Recorder`] are queued and returns
/// them all; None once every sender is gone and nothing is left. Unpark the
/// calling thread to have it look at once (when the senders are done).
///
/// It polls, rarely, instead of blocking on the channel. A send that finds
/// the receiver asleep wakes it with a system call made on the hand-over's
/// path, and on a two-core machine makes a third thread runnable: that
/// stretched each hand-over from the 1–3 µs `CPython` takes to 15–50 µs,
/// long enough for the thread that asked for the drop to be asleep again
/// when the GIL came free, which changed who wins it. And a thread that wakes
/// often gives the scheduler a chance, each time, to run a waiter the GIL's
/// holder had kept off the core, which `CPython` does not do either.
pub fn next_records(rx: &crossbeam_channel::Receiver<Record>) -> Option<Vec<Record>> {
    loop {
        match rx.try_recv() {
            Ok(first) => {
                let mut batch = vec![first];
                batch.extend(rx.try_iter());
                return Some(batch);
            }
            Err(crossbeam_channel::TryRecvError::Empty) => std::thread::park_timeout(POLL_RECORDS_EVERY),
            Err(crossbeam_channel::TryRecvError::Disconnected) => return None,
        }
    }
}

/// A thread that takes the GIL: a worker, or the interpreter's main thread,
/// which starts the workers. The main thread is no worker (it has no lane),
/// so nothing it does is recorded, but its hand-overs count as switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holder {
    Main,
    Worker(u32),
}

/// What a take records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Announce {
    /// `Wait` if the GIL is held, then `Take`: a worker at its work.
    WaitAndTake,
    /// `Started` once it holds the GIL, and `Take` too if it works on at once.
    Started { requested: u64, runs_now: bool },
    /// Nothing: the main thread.
    Nothing,
}

struct State {
    locked: bool,
    /// Counts takes by a thread other than the last holder, as `CPython`'s
    /// `switch_number` does.
    switch_number: u64,
}

pub struct Gil<R: Recorder> {
    enabled: bool,
    interval: Duration,
    state: PMutex<State>,
    /// Signalled on release: a waiter may take the GIL.
    released: Condvar,
    /// The thread that took the GIL most recently (it may have released it
    /// since), behind a mutex of its own as in `CPython`: a forced dropper
    /// waits on it after letting go of `state`.
    last_holder: PMutex<Option<Holder>>,
    /// Signalled on every take: a forced dropper may stop waiting.
    switched: Condvar,
    drop_request: AtomicBool,
    drop_requests: AtomicU64,
    /// `state.locked`, written under the mutex, read without it: whether a
    /// worker about to take the GIL will wait, so that it can say so before
    /// it takes the mutex.
    held: AtomicBool,
    recorder: R,
}

impl<R: Recorder> Gil<R> {
    pub fn new(enabled: bool, interval: Duration, recorder: R) -> Self {
        Gil {
            enabled,
            interval: interval.max(Duration::from_micros(1)),
            state: PMutex::new(State { locked: false, switch_number: 0 }),
            released: Condvar::new(),
            last_holder: PMutex::new(None),
            switched: Condvar::new(),
            drop_request: AtomicBool::new(false),
            drop_requests: AtomicU64::new(0),
            held: AtomicBool::new(false),
            recorder,
        }
    }

    /// How often the GIL has passed from one thread to another, the main
    /// thread included (the first take is no hand-over).
    pub fn switches(&self) -> u64 {
        self.lock().switch_number.saturating_sub(1)
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
        self.state.lock()
    }

    /// Blocks until `worker` holds the GIL.
    pub fn take(&self, worker: u32) {
        self.take_as(Holder::Worker(worker), Announce::WaitAndTake);
    }

    /// A new worker thread's first act, as in `CPython`'s thread bootstrap:
    /// it takes the GIL like any waiter, and `Started` (asked for at
    /// `requested`) is recorded the moment it has it. The wait before is not
    /// announced: the worker has not started yet. With `runs_now` it goes
    /// on to its work holding the GIL, so `Take` is recorded at that same
    /// instant; without, it lets go unrecorded ([`Gil::release_unrecorded`])
    /// to wait for the start gun, and takes the GIL again for its work.
    pub fn take_to_start(&self, worker: u32, requested: u64, runs_now: bool) {
        self.take_as(Holder::Worker(worker), Announce::Started { requested, runs_now });
    }

    /// A started worker lets go of the GIL to block before its work, unrecorded.
    pub fn release_unrecorded(&self, worker: u32) {
        self.release_as(Holder::Worker(worker), None);
    }

    /// The interpreter's main thread takes the GIL, unrecorded.
    pub fn take_as_main(&self) {
        self.take_as(Holder::Main, Announce::Nothing);
    }

    /// The main thread lets go of the GIL to block (waiting for a thread
    /// to start, or joining one), unrecorded.
    pub fn release_as_main(&self) {
        self.release_as(Holder::Main, None);
    }

    fn take_as(&self, who: Holder, what: Announce) {
        let announce = |t| {
            if let Holder::Worker(worker) = who {
                match what {
                    Announce::WaitAndTake => self.recorder.record(Record::Take { t, worker }),
                    Announce::Started { requested, runs_now } => {
                        self.recorder.record(Record::Started { t, worker, requested });
                        if runs_now {
                            self.recorder.record(Record::Take { t, worker });
                        }
                    }
                    Announce::Nothing => {}
                }
            }
        };
        if !self.enabled {
            announce(now_ns());
            return;
        }
        // A worker that will wait says so before it takes the mutex, going
        // by a look at `held`; only where the look was wrong, under it.
        let waiter = match (who, what) {
            (Holder::Worker(worker), Announce::WaitAndTake) => Some(worker),
            _ => None,
        };
        let mut said_wait = false;
        if let Some(worker) = waiter
            && self.held.load(Ordering::Relaxed)
        {
            self.recorder.record(Record::Wait { t: now_ns(), worker });
            said_wait = true;
        }
        let mut state = self.lock();
        if let Some(worker) = waiter
            && state.locked
            && !said_wait
        {
            self.recorder.record(Record::Wait { t: now_ns(), worker });
        }
        while state.locked {
            let saved_switch_number = state.switch_number;
            let (guard, timed_out) = self.released.wait_timeout(state, self.interval);
            state = guard;
            if timed_out && state.locked && state.switch_number == saved_switch_number {
                self.drop_requests.fetch_add(1, Ordering::Relaxed);
                if let Holder::Worker(worker) = who {
                    self.recorder.drop_request(now_ns(), worker);
                }
                // Last, as in CPython: the holder drops at once, and finds
                // the mutex free only once this thread waits again.
                self.drop_request.store(true, Ordering::Relaxed);
            }
        }
        let mut last_holder = self.last_holder.lock();
        state.locked = true;
        self.held.store(true, Ordering::Relaxed);
        if *last_holder != Some(who) {
            *last_holder = Some(who);
            state.switch_number += 1;
        }
        self.switched.notify_one();
        drop(last_holder);
        let taken_at = now_ns();
        // A request aimed at the previous holder is void now.
        self.drop_request.store(false, Ordering::Relaxed);
        drop(state);
        // After the previous holder's release (recorded before it took the
        // mutex), before this thread's own (recorded before it takes it).
        announce(taken_at);
    }

    /// Releases the GIL held by `worker`. If a drop request was pending, waits
    /// until another thread has taken it (forced switching).
    pub fn release(&self, worker: u32, reason: ReleaseReason) {
        self.release_as(Holder::Worker(worker), Some(reason));
    }

    /// Releases the GIL; `reason` None leaves no record.
    fn release_as(&self, who: Holder, reason: Option<ReleaseReason>) {
        let announce = |t| {
            if let (Holder::Worker(worker), Some(reason)) = (who, reason) {
                self.recorder.record(Record::Release { t, worker, reason });
            }
        };
        if !self.enabled {
            announce(now_ns());
            return;
        }
        // Before the next holder's take, which is recorded only once the
        // mutex this thread is about to take has been let go.
        announce(now_ns());
        let mut state = self.lock();
        debug_assert!(state.locked, "{who:?} released a GIL nobody held");
        state.locked = false;
        self.held.store(false, Ordering::Relaxed);
        self.released.notify_one();
        drop(state);
        // Forced switching, as `CPython` does it: only once the GIL is free,
        // and only if nobody has taken it yet.
        if self.drop_request.load(Ordering::Relaxed) {
            let mut last_holder = self.last_holder.lock();
            if *last_holder == Some(who) {
                self.drop_request.store(false, Ordering::Relaxed);
                // CPython waits once; looping makes spurious wake-ups harmless.
                while *last_holder == Some(who) {
                    last_holder = self.switched.wait(last_holder);
                }
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
    use std::sync::{Arc, Mutex};

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
        let _cores = crate::sim::one_at_a_time();
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

    /// A recorder that sees its own GIL: it notes every record made while
    /// the recording thread held the GIL's mutex.
    #[derive(Default)]
    struct Watcher {
        gil: std::sync::OnceLock<std::sync::Weak<Gil<Arc<Watcher>>>>,
        records: Mutex<Vec<(Record, bool)>>,
    }

    impl Recorder for Arc<Watcher> {
        fn record(&self, record: Record) {
            let under =
                self.gil.get().and_then(std::sync::Weak::upgrade).is_some_and(|g| g.state.held_here());
            self.records.lock().unwrap().push((record, under));
        }
    }

    #[test]
    fn takes_and_releases_are_recorded_outside_the_mutex_in_lock_order() {
        let _cores = crate::sim::one_at_a_time();
        let watcher = Arc::new(Watcher::default());
        let gil = Arc::new(Gil::new(true, Duration::from_millis(1), watcher.clone()));
        watcher.gil.set(Arc::downgrade(&gil)).ok().unwrap();
        let handles: Vec<_> = (0..3)
            .map(|w| {
                let gil = gil.clone();
                std::thread::spawn(move || {
                    let end = now_ns() + 80_000_000;
                    gil.take_to_start(w, now_ns(), true);
                    while now_ns() < end {
                        if gil.drop_requested() {
                            gil.yield_to_waiter(w);
                        }
                        std::hint::black_box((now_ns() as f64).sqrt());
                    }
                    gil.release(w, ReleaseReason::Finished);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let records = watcher.records.lock().unwrap().clone();
        let (mut holder, mut takes, mut waits_under) = (None, 0, 0);
        let mut last_t = 0;
        for (r, under) in &records {
            match *r {
                Record::Take { worker, t } | Record::Started { worker, t, .. } => {
                    assert!(!under, "worker {worker}'s take was recorded holding the GIL's mutex");
                    if matches!(r, Record::Take { .. }) {
                        assert_eq!(holder, None, "worker {worker} took while {holder:?} held the GIL");
                        holder = Some(worker);
                        takes += 1;
                        assert!(t >= last_t, "a take recorded out of time order");
                        last_t = t;
                    }
                }
                Record::Release { worker, t, .. } => {
                    assert!(!under, "worker {worker}'s release was recorded holding the GIL's mutex");
                    assert_eq!(holder, Some(worker), "worker {worker} released a GIL it did not hold");
                    holder = None;
                    assert!(t >= last_t, "a release recorded out of time order");
                    last_t = t;
                }
                Record::Wait { .. } => waits_under += usize::from(*under),
                _ => {}
            }
        }
        assert!(takes > 20, "only {takes} takes");
        // Under it only where a look at the GIL just before said free.
        assert!(waits_under * 10 <= takes, "{waits_under} of {takes} waits were recorded under the mutex");
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
