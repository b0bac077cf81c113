//! SIGINT, SIGTERM and SIGHUP as messages on a channel, with their number,
//! so gilscope leaves through the front door: workers killed, terminal
//! restored, and an exit status of 128 + the signal, as a shell expects.
//!
//! The three signals are blocked in every thread (the mask is inherited by
//! threads started afterwards, so [`block`] must come first in `main`) and one
//! thread takes them with `sigwait`: no code runs inside a signal handler.
//! Child processes start with an empty mask (the standard library resets it
//! between fork and exec), so workers still die of these signals.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender};

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

/// Whoever takes the signals now, if anyone: see [`redirect`].
static TAKER: Mutex<Option<Sender<libc::c_int>>> = Mutex::new(None);

/// Starts the one thread that takes the termination signals, for the whole
/// life of gilscope. Each goes to the receiver of the last [`redirect`] while
/// it lives; before that (or after it is dropped) `otherwise` is called with
/// it on that thread: a command is never deaf to a signal, whatever it is
/// busy with (asking an interpreter, reading a file).
pub fn watch(otherwise: fn(libc::c_int)) -> std::io::Result<()> {
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let set = set();
        loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: a valid set, blocked in this thread; sigwait writes the number.
            if unsafe { libc::sigwait(&raw const set, &raw mut signal) } != 0 {
                continue;
            }
            let taken = match TAKER.lock() {
                Ok(taker) => taker.as_ref().is_some_and(|tx| tx.try_send(signal).is_ok()),
                Err(_) => false,
            };
            if !taken {
                otherwise(signal);
            }
        }
    })?;
    Ok(())
}

/// From now on the termination signals come here (the live view and a
/// replay leave through their own door: terminal restored, then the exit).
pub fn redirect() -> Receiver<libc::c_int> {
    let (tx, rx) = crossbeam_channel::bounded(4);
    if let Ok(mut taker) = TAKER.lock() {
        *taker = Some(tx);
    }
    rx
}

/// The exit status a shell gives a command ended by `signal`.
pub fn exit_status(signal: libc::c_int) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}
