//! The POSIX mutex and condition variable `CPython`'s GIL is built on
//! (`Python/condvar.h`: `pthread_mutex_t`, `pthread_cond_t` on the monotonic
//! clock), for the simulated GIL to wait on the same way.
//!
//! Rust's own `Condvar` is not a stand-in for them: on Linux it is one futex
//! that every waiter not yet asleep sees change, so one notification can
//! return several waiters, each of which then starts a fresh switch interval
//! and goes to the back of the queue. glibc's hands out one signal per
//! notification; a waiter woken without one goes back to sleep with its
//! deadline and its place kept, and a newer waiter cannot take a signal
//! while older ones are still owed theirs (its waiter groups). Who wins the
//! GIL after a drop follows from that, and with it how long an I/O thread
//! waits beside CPU-bound ones.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

/// The clock deadlines are measured on: `CPython` asks for the monotonic one
/// where `pthread_condattr_setclock` exists.
#[cfg(target_os = "linux")]
const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;
#[cfg(not(target_os = "linux"))]
const CLOCK: libc::clockid_t = libc::CLOCK_REALTIME;

/// A `pthread_mutex_t` (default attributes, as `CPython`'s) guarding a `T`.
pub struct Mutex<T> {
    // Boxed: a pthread object must stay where it was initialised.
    raw: Box<UnsafeCell<libc::pthread_mutex_t>>,
    data: UnsafeCell<T>,
    /// The thread holding it (tests ask whether that is the caller).
    #[cfg(test)]
    owner: std::sync::atomic::AtomicI32,
}

// SAFETY: the data is reached only through a guard, and a guard exists only
// while the pthread mutex is locked, so one thread at a time touches it.
unsafe impl<T: Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    pub fn new(data: T) -> Self {
        Mutex {
            raw: Box::new(UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER)),
            data: UnsafeCell::new(data),
            #[cfg(test)]
            owner: std::sync::atomic::AtomicI32::new(0),
        }
    }

    /// Whether the calling thread holds it.
    #[cfg(test)]
    pub fn held_here(&self) -> bool {
        // SAFETY: gettid has no preconditions.
        self.owner.load(std::sync::atomic::Ordering::Relaxed) == unsafe { libc::gettid() }
    }

    #[cfg(test)]
    fn owned(&self, here: bool) {
        // SAFETY: gettid has no preconditions.
        let tid = if here { unsafe { libc::gettid() } } else { 0 };
        self.owner.store(tid, std::sync::atomic::Ordering::Relaxed);
    }

    #[cfg(not(test))]
    #[inline]
    #[allow(clippy::unused_self)] // only tests keep track of the owner
    fn owned(&self, _here: bool) {}

    pub fn lock(&self) -> MutexGuard<'_, T> {
        // SAFETY: `raw` is an initialised mutex that outlives the guard.
        let rc = unsafe { libc::pthread_mutex_lock(self.raw.get()) };
        // A default mutex fails only on misuse (it is never destroyed while held).
        debug_assert_eq!(rc, 0, "pthread_mutex_lock");
        self.owned(true);
        MutexGuard { mutex: self }
    }
}

impl<T> Drop for Mutex<T> {
    fn drop(&mut self) {
        // SAFETY: no guard borrows the mutex any more (`&mut self`).
        unsafe { libc::pthread_mutex_destroy(self.raw.get()) };
    }
}

/// Proof that the mutex is locked; unlocks when dropped.
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and `&mut self` makes this the only reference.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.owned(false);
        // SAFETY: this guard locked the mutex.
        unsafe { libc::pthread_mutex_unlock(self.mutex.raw.get()) };
    }
}

/// A `pthread_cond_t` whose timed waits use [`CLOCK`].
pub struct Condvar {
    raw: Box<UnsafeCell<libc::pthread_cond_t>>,
}

// SAFETY: pthread condition variables are made to be shared between threads.
unsafe impl Send for Condvar {}
// SAFETY: as above.
unsafe impl Sync for Condvar {}

impl Condvar {
    pub fn new() -> Self {
        let raw = Box::new(UnsafeCell::new(libc::PTHREAD_COND_INITIALIZER));
        #[cfg(target_os = "linux")]
        // SAFETY: attr is initialised before use and destroyed after; `raw`
        // is a valid condition variable no thread uses yet.
        unsafe {
            let mut attr = std::mem::MaybeUninit::<libc::pthread_condattr_t>::uninit();
            if libc::pthread_condattr_init(attr.as_mut_ptr()) == 0 {
                libc::pthread_condattr_setclock(attr.as_mut_ptr(), CLOCK);
                libc::pthread_cond_init(raw.get(), attr.as_ptr());
                libc::pthread_condattr_destroy(attr.as_mut_ptr());
            }
        }
        Condvar { raw }
    }

    /// Waits until notified (or woken spuriously).
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        guard.mutex.owned(false);
        // SAFETY: the guard proves the calling thread holds the mutex, as
        // pthread_cond_wait requires; it holds it again when this returns.
        let rc = unsafe { libc::pthread_cond_wait(self.raw.get(), guard.mutex.raw.get()) };
        guard.mutex.owned(true);
        debug_assert_eq!(rc, 0, "pthread_cond_wait");
        guard
    }

    /// Waits until notified, woken spuriously, or `timeout` has passed;
    /// true if it returned because the time was up.
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        let deadline = deadline_after(timeout);
        guard.mutex.owned(false);
        // SAFETY: as in `wait`; `deadline` is a valid timespec on CLOCK.
        let rc = unsafe {
            libc::pthread_cond_timedwait(self.raw.get(), guard.mutex.raw.get(), &raw const deadline)
        };
        guard.mutex.owned(true);
        (guard, rc == libc::ETIMEDOUT)
    }

    pub fn notify_one(&self) {
        // SAFETY: `raw` is an initialised condition variable.
        unsafe { libc::pthread_cond_signal(self.raw.get()) };
    }
}

impl Drop for Condvar {
    fn drop(&mut self) {
        // SAFETY: nobody waits on it any more (`&mut self`).
        unsafe { libc::pthread_cond_destroy(self.raw.get()) };
    }
}

/// Now on [`CLOCK`], plus `timeout` (saturating, far beyond any run).
fn deadline_after(timeout: Duration) -> libc::timespec {
    const NANOS_PER_SEC: libc::c_long = 1_000_000_000;
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec and CLOCK exists.
    unsafe { libc::clock_gettime(CLOCK, &raw mut now) };
    let secs = libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX);
    let nanos = now.tv_nsec + libc::c_long::from(timeout.subsec_nanos());
    libc::timespec {
        tv_sec: now.tv_sec.saturating_add(secs).saturating_add(nanos / NANOS_PER_SEC),
        tv_nsec: nanos % NANOS_PER_SEC,
    }
}
