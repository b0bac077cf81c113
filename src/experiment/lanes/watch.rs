//! Watching one GIL of a running `CPython`: found in the process's memory
//! (the interpreter still starting is asked again for a while), then read
//! 10,000 times a second by a [`Sampler`] on a thread of its own.

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::gil_sampler::{
    Fallback, GilReader, PythonProcess, Sample, Sampler, SamplerConfig, SamplerStats, Version,
};

/// How long a worker process just started may take before its GIL can be read.
pub const ATTACH_WITHIN: Duration = Duration::from_secs(3);

/// One GIL being sampled.
pub struct Watch {
    pub version: Version,
    /// Where the GIL is in the process: two interpreters sharing one GIL
    /// share its watch.
    pub address: u64,
    pub period_ns: u64,
    sampler: Option<Sampler>,
    samples: Receiver<Vec<Sample>>,
    /// The sampler's counters once it stopped.
    last: SamplerStats,
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
    /// Starts sampling what `reader` reads.
    pub fn start(reader: GilReader) -> Result<Watch, Fallback> {
        let config = SamplerConfig::default();
        let (version, address) = (reader.version(), reader.gil_address());
        let (sampler, batches) = Sampler::start(reader, config).map_err(|e| Fallback {
            reason: format!("cannot start a thread to sample the GIL: {e}"),
            transient: false,
        })?;
        Ok(Watch {
            version,
            address,
            period_ns: u64::try_from(config.period.as_nanos()).unwrap_or(u64::MAX),
            sampler: Some(sampler),
            samples: batches,
            last: SamplerStats::default(),
        })
    }

    /// The samples taken since the last call, oldest first.
    pub fn take_samples(&self) -> impl Iterator<Item = Sample> + '_ {
        self.samples.try_iter().flatten()
    }

    /// Whether the sampler has stopped (asked to, or the process exited).
    pub fn ended(&self) -> bool {
        self.sampler.as_ref().is_none_or(|s| s.ending().is_some())
    }

    /// Stops sampling (the samples taken so far can still be taken).
    pub fn stop(&mut self) {
        if let Some(sampler) = self.sampler.take() {
            self.last = sampler.stop();
        }
    }

    /// The sampler's counters so far.
    pub fn stats(&self) -> SamplerStats {
        self.sampler.as_ref().map_or(self.last, Sampler::stats)
    }
}
