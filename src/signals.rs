//! SIGINT, SIGTERM and SIGHUP as messages on a channel, with their number,
//! so gilscope leaves through the front door: workers killed, terminal
//! restored, and an exit status of 128 + the signal, as a shell expects.
//!
//! The three signals are blocked in every thread (the mask is inherited by
//! threads started afterwards, so [`block`] must come first in `main`) and one
//! thread takes them with `sigwait`: no code runs inside a signal handler.
//! Child processes start with an empty mask (the standard library resets it
//! between fork and exec), so workers still die of these signals.

use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::Receiver;

/// Set once gilscope is leaving because of a signal.
static LEAVING: AtomicBool = AtomicBool::new(false);

/// Says that gilscope is leaving because of a signal: what its runs report
/// from now on (their workers killed) is no news to print.
pub fn mark_leaving() {
    LEAVING.store(true, Ordering::SeqCst);
}

pub fn leaving() -> bool {
    LEAVING.load(Ordering::SeqCst)
}

const TERMINATING: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

fn set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; sigaddset with valid signals cannot fail.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        for signal in TERMINATING {
            libc::sigaddset(&raw mut set, signal);
        }
        set
    }
}

/// Blocks the termination signals in this thread and every thread it
/// starts from now on. Call before any thread is started.
pub fn block() {
    let set = set();
    // SAFETY: a valid, initialised set; the old mask is not wanted.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut()) };
}

/// A thread that sends the number of every termination signal that arrives.
pub fn watch() -> std::io::Result<Receiver<libc::c_int>> {
    let (tx, rx) = crossbeam_channel::bounded(4);
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let set = set();
        loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: a valid set, blocked in this thread; sigwait writes the number.
            if unsafe { libc::sigwait(&raw const set, &raw mut signal) } != 0 {
                continue;
            }
            if tx.send(signal).is_err() {
                return;
            }
        }
    })?;
    Ok(rx)
}

/// The exit status a shell gives a command ended by `signal`.
pub fn exit_status(signal: libc::c_int) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}
