//! Watching one GIL of a running `CPython`: found in the process's memory
//! (the interpreter still starting is asked again for a while), then read
//! 10,000 times a second by a [`Sampler`] on a thread of its own; or, where
//! perf events are allowed and the interpreter kept its `take_gil` and
//! `drop_gil` symbols, every take and release from [`GilProbes`], with the
//! interpreter's own switch counter read once at each drain by the thread
//! that drains (no thread of its own to wake).

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::clock::{now_ns, thread_cpu_ns};
use crate::gil_sampler::uprobes::{GilEvent, GilEventKind, GilProbes};
use crate::gil_sampler::{
    Fallback, GilReader, PythonProcess, ReadError, Sample, Sampler, SamplerConfig, SamplerStats,
    UNSURE_AFTER, Version, read_sample,
};
use crate::protocol::LaneSource;

/// How late an event may land in its ring buffer after its timestamp: the
/// events stamped later than this before a drain wait for the next one.
const EVENT_SETTLE_NS: u64 = 1_000_000;

/// The environment variable that asks for sampled lanes even where exact
/// ones could be had (`GILSCOPE_LANES=measured`), to compare the two.
pub const LANES_ENV: &str = "GILSCOPE_LANES";

/// How long a worker process just started may take before its GIL can be read.
pub const ATTACH_WITHIN: Duration = Duration::from_secs(3);

/// How often a GIL that one worker uses alone is read when there are no
/// uprobes: it hands nothing over, so a thousand reads a second show all
/// there is, for a tenth of the CPU ten thousand would take.
const LONE_SAMPLE_PERIOD: Duration = Duration::from_millis(1);

/// How a GIL's state is read.
enum Reads {
    /// By a sampler on a thread of its own, every `period_ns` (the holder
    /// comes from them).
    Sampled { sampler: Option<Sampler>, samples: Receiver<Vec<Sample>>, last: SamplerStats, period_ns: u64 },
    /// Once at each drain, by the draining thread, for the switch counter
    /// only: the holder comes from the probes. A thread of its own woken a
    /// thousand times a second cost about 1 % of a core here. `kept`: the
    /// read taken as it stopped, not taken yet.
    AtDrain { reader: Box<GilReader>, stats: SamplerStats, ended: bool, kept: Vec<Sample> },
}

/// One GIL being read: sampled, or probed.
pub struct Watch {
    pub version: Version,
    /// Where the GIL is in the process: two interpreters sharing one GIL
    /// share its watch.
    pub address: u64,
    reads: Reads,
    /// Exact takes and releases, where uprobes could be placed.
    probes: Option<GilProbes>,
    /// Events drained but stamped too recently to be known complete.
    unsettled: Vec<GilEvent>,
    /// Why there are no probes, where they were tried.
    pub no_probes: Option<String>,
}

/// A reader of the GIL that interpreter `interp` (0: the main one) of
/// process `pid` uses, asked again every 5 ms while the interpreter is still
/// starting, for at most `within`.
pub fn reader(pid: u32, interp: u64, within: Duration) -> Result<GilReader, Fallback> {
    let start = Instant::now();
    loop {
        let found = PythonProcess::attach(pid).and_then(|process| {
            let interpreters = process.interpreters().map_err(|e| Fallback {
                reason: format!("cannot list the interpreters of process {pid}: {e}"),
                transient: false,
            })?;
            match interpreters.iter().find(|i| u64::try_from(i.id).is_ok_and(|id| id == interp)) {
                Some(i) => process.gil_reader(*i),
                None => Err(Fallback {
                    reason: format!("process {pid} has no interpreter {interp} (yet)"),
                    transient: true,
                }),
            }
        });
        match found {
            Err(f) if f.transient && start.elapsed() < within => std::thread::sleep(Duration::from_millis(5)),
            done => return done,
        }
    }
}

impl Watch {
    /// Starts reading what `reader` reads: with `exact`, probing its takes
    /// and releases where the machine allows it, else sampling it.
    /// `alone`: one worker uses this GIL, so there are no hand-overs to catch.
    pub fn start(reader: GilReader, exact: bool, alone: bool) -> Result<Watch, Fallback> {
        let (probes, no_probes) = if exact {
            match GilProbes::attach(reader.process()) {
                Ok(probes) => (Some(probes), None),
                Err(why) => (None, Some(why.reason)),
            }
        } else {
            (None, None)
        };
        let (version, address) = (reader.version(), reader.gil_address());
        let reads = if probes.is_some() {
            let start = now_ns();
            let stats = SamplerStats { started_at: start, updated_at: start, ..SamplerStats::default() };
            Reads::AtDrain { reader: Box::new(reader), stats, ended: false, kept: Vec::new() }
        } else {
            let config = if alone {
                SamplerConfig { period: LONE_SAMPLE_PERIOD, ..SamplerConfig::default() }
            } else {
                SamplerConfig::default()
            };
            let (sampler, batches) = Sampler::start(reader, config).map_err(|e| Fallback {
                reason: format!("cannot start a thread to sample the GIL: {e}"),
                transient: false,
            })?;
            let period_ns = u64::try_from(config.period.as_nanos()).unwrap_or(u64::MAX);
            Reads::Sampled {
                sampler: Some(sampler),
                samples: batches,
                last: SamplerStats::default(),
                period_ns,
            }
        };
        Ok(Watch { version, address, reads, probes, unsettled: Vec::new(), no_probes })
    }

    /// Where its lanes come from: every take and release, or samples.
    pub fn source(&self) -> LaneSource {
        match self.reads {
            Reads::Sampled { period_ns, .. } => LaneSource::Measured { period_ns },
            Reads::AtDrain { .. } => LaneSource::Exact,
        }
    }

    /// Every take and release is seen (uprobes), not sampled.
    pub fn exact(&self) -> bool {
        self.probes.is_some()
    }

    /// The largest share of a probed thread's ring buffer filled between
    /// the last two drains (0 without probes).
    pub fn fullest_ring(&self) -> f64 {
        self.probes.as_ref().map_or(0.0, GilProbes::fullest)
    }

    /// Puts the probes on threads started since they were placed (a worker
    /// that just named its thread): the process's threads are listed now,
    /// however recently a drain did, and their events are seen from now on.
    pub fn follow_new_threads(&mut self) {
        if let Some(probes) = self.probes.as_mut() {
            probes.list_threads_at_next_drain();
            let events = probes.drain();
            self.unsettled.extend(events);
        }
    }

    /// The exact events known complete now, oldest first, and up to when
    /// they are (None without probes). With `all`, every one drained.
    pub fn take_events(&mut self, all: bool) -> Option<(Vec<GilEvent>, u64)> {
        let probes = self.probes.as_mut()?;
        let horizon = if all { u64::MAX } else { crate::clock::now_ns().saturating_sub(EVENT_SETTLE_NS) };
        let mut events = std::mem::take(&mut self.unsettled);
        events.extend(probes.drain());
        events.sort_by_key(|e| e.t);
        let settled = events.partition_point(|e| e.t < horizon);
        self.unsettled = events.split_off(settled);
        Some((events, horizon))
    }

    /// The samples taken since the last call, oldest first (read now, for
    /// a GIL read at each drain).
    pub fn take_samples(&mut self, into: &mut Vec<Sample>) {
        match &mut self.reads {
            Reads::Sampled { samples, .. } => into.extend(samples.try_iter().flatten()),
            Reads::AtDrain { reader, stats, ended, kept } => {
                into.append(kept);
                if !*ended {
                    read_at_drain(reader, stats, ended, into);
                }
            }
        }
    }

    /// Whether reading has stopped (asked to, or the process exited).
    pub fn ended(&self) -> bool {
        match &self.reads {
            Reads::Sampled { sampler, .. } => sampler.as_ref().is_none_or(|s| s.ending().is_some()),
            Reads::AtDrain { ended, .. } => *ended,
        }
    }

    /// Stops reading (the samples taken so far can still be taken; a GIL
    /// read at each drain is read once more, for its final count); the
    /// probes stay until the watch is dropped.
    pub fn stop(&mut self) {
        match &mut self.reads {
            Reads::Sampled { sampler, last, .. } => {
                if let Some(sampler) = sampler.take() {
                    *last = sampler.stop();
                }
            }
            Reads::AtDrain { reader, stats, ended, kept } => {
                if !*ended {
                    read_at_drain(reader, stats, ended, kept);
                }
                *ended = true;
            }
        }
    }

    /// The readers' counters so far.
    pub fn stats(&self) -> SamplerStats {
        match &self.reads {
            Reads::Sampled { sampler, last, .. } => sampler.as_ref().map_or(*last, Sampler::stats),
            Reads::AtDrain { stats, .. } => *stats,
        }
    }
}

/// One read of a GIL at a drain into `into`, its cost counted in `stats`;
/// `ended` once the process is gone.
fn read_at_drain(reader: &mut GilReader, stats: &mut SamplerStats, ended: &mut bool, into: &mut Vec<Sample>) {
    let cpu_before = thread_cpu_ns();
    let unsure_after = u64::try_from(UNSURE_AFTER.as_nanos()).unwrap_or(u64::MAX);
    match read_sample(reader, unsure_after, stats) {
        Ok(sample) => into.extend(sample),
        Err(ReadError::Torn) => {}
        Err(ReadError::Exited) => *ended = true,
        Err(_) => stats.failed += 1,
    }
    stats.cpu_ns += thread_cpu_ns().saturating_sub(cpu_before);
    stats.updated_at = now_ns();
}

/// The holder an exact event leaves: the taker, or nobody after its holder
/// let go (None where the event changes nothing: a thread starting to wait).
pub fn holder_after(event: &GilEvent, holder: Option<u32>) -> Option<Option<u32>> {
    match event.kind {
        GilEventKind::Take => Some(Some(event.tid)),
        GilEventKind::Drop if holder.is_none_or(|h| h == event.tid) => Some(None),
        GilEventKind::Drop | GilEventKind::Wait => None,
    }
}

/// Whether exact lanes are to be tried (unless `GILSCOPE_LANES=measured`).
pub fn exact_wanted() -> bool {
    !std::env::var(LANES_ENV).is_ok_and(|v| v == "measured")
}
