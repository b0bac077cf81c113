//! Sampling a GIL at a fixed rate on a thread of its own, and delivering
//! the samples in batches over a channel.
//!
//! Deadlines are absolute (start + k × period, slept to with
//! `clock_nanosleep(TIMER_ABSTIME)`), so a late wake-up does not push every
//! later sample back: the rate holds, and a deadline overrun is counted as
//! missed rather than silently stretching the period. Samples go out in
//! batches (every 10 ms by default) so the consumer is woken 100 times a
//! second, not 10,000; a consumer that falls behind loses batches (counted)
//! rather than slowing the sampler down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::{GilReader, GilSample, ReadError, Stamped};
use crate::clock::{now_ns, thread_cpu_ns};

/// How often the sampler also checks that the process still lives and
/// forgets holders whose threads have exited.
const HOUSEKEEPING_NS: u64 = 100_000_000;

/// Failed reads in a row after which the sampler gives up.
const FAILURES_TO_GIVE_UP: u32 = 100;

/// How slow a copy of the GIL may be before it is dropped as unsure (the
/// default of [`SamplerConfig::unsure_after`]).
pub const UNSURE_AFTER: Duration = Duration::from_millis(1);

/// How to sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplerConfig {
    /// Time between samples (default 100 µs: 10,000 samples a second).
    pub period: Duration,
    /// Time between deliveries of a batch (default 10 ms).
    pub batch: Duration,
    /// Batches that may wait in the channel before new ones are dropped.
    pub queue: usize,
    /// A copy of the GIL that took longer than this (the sampler was paused
    /// in the middle of it) cannot say when it saw what it saw: it is
    /// dropped, and counted as `unsure` (default 1 ms).
    pub unsure_after: Duration,
}

impl Default for SamplerConfig {
    fn default() -> SamplerConfig {
        SamplerConfig {
            period: Duration::from_micros(100),
            batch: Duration::from_millis(10),
            queue: 1000,
            unsure_after: UNSURE_AFTER,
        }
    }
}

/// One sample: the GIL at `t` (`CLOCK_MONOTONIC`, ns, the axis of every
/// other record of gilscope: the middle of the read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub t: u64,
    pub gil: GilSample,
}

/// The sampler's counters so far (published with each batch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SamplerStats {
    /// Samples taken and delivered (or dropped as `undelivered`).
    pub taken: u64,
    /// Reads rejected because the GIL changed hands during them (each
    /// deadline retries once).
    pub torn: u64,
    /// Deadlines passed without a sample because the sampler ran late.
    pub missed: u64,
    /// Reads dropped because the copy took so long (over 1 ms: the
    /// sampler was paused during it) that its time is unknown.
    pub unsure: u64,
    /// Reads that failed for another reason.
    pub failed: u64,
    /// Samples dropped because the channel was full.
    pub undelivered: u64,
    /// CPU time of the sampler thread itself.
    pub cpu_ns: u64,
    /// When the first deadline was, and when these counters were published.
    pub started_at: u64,
    pub updated_at: u64,
}

impl SamplerStats {
    /// Wall time covered by these counters.
    pub fn elapsed_ns(&self) -> u64 {
        self.updated_at.saturating_sub(self.started_at)
    }

    /// Samples taken per second.
    pub fn rate(&self) -> f64 {
        self.taken as f64 / (self.elapsed_ns().max(1) as f64 / 1e9)
    }

    /// The sampler thread's CPU as a share of one core (0.01 = 1 %).
    pub fn cpu_share(&self) -> f64 {
        self.cpu_ns as f64 / self.elapsed_ns().max(1) as f64
    }
}

/// Why a sampler stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// [`Sampler::stop`] (or drop) asked it to.
    Stopped,
    /// The sampled process exited.
    Exited,
    /// Reads kept failing; the last error.
    Failed(String),
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    taken: AtomicU64,
    torn: AtomicU64,
    missed: AtomicU64,
    unsure: AtomicU64,
    failed: AtomicU64,
    undelivered: AtomicU64,
    cpu_ns: AtomicU64,
    started_at: AtomicU64,
    updated_at: AtomicU64,
    ending: Mutex<Option<Ending>>,
}

impl Shared {
    fn publish(&self, c: &SamplerStats) {
        self.taken.store(c.taken, Ordering::Relaxed);
        self.torn.store(c.torn, Ordering::Relaxed);
        self.missed.store(c.missed, Ordering::Relaxed);
        self.unsure.store(c.unsure, Ordering::Relaxed);
        self.failed.store(c.failed, Ordering::Relaxed);
        self.undelivered.store(c.undelivered, Ordering::Relaxed);
        self.cpu_ns.store(c.cpu_ns, Ordering::Relaxed);
        self.started_at.store(c.started_at, Ordering::Relaxed);
        self.updated_at.store(c.updated_at, Ordering::Release);
    }

    fn stats(&self) -> SamplerStats {
        let updated_at = self.updated_at.load(Ordering::Acquire);
        SamplerStats {
            taken: self.taken.load(Ordering::Relaxed),
            torn: self.torn.load(Ordering::Relaxed),
            missed: self.missed.load(Ordering::Relaxed),
            unsure: self.unsure.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            undelivered: self.undelivered.load(Ordering::Relaxed),
            cpu_ns: self.cpu_ns.load(Ordering::Relaxed),
            started_at: self.started_at.load(Ordering::Relaxed),
            updated_at,
        }
    }

    fn ending(&self) -> Option<Ending> {
        self.ending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// A GIL sampled on a thread of its own until stopped, dropped, or the
/// process exits. Batches of samples arrive on the receiver `start` gives;
/// it disconnects when the sampler ends.
pub struct Sampler {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    pub fn start(
        reader: GilReader,
        config: SamplerConfig,
    ) -> std::io::Result<(Sampler, Receiver<Vec<Sample>>)> {
        let (tx, rx) = crossbeam_channel::bounded(config.queue.max(1));
        let shared = Arc::new(Shared::default());
        let for_thread = Arc::clone(&shared);
        let thread =
            std::thread::Builder::new().name(format!("gil-sampler-{}", reader.pid())).spawn(move || {
                let ending = run(reader, config, &for_thread, &tx);
                *for_thread.ending.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(ending);
            })?;
        Ok((Sampler { shared, thread: Some(thread) }, rx))
    }

    /// The counters as of the last batch.
    pub fn stats(&self) -> SamplerStats {
        self.shared.stats()
    }

    /// Why it stopped, once it has.
    pub fn ending(&self) -> Option<Ending> {
        self.shared.ending()
    }

    /// Stops the sampler (within one period) and returns its final counters.
    pub fn stop(mut self) -> SamplerStats {
        self.halt();
        self.shared.stats()
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Sleeps until `deadline` on `CLOCK_MONOTONIC` (at once if it has passed).
fn sleep_until(deadline: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline / 1_000_000_000).cast_signed(),
        tv_nsec: (deadline % 1_000_000_000).cast_signed(),
    };
    // SAFETY: a valid timespec, no remainder wanted with TIMER_ABSTIME.
    while unsafe {
        libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &raw const ts, std::ptr::null_mut())
    } == libc::EINTR
    {}
}

/// The sampling loop; returns why it ended.
fn run(mut reader: GilReader, config: SamplerConfig, shared: &Shared, tx: &Sender<Vec<Sample>>) -> Ending {
    let period = u64::try_from(config.period.as_nanos()).unwrap_or(u64::MAX).max(1_000);
    let batch_ns = u64::try_from(config.batch.as_nanos()).unwrap_or(u64::MAX);
    let unsure_after = u64::try_from(config.unsure_after.as_nanos()).unwrap_or(u64::MAX);
    // The kernel may wake a sleeper up to its timer slack late (50 µs by
    // default): a tenth of a period keeps wake-ups near their deadlines.
    // SAFETY: prctl on the calling thread only.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, (period / 10).max(1) as libc::c_ulong) };

    let per_batch = usize::try_from(batch_ns / period + 1).unwrap_or(1024).min(1 << 16);
    let cpu_at_start = thread_cpu_ns();
    let start = now_ns();
    let mut stats = SamplerStats { started_at: start, updated_at: start, ..SamplerStats::default() };
    let mut batch = Vec::with_capacity(per_batch);
    let mut batch_started = start;
    let mut next_housekeeping = start + HOUSEKEEPING_NS;
    let mut failures_in_row = 0u32;
    let mut k = 0u64;

    let ending = loop {
        if shared.stop.load(Ordering::Relaxed) {
            break Ending::Stopped;
        }
        sleep_until(start + k * period);

        match read_sample(&mut reader, unsure_after, &mut stats) {
            Ok(sample) => {
                batch.extend(sample);
                failures_in_row = 0;
            }
            Err(ReadError::Torn) => {}
            Err(ReadError::Exited) => break Ending::Exited,
            Err(other) => {
                stats.failed += 1;
                failures_in_row += 1;
                if failures_in_row >= FAILURES_TO_GIVE_UP {
                    break if reader.has_exited() {
                        Ending::Exited
                    } else {
                        Ending::Failed(other.to_string())
                    };
                }
            }
        }

        let now = now_ns();
        // The next deadline still ahead; those overrun in between are missed.
        let next = (now - start) / period + 1;
        stats.missed += next.saturating_sub(k + 1);
        k = next;

        if now - batch_started >= batch_ns {
            deliver(&mut batch, per_batch, tx, &mut stats);
            batch_started = now;
            stats.cpu_ns = thread_cpu_ns() - cpu_at_start;
            stats.updated_at = now;
            shared.publish(&stats);
        }
        if now >= next_housekeeping {
            next_housekeeping = now + HOUSEKEEPING_NS;
            if reader.has_exited() {
                break Ending::Exited;
            }
            if reader.forget_exited_threads().is_err() {
                break Ending::Exited;
            }
        }
    };
    deliver(&mut batch, per_batch, tx, &mut stats);
    stats.cpu_ns = thread_cpu_ns() - cpu_at_start;
    stats.updated_at = now_ns();
    shared.publish(&stats);
    ending
}

/// One read of `reader` as a sample: a read the GIL changed hands during is
/// tried once more, and a copy slower than `unsure_after` ns has no sure
/// time and gives no sample. Counts the reads taken, torn and unsure in
/// `stats`; failures are the caller's to count (`Err`, `Torn` after the
/// second try).
pub fn read_sample(
    reader: &mut GilReader,
    unsure_after: u64,
    stats: &mut SamplerStats,
) -> Result<Option<Sample>, ReadError> {
    let mut read = reader.read_stamped();
    if matches!(read, Err(ReadError::Torn)) {
        stats.torn += 1;
        read = reader.read_stamped();
    }
    match read {
        Ok(stamped) if stamped.took > unsure_after => {
            stats.unsure += 1;
            Ok(None)
        }
        Ok(Stamped { t, gil, .. }) => {
            stats.taken += 1;
            Ok(Some(Sample { t, gil }))
        }
        Err(ReadError::Torn) => {
            stats.torn += 1;
            Err(ReadError::Torn)
        }
        Err(e) => Err(e),
    }
}

fn deliver(batch: &mut Vec<Sample>, per_batch: usize, tx: &Sender<Vec<Sample>>, stats: &mut SamplerStats) {
    if batch.is_empty() {
        return;
    }
    let full = std::mem::replace(batch, Vec::with_capacity(per_batch));
    let n = full.len() as u64;
    match tx.try_send(full) {
        Ok(()) => {}
        // Nobody listening, or too slow: the samples are lost, and counted.
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => stats.undelivered += n,
    }
}
