//! One supervised run as the live view keeps it: its spec, its tally, its
//! processes, what the OS said of them, and where it stands.

use std::collections::BTreeMap;

use crate::experiment::comparison::Timed;
use crate::experiment::memory::Peaks;
use crate::experiment::spec::RunSpec;
use crate::experiment::supervisor::{Report, RunId};
use crate::experiment::tally::{RunResult, Tally};
use crate::monitor::Sample;
use crate::protocol::{Record, Timeline};

/// What the OS said about a run's processes, newest and most seen.
///
/// Processes and threads are counted in the worker processes only (those a
/// worker named in its `process` record): a `CPython` multiprocessing parent
/// runs no worker, so it is no worker process. CPU and memory are every
/// process's of the run, the parent's included: they are what the model costs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OsView {
    /// Readings of the latest sample that saw any of the worker processes.
    pub processes: u32,
    pub threads: u32,
    pub worker_threads: u32,
    /// Readings of the latest sample that saw any of the run's processes.
    /// None until a process was seen twice (a rate needs two readings).
    pub cpu_cores: Option<f32>,
    pub rss_bytes: u64,
    /// The most worker processes seen alive at once, kept after the run.
    pub peak_processes: u32,
    /// The most threads, and the most worker threads (named `worker-N`),
    /// seen in any one worker process.
    pub peak_threads_per_process: u32,
    pub peak_worker_threads_per_process: u32,
    /// Resident memory of each process of the run, largest seen.
    pub peak_rss_each: BTreeMap<u32, u64>,
    /// Resident, proportional and unique memory of the run's processes, at
    /// their peaks.
    pub memory: Peaks,
}

impl OsView {
    /// Some worker process was seen alive.
    pub fn seen(&self) -> bool {
        self.peak_processes > 0
    }

    /// Some process of the run was seen alive (its memory is known).
    pub fn seen_any(&self) -> bool {
        !self.peak_rss_each.is_empty()
    }

    /// Threads per process as a student would count them: the worker
    /// threads where the OS names them (a process also has helper threads),
    /// else every thread.
    pub fn threads_per_process(&self) -> u32 {
        match self.peak_worker_threads_per_process {
            0 => self.peak_threads_per_process,
            n => n,
        }
    }
}

/// One supervised run: a baseline run, or one model.
#[derive(Clone, Debug)]
pub struct Run {
    pub spec: RunSpec,
    /// Given when the app asks for the run to start.
    pub id: Option<RunId>,
    /// Present once the processes started.
    pub tally: Option<Tally>,
    /// Processes of the run: those the supervisor started, then any others
    /// the workers named.
    pub pids: Vec<u32>,
    /// Why the run could not start.
    pub start_error: Option<String>,
    /// No more reports will be taken: finished, failed, or stopped.
    pub over: bool,
    pub os: OsView,
    /// Workers whose own process died (not stopped with the rest of a failed model).
    pub died: Vec<u32>,
    /// The outside load of each OS sample taken while the run went on.
    outside: Vec<f32>,
    /// Reports taken so far.
    applied: u64,
}

/// Memory one run's lanes may take before their finest zoom is let go.
pub const LANE_BUDGET: usize = 16 << 20;

/// A run's GIL hand-overs, as far as they can be told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switches {
    /// The threads run without a GIL: there is nothing to hand over.
    NoGil,
    /// Counted from the lock's own takes as they come, then the processes'
    /// own count once they all ended.
    Counted(u64),
    /// The real interpreter's own counter (`switch_number`), read while the
    /// workers worked: exact, whatever the lanes' source.
    Read(u64),
    /// Lanes inferred from progress stamps: their takes come in batches per
    /// worker, so only the processes' own count means anything, and only
    /// once they all ended (None before).
    Inferred(Option<u64>),
}

/// Where a run stands, for the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    NotStarted,
    Starting,
    Running,
    Finished,
    Failed,
}

impl Run {
    pub fn new(spec: RunSpec) -> Self {
        Run {
            spec,
            id: None,
            tally: None,
            pids: Vec::new(),
            start_error: None,
            over: false,
            os: OsView::default(),
            died: Vec::new(),
            outside: Vec::new(),
            applied: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        match (&self.id, &self.tally) {
            _ if self.start_error.is_some() => Phase::Failed,
            (None, _) => Phase::NotStarted,
            (Some(_), None) if self.over => Phase::Failed,
            (Some(_), None) => Phase::Starting,
            (Some(_), Some(t)) if t.failure.is_some() => Phase::Failed,
            (Some(_), Some(_)) if self.over => Phase::Finished,
            (Some(_), Some(_)) => Phase::Running,
        }
    }

    /// Whether the run's interpreters have no GIL, as asked or as they said.
    pub fn gil_off(&self) -> bool {
        self.tally.as_ref().map_or_else(|| self.spec.gil_off(), Tally::gil_off)
    }

    pub fn live(&self) -> bool {
        self.id.is_some() && !self.over
    }

    /// Why the run failed, in a sentence.
    pub fn failure(&self) -> Option<&str> {
        self.start_error.as_deref().or_else(|| self.tally.as_ref()?.failure.as_deref())
    }

    pub fn result(&self) -> Option<RunResult> {
        self.tally.as_ref()?.result()
    }

    /// GIL hand-overs, as far as they can be told so far.
    pub fn switches(&self) -> Switches {
        if self.gil_off() {
            return Switches::NoGil;
        }
        if let Some((read, _)) = self.tally.as_ref().and_then(Tally::switches_read) {
            return Switches::Read(read);
        }
        let total = self.tally.as_ref().filter(|t| t.succeeded()).map(Tally::switches);
        // A GIL with one worker has no one to hand over to, whatever the timeline.
        let one_per_gil = !self.spec.model.shares_processes(self.spec.experiment.workers);
        let inferred = self.tally.as_ref().is_some_and(|t| t.timeline() != Timeline::Exact);
        if inferred && !one_per_gil {
            Switches::Inferred(total)
        } else {
            Switches::Counted(total.unwrap_or_else(|| self.tally.as_ref().map_or(0, Tally::lane_handovers)))
        }
    }

    /// Takes a report of this run: into the tally, and into what the tally
    /// does not keep (the hand-overs seen so far, the pids to watch, the
    /// workers whose own process died). True when a new pid is to be watched.
    pub(super) fn apply(&mut self, report: Report) -> bool {
        let Some(tally) = &mut self.tally else { return false };
        let record = match &report {
            Report::Record { record, .. } => Some(record.clone()),
            Report::Ended { stream, outcome: Err(_), .. } => {
                // A process that dies is told from its siblings stopped after it.
                let range = match tally.hellos.get(stream) {
                    Some(h) => h.first_worker..h.first_worker + h.threads,
                    None => 0..tally.workers.len() as u32,
                };
                self.died.extend(range);
                None
            }
            Report::Hello { .. } | Report::Ended { .. } => None,
        };
        tally.apply(report);
        // Now and then, keep the lanes inside their memory budget.
        self.applied += 1;
        if self.applied.is_multiple_of(4096) {
            while tally.lane_bytes() > LANE_BUDGET && tally.shed_finest() {}
        }
        record.is_some_and(|record| self.note(&record))
    }

    fn note(&mut self, record: &Record) -> bool {
        match *record {
            Record::Process { pid, .. } if !self.pids.contains(&pid) => {
                self.pids.push(pid);
                true
            }
            _ => false,
        }
    }

    /// Cores' worth of CPU other processes used while the run went on (the
    /// mean of the OS samples; 0 before any).
    pub fn outside_load(&self) -> f64 {
        if self.outside.is_empty() {
            return 0.0;
        }
        self.outside.iter().map(|&o| f64::from(o)).sum::<f64>() / self.outside.len() as f64
    }

    /// The run as one timed round of a comparison, once it finished cleanly.
    pub fn timed(&self) -> Option<Timed> {
        let tally = self.tally.as_ref()?;
        let result = tally.result()?;
        let latencies_ns =
            if tally.workers.len() > 1 { tally.contended_latencies_ns() } else { tally.latencies_ns() };
        Some(Timed { result, latencies_ns, outside: self.outside_load() })
    }

    pub(super) fn observe(&mut self, sample: &Sample) {
        if let Some(outside) = sample.outside_cores {
            self.outside.push(outside);
        }
        let seen: Vec<_> = self.pids.iter().filter_map(|pid| sample.process(*pid)).collect();
        if seen.is_empty() {
            return;
        }
        let os = &mut self.os;
        os.cpu_cores = seen.iter().map(|p| p.cpu_cores).sum::<Option<f32>>();
        os.rss_bytes = seen.iter().map(|p| p.rss_bytes).sum();
        for p in &seen {
            let peak = os.peak_rss_each.entry(p.pid).or_default();
            *peak = (*peak).max(p.rss_bytes);
            if let Some(m) = p.memory {
                os.memory.add(p.pid, m);
            }
        }
        let mut worker_pids: Vec<u32> =
            self.tally.iter().flat_map(|t| &t.workers).filter_map(|w| w.pid).collect();
        worker_pids.sort_unstable();
        worker_pids.dedup();
        let workers: Vec<_> = seen.into_iter().filter(|p| worker_pids.contains(&p.pid)).collect();
        if workers.is_empty() {
            return;
        }
        os.processes = workers.len() as u32;
        os.threads = workers.iter().map(|p| p.threads).sum();
        os.worker_threads = workers.iter().map(|p| p.worker_threads).sum();
        os.peak_processes = os.peak_processes.max(os.processes);
        for p in &workers {
            os.peak_threads_per_process = os.peak_threads_per_process.max(p.threads);
            os.peak_worker_threads_per_process = os.peak_worker_threads_per_process.max(p.worker_threads);
        }
    }
}
