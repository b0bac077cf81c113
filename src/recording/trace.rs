//! A recording as Chrome trace events (the JSON that Perfetto and
//! `chrome://tracing` open): one process track per run (each model of each
//! round or session, and each baseline run), one thread track per worker
//! with a slice for every stretch it ran, waited for the GIL or sat in I/O,
//! drop requests as instant events on the asker's track, and where threads
//! share a GIL, a track of its own for who held it.
//!
//! The slices are rebuilt from the records (`experiment::slices`), not from
//! the tally's binned lanes. Times are whole microseconds from the
//! recording's first event: a boundary shared by two slices is rounded once,
//! so the slices of a track never overlap.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::app::Msg;
use crate::experiment::slices::{Slicer, State};
use crate::experiment::spec::{RunSpec, Workload};
use crate::experiment::supervisor::{Report, RunId};
use crate::protocol::{Hello, Timeline};
use crate::recording::{Begin, Event, Recording};

/// One run of the recording, as the trace shows it.
struct TracedRun {
    name: String,
    spec: RunSpec,
    streams: BTreeMap<usize, (Option<Hello>, Slicer)>,
}

/// Thread ids: worker `w` is `w + 1`; the GIL of the process whose first
/// worker is `w` is `GIL_TID + w`.
const GIL_TID: u64 = 1_000_000;

/// A GIL that several threads of one OS process share.
struct Gil<'a> {
    os_pid: u32,
    workers: &'a [u32],
    /// How the holds were known: "exact", "measured", "inferred".
    source: &'static str,
}

/// The recording as a trace-event JSON document.
pub fn trace(recording: &Recording) -> Value {
    let runs = traced_runs(recording);
    let origin = runs
        .iter()
        .flat_map(|r| r.streams.values())
        .flat_map(|(_, s)| s.workers.values().filter_map(|w| w.started))
        .min()
        .unwrap_or(0);
    let clock = Micros { origin };
    let mut events = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        let pid = index as u64 + 1;
        events.push(json!({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": run.name}}));
        events
            .push(json!({"ph": "M", "name": "process_sort_index", "pid": pid, "args": {"sort_index": pid}}));
        let prefix = run.spec.model.lane_prefix();
        for (hello, slicer) in run.streams.values() {
            worker_events(&mut events, pid, prefix, slicer, clock);
            let Some(hello) = hello.as_ref().filter(|h| h.gil) else { continue };
            for (os_pid, workers) in slicer.shared_gils() {
                // The lock's own records, or what gilscope read of the real
                // interpreter's GIL, or the worker's stamps.
                let source = match (slicer.lanes.get(&os_pid), hello.timeline) {
                    (Some(read), _) => read.name(),
                    (None, Timeline::Exact) => "exact",
                    (None, Timeline::Inferred { .. }) => "inferred",
                };
                let gil = Gil { os_pid, workers: &workers, source };
                gil_events(&mut events, pid, prefix, &gil, slicer, clock);
            }
        }
    }
    let h = &recording.header;
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "gilscope": h.gilscope,
            "recorded": h.saved_at,
            "machine": h.machine.describe(),
            "runtime": h.interpreter.runtime,
            "python": h.interpreter.python_version,
        },
    })
}

/// Every run the recording started, its records sliced stream by stream.
fn traced_runs(recording: &Recording) -> Vec<TracedRun> {
    let mut runs: Vec<(RunId, TracedRun)> = Vec::new();
    let mut part = String::new();
    for entry in &recording.entries {
        match &entry.event {
            Event::Begin(begin) => {
                part = match begin {
                    Begin::Earlier => "timed earlier".to_owned(),
                    Begin::Session { .. } => "session".to_owned(),
                    Begin::Round(n) => format!("round {n}"),
                };
            }
            Event::Start { run, baseline, spec } => {
                let what = if *baseline {
                    let kind = if spec.experiment.workload == Workload::Io { "I/O" } else { "CPU" };
                    format!("baseline: one {kind} worker alone")
                } else {
                    spec.label()
                };
                let name = if part.is_empty() { what } else { format!("{part} · {what}") };
                runs.push((*run, TracedRun { name, spec: spec.clone(), streams: BTreeMap::new() }));
            }
            Event::Msg(Msg::Report(report)) => {
                let Some((_, run)) = runs.iter_mut().rev().find(|(id, _)| *id == report.run()) else {
                    continue;
                };
                match report {
                    Report::Hello { stream, hello, .. } => {
                        run.streams.entry(*stream).or_default().0 = Some(hello.clone());
                    }
                    Report::Record { stream, record, .. } => {
                        run.streams.entry(*stream).or_default().1.record(record);
                    }
                    Report::Ended { .. } => {}
                }
            }
            Event::Msg(_) => {}
        }
    }
    for (_, run) in &mut runs {
        for (_, slicer) in run.streams.values_mut() {
            slicer.close();
        }
    }
    runs.into_iter().map(|(_, run)| run).collect()
}

/// Whole microseconds since the trace's first event. Each boundary is
/// rounded once, so slices that meet in ns meet in µs.
#[derive(Clone, Copy)]
struct Micros {
    origin: u64,
}

impl Micros {
    fn at(self, t: u64) -> u64 {
        (t.saturating_sub(self.origin) + 500) / 1_000
    }
}

/// A track per worker: its slices, and the drop requests it made.
fn worker_events(events: &mut Vec<Value>, pid: u64, prefix: &str, slicer: &Slicer, us: Micros) {
    for (&worker, w) in &slicer.workers {
        let tid = u64::from(worker) + 1;
        let thread = format!("{prefix}{worker}");
        events.push(
            json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": thread}}),
        );
        events.push(
            json!({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": 2 * tid}}),
        );
        for s in &w.slices {
            let (from, to) = (us.at(s.from), us.at(s.to));
            if to > from {
                events.push(json!({
                    "ph": "X", "name": s.state.name(), "cat": category(s.state),
                    "ts": from, "dur": to - from, "pid": pid, "tid": tid,
                }));
            }
        }
    }
}

/// A track for a GIL that several workers share: who held it when.
fn gil_events(events: &mut Vec<Value>, pid: u64, prefix: &str, gil: &Gil<'_>, slicer: &Slicer, us: Micros) {
    let first = u64::from(gil.workers.iter().copied().min().unwrap_or(0));
    let tid = GIL_TID + first;
    let name = match gil.source {
        "exact" => format!("GIL of process {}", gil.os_pid),
        source => format!("GIL of process {} ({source})", gil.os_pid),
    };
    events.push(json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}}));
    // Just above the process's first worker (worker w sorts at 2w + 2).
    let sort = 2 * first + 1;
    events.push(
        json!({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": sort}}),
    );
    let mut last_end = 0;
    for hold in slicer.gil_lane(gil.workers) {
        let (from, to) = (us.at(hold.from).max(last_end), us.at(hold.to));
        if to > from {
            let holder = format!("{prefix}{} holds it", hold.worker);
            events.push(json!({
                "ph": "X", "name": holder, "cat": "gil", "ts": from, "dur": to - from, "pid": pid, "tid": tid,
            }));
            last_end = to;
        }
    }
}

fn category(state: State) -> &'static str {
    match state {
        State::Running => "running",
        State::Waiting => "waiting",
        State::Io => "io",
    }
}

/// Writes the trace of `recording` to `path`.
pub fn write(recording: &Recording, path: &std::path::Path) -> Result<(), String> {
    // Whole or not at all: a full disk leaves no half a trace, and an
    // earlier trace of that name stays as it was.
    super::write_whole(path, |out| {
        serde_json::to_writer(out, &trace(recording)).map_err(std::io::Error::other)
    })
}
