//! One clock for every process: `CLOCK_MONOTONIC` in nanoseconds.
//!
//! Workers, the `CPython` worker (`time.monotonic_ns()`) and the parent all read
//! this clock, so their timestamps share one axis.

/// Clock `clock` in nanoseconds, or None where it cannot be read.
#[inline]
fn read(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; a clock that does not
    // exist (another process's, once it is gone) makes the call fail.
    let ok = unsafe { libc::clock_gettime(clock, &raw mut ts) } == 0;
    ok.then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// Nanoseconds on the machine's monotonic clock.
pub fn now_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC).unwrap_or(0)
}

/// CPU time the calling thread has used, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    read(libc::CLOCK_THREAD_CPUTIME_ID).unwrap_or(0)
}

/// CPU time of every thread of process `pid`, the exited ones included, in
/// nanoseconds: None once it is gone.
pub fn process_cpu_ns(pid: u32) -> Option<u64> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid, writable clockid_t; a pid that is gone makes the call fail.
    (unsafe { libc::clock_getcpuclockid(pid, &raw mut clock) } == 0).then_some(())?;
    read(clock)
}

fn usage(who: libc::c_int) -> libc::rusage {
    // SAFETY: a zeroed rusage is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF and RUSAGE_CHILDREN with a valid pointer cannot fail.
    unsafe { libc::getrusage(who, &raw mut usage) };
    usage
}

/// User and system time of a rusage, in nanoseconds.
fn cpu_ns(usage: &libc::rusage) -> u64 {
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU time of the whole calling process (all threads), and its peak
/// resident memory in KiB.
pub fn process_usage() -> (u64, u64) {
    let own = usage(libc::RUSAGE_SELF);
    (cpu_ns(&own), own.ru_maxrss as u64)
}

/// CPU time of the calling process's children that it reaped, to the
/// microsecond, in nanoseconds.
pub fn reaped_children_cpu_ns() -> u64 {
    cpu_ns(&usage(libc::RUSAGE_CHILDREN))
}
