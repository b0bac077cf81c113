//! A recording: one session of gilscope kept in a file, so that it can be
//! shown again elsewhere (`gilscope replay`) or opened in a trace viewer
//! (`gilscope export`). The format is documented in docs/recording-format.md.
//!
//! A recording is what the live view's app took in, message by message, with
//! the time each arrived: worker reports (baseline runs included), OS
//! samples, keys, ticks, and which run the app started when. Feeding the same
//! messages into a fresh app at the same times gives the same app, and so the
//! same screen: a replay is the app, not a second renderer.
//!
//! ```text
//!  mod.rs      the file: a header line, then one JSON object per line
//!  machine.rs  where it was recorded: cores, CPU, OS
//!  tape.rs     what records a session: the live view's, `gilscope run`'s
//!  replay.rs   a recording fed back into an app
//!  trace.rs    a recording as Chrome trace events (Perfetto, chrome://tracing)
//! ```

pub mod machine;
pub mod replay;
pub mod tape;
pub mod trace;

use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::{Deserialize, Serialize};

use crate::app::{Mode, Msg, View, Zoom};
use crate::experiment::memory::Memory;
use crate::experiment::spec::{Experiment, Model, RunSpec, StartMethod, Workload};
use crate::experiment::supervisor::{Report, RunId};
use crate::monitor::{ProcessSample, Sample};
use crate::protocol::{self, Runtime};

pub use machine::Machine;

/// The first field of every recording.
pub const FORMAT: &str = "gilscope-recording";
/// Bumped whenever a line changes meaning or shape.
pub const VERSION: u32 = 1;
/// The file name's ending, by convention.
pub const EXTENSION: &str = "gilrec";

/// The first line: what was recorded, where, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// The gilscope that recorded it.
    pub gilscope: String,
    /// When it was saved, UTC, e.g. "2025-06-01T15:30:12Z".
    pub saved_at: String,
    /// "live" (the live view's `R`) or "run" (`gilscope run --record`).
    pub source: String,
    pub settings: Settings,
    pub machine: Machine,
    pub interpreter: Interpreter,
}

/// What the session ran, as the live view's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub experiment: ExperimentLine,
    /// "threads", "processes", "hybrid 2" (processes).
    pub models: Vec<String>,
    /// "race" or "one at a time".
    pub mode: String,
    /// The lesson on screen (from 1), if any.
    pub lesson: Option<usize>,
    /// Whether the recording machine had interpreters for these models
    /// (without, the live view runs them simulated).
    #[serde(default)]
    pub cpython_subinterpreters: bool,
    #[serde(default)]
    pub cpython_free_threaded: bool,
}

/// The interpreter the workers ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interpreter {
    /// "sim" or "cpython".
    pub runtime: String,
    /// The real interpreter's path and version, when it ran.
    pub python: Option<String>,
    pub python_version: Option<String>,
}

/// An experiment's settings, field by field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentLine {
    pub workers: u32,
    pub workload: String,
    pub iterations: u64,
    pub switch_interval_ns: u64,
    pub gil: bool,
    pub requests: u32,
    pub io_wait_ns: u64,
    pub reply_iterations: u64,
    pub iteration_ns: f64,
    pub pace: u32,
    pub runtime: String,
    /// How the real `CPython`'s multiprocessing starts processes.
    #[serde(default = "fork")]
    pub start_method: String,
}

fn fork() -> String {
    StartMethod::Fork.name().to_owned()
}

impl From<&Experiment> for ExperimentLine {
    fn from(e: &Experiment) -> Self {
        let Experiment {
            workers,
            workload,
            iterations,
            switch_interval,
            gil,
            requests,
            io_wait,
            reply_iterations,
            iteration_ns,
            pace,
            runtime,
            start_method,
        } = e.clone();
        ExperimentLine {
            workers,
            workload: workload.name().to_owned(),
            iterations,
            switch_interval_ns: switch_interval.as_nanos() as u64,
            gil,
            requests,
            io_wait_ns: io_wait.as_nanos() as u64,
            reply_iterations,
            iteration_ns,
            pace,
            runtime: runtime.as_str().to_owned(),
            start_method: start_method.name().to_owned(),
        }
    }
}

impl ExperimentLine {
    pub fn experiment(&self) -> Result<Experiment, String> {
        let workload = match self.workload.as_str() {
            "cpu" => Workload::Cpu,
            "io" => Workload::Io,
            "mixed" => Workload::Mixed,
            other => return Err(format!("unknown workload {other:?}")),
        };
        Ok(Experiment {
            workers: self.workers,
            workload,
            iterations: self.iterations,
            switch_interval: Duration::from_nanos(self.switch_interval_ns),
            gil: self.gil,
            requests: self.requests,
            io_wait: Duration::from_nanos(self.io_wait_ns),
            reply_iterations: self.reply_iterations,
            iteration_ns: self.iteration_ns,
            pace: self.pace,
            runtime: runtime(&self.runtime)?,
            start_method: [StartMethod::Fork, StartMethod::Forkserver, StartMethod::Spawn]
                .into_iter()
                .find(|m| m.name() == self.start_method)
                .ok_or_else(|| format!("unknown start method {:?}", self.start_method))?,
        })
    }
}

fn runtime(name: &str) -> Result<Runtime, String> {
    match name {
        "sim" => Ok(Runtime::Sim),
        "cpython" => Ok(Runtime::Cpython),
        other => Err(format!("unknown runtime {other:?}")),
    }
}

/// Whether `gilscope run` can record `runs` so the live view replays them:
/// its models share one experiment (GIL and runtime included), as the live
/// view's do.
pub fn replayable(runs: &[RunSpec]) -> Result<(), String> {
    let Some(first) = runs.first() else { return Ok(()) };
    if runs.iter().any(|r| r.experiment.runtime != first.experiment.runtime) {
        return Err(
            "the live view replays one runtime at a time: record each --runtime on its own".to_owned()
        );
    }
    if runs.iter().any(|r| r.experiment != first.experiment) {
        return Err(
            "the live view replays models that share their settings; --model all mixes GIL on and off: record --model both (--trace takes any)".to_owned(),
        );
    }
    Ok(())
}

/// "threads", "processes", "subinterpreters", "subinterpreters shared-gil",
/// "free-threaded", "hybrid 2".
pub fn model_name(model: Model) -> String {
    match model {
        Model::Hybrid { processes } => format!("hybrid {processes}"),
        Model::Subinterpreters { shared_gil: true } => format!("{} shared-gil", model.name()),
        m => m.name().to_owned(),
    }
}

pub fn parse_model(name: &str) -> Result<Model, String> {
    match name.split_once(' ') {
        Some(("hybrid", n)) => {
            n.parse().map(|processes| Model::Hybrid { processes }).map_err(|_| format!("bad model {name:?}"))
        }
        Some(("subinterpreters", "shared-gil")) => Ok(Model::Subinterpreters { shared_gil: true }),
        _ => Model::parse(name)
            .ok_or_else(|| format!("it uses the model {name:?}, which this gilscope does not know")),
    }
}

pub fn parse_mode(name: &str) -> Result<Mode, String> {
    [Mode::Race, Mode::OneAtATime]
        .into_iter()
        .find(|m| m.label() == name)
        .ok_or_else(|| format!("unknown mode {name:?}"))
}

/// Where a part of the recording begins, and what the replay does there.
#[derive(Clone, Debug, PartialEq)]
pub enum Begin {
    /// A baseline run the session reused, timed in an earlier session: the
    /// replay times it in an app of its own and hands its time on.
    Earlier,
    /// The live view's session: space is pressed with this view.
    Session { view: View },
    /// Round `n` of `gilscope run`: each round times its own baseline, so
    /// the replay forgets the one before, then presses space.
    Round(u32),
}

/// One line after the header.
#[derive(Clone, Debug)]
pub enum Event {
    Begin(Begin),
    /// The app asked for run `run` (a baseline run, or a model).
    Start {
        run: RunId,
        baseline: bool,
        spec: RunSpec,
    },
    /// A message the app took, as it took it.
    Msg(Msg),
}

/// An event and when it arrived (`CLOCK_MONOTONIC` ns of the recording machine).
#[derive(Clone, Debug)]
pub struct Entry {
    pub at: u64,
    pub event: Event,
}

/// A whole recording, in memory.
#[derive(Clone, Debug)]
pub struct Recording {
    pub header: Header,
    pub entries: Vec<Entry>,
}

/// Why a file could not be read, and how gilscope should exit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    pub message: String,
    /// 2: not a recording this gilscope reads (a usage error); 1: a
    /// recording, but damaged.
    pub exit_code: u8,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

// ---------------------------------------------------------------- lines

#[derive(Serialize, Deserialize)]
struct Line {
    at: u64,
    #[serde(flatten)]
    what: What,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum What {
    Begin(BeginLine),
    Start(StartLine),
    Started {
        run: RunId,
        requested_at: u64,
        pids: Vec<u32>,
    },
    StartFailed {
        run: RunId,
        why: String,
    },
    /// A worker stream's header line, in the wire format.
    Hello {
        run: RunId,
        stream: usize,
        line: String,
    },
    /// `[run, stream, record line in the wire format]`: the bulk of a file.
    Rec(RunId, usize, String),
    Ended {
        run: RunId,
        stream: usize,
        error: Option<String>,
    },
    Sample(SampleLine),
    Key(String),
    Tick {},
    /// The last line: how many entries came before it.
    End {
        entries: usize,
    },
}

#[derive(Serialize, Deserialize)]
struct BeginLine {
    /// "earlier", "session" or "round".
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    round: Option<u32>,
    /// The zoom level the session opened at (None: the whole run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    zoom: Option<usize>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    touched: bool,
}

#[derive(Serialize, Deserialize)]
struct StartLine {
    run: RunId,
    baseline: bool,
    model: String,
    experiment: ExperimentLine,
}

#[derive(Serialize, Deserialize)]
struct SampleLine {
    at: u64,
    cores: Vec<f32>,
    processes: Vec<ProcessLine>,
    outside_cores: Option<f32>,
}

#[derive(Serialize, Deserialize)]
struct ProcessLine {
    pid: u32,
    cpu_cores: Option<f32>,
    rss_bytes: u64,
    threads: u32,
    worker_threads: u32,
    /// Resident, proportional and unique memory, KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memory: Option<[u64; 3]>,
}

impl From<&Sample> for SampleLine {
    fn from(s: &Sample) -> Self {
        SampleLine {
            at: s.at,
            cores: s.cores.clone(),
            processes: s
                .processes
                .iter()
                .map(|p| ProcessLine {
                    pid: p.pid,
                    cpu_cores: p.cpu_cores,
                    rss_bytes: p.rss_bytes,
                    threads: p.threads,
                    worker_threads: p.worker_threads,
                    memory: p.memory.map(|m| [m.rss_kb, m.pss_kb, m.uss_kb]),
                })
                .collect(),
            outside_cores: s.outside_cores,
        }
    }
}

impl From<SampleLine> for Sample {
    fn from(s: SampleLine) -> Self {
        Sample {
            at: s.at,
            cores: s.cores,
            processes: s
                .processes
                .into_iter()
                .map(|p| ProcessSample {
                    pid: p.pid,
                    cpu_cores: p.cpu_cores,
                    rss_bytes: p.rss_bytes,
                    threads: p.threads,
                    worker_threads: p.worker_threads,
                    memory: p.memory.map(|[rss_kb, pss_kb, uss_kb]| Memory { rss_kb, pss_kb, uss_kb }),
                })
                .collect(),
            outside_cores: s.outside_cores,
        }
    }
}

/// A key as a recording writes it: "z", "space", "Left", "Ctrl-c".
pub fn key_name(key: &KeyEvent) -> String {
    let name = match key.code {
        KeyCode::Char(' ') => "space".to_owned(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::F(n) => format!("F{n}"),
        KeyCode::Left => "Left".to_owned(),
        KeyCode::Right => "Right".to_owned(),
        KeyCode::Up => "Up".to_owned(),
        KeyCode::Down => "Down".to_owned(),
        KeyCode::Home => "Home".to_owned(),
        KeyCode::End => "End".to_owned(),
        KeyCode::Esc => "Esc".to_owned(),
        KeyCode::Enter => "Enter".to_owned(),
        KeyCode::Tab => "Tab".to_owned(),
        KeyCode::Backspace => "Backspace".to_owned(),
        // Bound to nothing: it only clears the notice, as any key does.
        _ => "other".to_owned(),
    };
    if key.modifiers.contains(KeyModifiers::CONTROL) { format!("Ctrl-{name}") } else { name }
}

/// The key a recording names (an unknown name is a key bound to nothing).
pub fn parse_key(name: &str) -> KeyEvent {
    let (ctrl, name) = match name.strip_prefix("Ctrl-") {
        Some(rest) if !rest.is_empty() => (true, rest),
        _ => (false, name),
    };
    let mut chars = name.chars();
    let code = match (chars.next(), chars.next(), name) {
        (_, _, "space") => KeyCode::Char(' '),
        (Some(c), None, _) => KeyCode::Char(c),
        (_, _, "Left") => KeyCode::Left,
        (_, _, "Right") => KeyCode::Right,
        (_, _, "Up") => KeyCode::Up,
        (_, _, "Down") => KeyCode::Down,
        (_, _, "Home") => KeyCode::Home,
        (_, _, "End") => KeyCode::End,
        (_, _, "Esc") => KeyCode::Esc,
        (_, _, "Enter") => KeyCode::Enter,
        (_, _, "Tab") => KeyCode::Tab,
        (_, _, "Backspace") => KeyCode::Backspace,
        (Some('F'), Some(_), f) => f[1..].parse().map_or(KeyCode::Null, KeyCode::F),
        _ => KeyCode::Null,
    };
    KeyEvent::new(code, if ctrl { KeyModifiers::CONTROL } else { KeyModifiers::NONE })
}

impl Entry {
    /// The entry as a line of the file; None for a message a recording
    /// leaves out (the viewport and the viewer's keys are the replaying
    /// screen's own; quitting and saving are not part of the run).
    fn line(&self) -> Option<Line> {
        let what = match &self.event {
            Event::Begin(begin) => What::Begin(match begin {
                Begin::Earlier => {
                    BeginLine { kind: "earlier".into(), round: None, zoom: None, touched: false }
                }
                Begin::Session { view } => BeginLine {
                    kind: "session".into(),
                    round: None,
                    zoom: match view.zoom {
                        Zoom::Level(level) => Some(level),
                        Zoom::WholeRun => None,
                    },
                    touched: view.touched,
                },
                Begin::Round(n) => {
                    BeginLine { kind: "round".into(), round: Some(*n), zoom: None, touched: false }
                }
            }),
            Event::Start { run, baseline, spec } => What::Start(StartLine {
                run: *run,
                baseline: *baseline,
                model: model_name(spec.model),
                experiment: ExperimentLine::from(&spec.experiment),
            }),
            Event::Msg(msg) => match msg {
                Msg::Key(key) => What::Key(key_name(key)),
                Msg::Report(Report::Hello { run, stream, hello }) => {
                    What::Hello { run: *run, stream: *stream, line: hello.to_string() }
                }
                Msg::Report(Report::Record { run, stream, record }) => {
                    What::Rec(*run, *stream, record.to_string())
                }
                Msg::Report(Report::Ended { run, stream, outcome }) => {
                    What::Ended { run: *run, stream: *stream, error: outcome.clone().err() }
                }
                Msg::Sample(sample) => What::Sample(SampleLine::from(sample)),
                Msg::Started { run, requested_at, pids } => {
                    What::Started { run: *run, requested_at: *requested_at, pids: pids.clone() }
                }
                Msg::StartFailed { run, why } => What::StartFailed { run: *run, why: why.clone() },
                Msg::Tick => What::Tick {},
                // What the live view's machine offered is in the header.
                Msg::Viewport { .. }
                | Msg::Terminate
                | Msg::Viewer(_)
                | Msg::Saved(_)
                | Msg::PythonAnswered(_)
                | Msg::Interpreters { .. } => return None,
            },
        };
        Some(Line { at: self.at, what })
    }

    fn from_line(line: Line) -> Result<Option<Entry>, String> {
        let at = line.at;
        let event = match line.what {
            What::Begin(b) => Event::Begin(match (b.kind.as_str(), b.round) {
                ("earlier", _) => Begin::Earlier,
                ("session", _) => Begin::Session {
                    view: View {
                        zoom: b.zoom.map_or(Zoom::WholeRun, Zoom::Level),
                        pan: None,
                        touched: b.touched,
                    },
                },
                ("round", Some(n)) => Begin::Round(n),
                (kind, _) => return Err(format!("unknown begin {kind:?}")),
            }),
            What::Start(s) => Event::Start {
                run: s.run,
                baseline: s.baseline,
                spec: RunSpec { experiment: s.experiment.experiment()?, model: parse_model(&s.model)? },
            },
            What::Started { run, requested_at, pids } => Event::Msg(Msg::Started { run, requested_at, pids }),
            What::StartFailed { run, why } => Event::Msg(Msg::StartFailed { run, why }),
            What::Hello { run, stream, line } => {
                let hello = protocol::decode_hello(&line).map_err(|e| e.to_string())?;
                Event::Msg(Msg::Report(Report::Hello { run, stream, hello }))
            }
            What::Rec(run, stream, line) => {
                let record = protocol::decode(&line).map_err(|e| e.to_string())?;
                Event::Msg(Msg::Report(Report::Record { run, stream, record }))
            }
            What::Ended { run, stream, error } => {
                Event::Msg(Msg::Report(Report::Ended { run, stream, outcome: error.map_or(Ok(()), Err) }))
            }
            What::Sample(s) => Event::Msg(Msg::Sample(Sample::from(s))),
            What::Key(name) => Event::Msg(Msg::Key(parse_key(&name))),
            What::Tick {} => Event::Msg(Msg::Tick),
            What::End { .. } => return Ok(None),
        };
        Ok(Some(Entry { at, event }))
    }
}

impl Recording {
    /// The settings' experiment, models and mode as the app takes them.
    pub fn settings(&self) -> Result<(Experiment, Vec<Model>, Mode), String> {
        let s = &self.header.settings;
        let models = s.models.iter().map(|m| parse_model(m)).collect::<Result<Vec<_>, _>>()?;
        Ok((s.experiment.experiment()?, models, parse_mode(&s.mode)?))
    }

    /// Writes the recording: the header, the entries, the closing line.
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let json = |e: serde_json::Error| std::io::Error::other(e.to_string());
        serde_json::to_writer(&mut *out, &self.header).map_err(json)?;
        out.write_all(b"\n")?;
        let mut written = 0;
        for line in self.entries.iter().filter_map(Entry::line) {
            serde_json::to_writer(&mut *out, &line).map_err(json)?;
            out.write_all(b"\n")?;
            written += 1;
        }
        let end = Line { at: self.entries.last().map_or(0, |e| e.at), what: What::End { entries: written } };
        serde_json::to_writer(&mut *out, &end).map_err(json)?;
        out.write_all(b"\n")?;
        out.flush()
    }

    /// Saves to `path` whole or not at all.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        write_whole(path, |out| self.write(out))
    }

    /// Reads the recording at `path`, a regular file (not a pipe or a
    /// device, which could block or never end).
    pub fn load(path: &Path) -> Result<Recording, ReadError> {
        let cannot = |e: std::io::Error| ReadError {
            message: format!("cannot open {}: {e}", path.display()),
            exit_code: 2,
        };
        if !std::fs::metadata(path).map_err(cannot)?.is_file() {
            return Err(ReadError {
                message: format!("{} is not a regular file", path.display()),
                exit_code: 2,
            });
        }
        let file = std::fs::File::open(path).map_err(cannot)?;
        Recording::read(BufReader::new(file), &path.display().to_string())
    }

    /// Reads a recording; `name` names it in errors.
    pub fn read(input: impl BufRead, name: &str) -> Result<Recording, ReadError> {
        let foreign = |why: String| ReadError {
            message: format!("{name} is not a gilscope recording ({why})"),
            exit_code: 2,
        };
        let damaged = |why: String| ReadError { message: format!("{name} is damaged: {why}"), exit_code: 1 };
        let mut lines = BoundedLines { input, done: false };
        let first = match lines.next() {
            Some(Ok(line)) => line,
            Some(Err(e)) => return Err(foreign(format!("unreadable: {e}"))),
            None => return Err(foreign("it is empty".to_owned())),
        };
        // Format and version first, so a newer file says so rather than
        // failing on a field this gilscope does not know.
        let value: serde_json::Value = serde_json::from_str(&first)
            .map_err(|_| foreign("its first line is not a gilscope-recording header".to_owned()))?;
        if value.get("format").and_then(serde_json::Value::as_str) != Some(FORMAT) {
            return Err(foreign("its first line is not a gilscope-recording header".to_owned()));
        }
        let version = value.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if version != u64::from(VERSION) {
            let newer = if version > u64::from(VERSION) { "a newer" } else { "another" };
            return Err(ReadError {
                message: format!(
                    "{name} was recorded by {newer} gilscope (recording format {version}; this one reads {VERSION}): replay it with that version"
                ),
                exit_code: 2,
            });
        }
        let header: Header =
            serde_json::from_value(value).map_err(|e| damaged(format!("its header does not read: {e}")))?;
        let mut entries = Vec::new();
        let mut count = 0;
        let mut ended = false;
        for (i, line) in lines.enumerate() {
            let number = i + 2;
            let line = line.map_err(|e| damaged(format!("line {number} is unreadable: {e}")))?;
            if ended {
                return Err(damaged(format!("line {number} follows its closing line")));
            }
            let parsed: Line = serde_json::from_str(&line).map_err(|e| {
                if e.is_eof() {
                    damaged(format!("it is cut short in line {number} (was it still being written?)"))
                } else {
                    damaged(format!("line {number} is not a recording entry: {e}"))
                }
            })?;
            if let What::End { entries: expected } = parsed.what {
                if expected != count {
                    return Err(damaged(format!(
                        "its closing line counts {expected} entries, it has {count}"
                    )));
                }
                ended = true;
                continue;
            }
            let entry = Entry::from_line(parsed).map_err(|e| damaged(format!("line {number}: {e}")))?;
            entries.extend(entry);
            count += 1;
        }
        if !ended {
            return Err(damaged(format!(
                "it is cut short after {count} entries, without its closing line (was it still being written?)"
            )));
        }
        Ok(Recording { header, entries })
    }
}

/// Writes a file whole or not at all: into a file beside `path`, renamed
/// over it once complete, so a full disk or an error leaves the old file
/// (if any) as it was and no half-written one under the name.
pub fn write_whole(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), String> {
    // A device or a pipe (/dev/null, /dev/stdout) is written as it is: it
    // cannot be half a file, and must never be renamed over.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|file| {
                let mut out = std::io::BufWriter::new(file);
                fill(&mut out)?;
                out.flush()
            })
            .map_err(|e| format!("cannot write {}: {e}", path.display()));
    }
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    let part = std::path::PathBuf::from(part);
    let written = std::fs::File::create(&part).and_then(|file| {
        let mut out = std::io::BufWriter::new(file);
        fill(&mut out)?;
        // No fsync: it can take seconds on a busy disk, and the live view
        // waits for a save; the rename alone keeps a half-written file from
        // ever bearing the name.
        out.into_inner().map_err(std::io::IntoInnerError::into_error).map(drop)
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&part, path)) {
        let _ = std::fs::remove_file(&part);
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    Ok(())
}

/// The longest line a recording may hold: its longest entries, a batch of
/// reports, take a few KiB.
const MAX_LINE: u64 = 16 << 20;

/// A recording's lines, each at most [`MAX_LINE`] bytes: a file without
/// newlines is refused at that length, not read whole into memory.
struct BoundedLines<R> {
    input: R,
    done: bool,
}

impl<R: BufRead> Iterator for BoundedLines<R> {
    type Item = std::io::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut line = Vec::new();
        let read = std::io::Read::take(&mut self.input, MAX_LINE + 1).read_until(b'\n', &mut line);
        let bad = |why: String| Some(Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why)));
        match read {
            Ok(0) => None,
            Ok(_) if line.last() == Some(&b'\n') => {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Some(
                    String::from_utf8(line)
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
                )
            }
            Ok(n) if n as u64 > MAX_LINE => {
                self.done = true;
                bad(format!("a line longer than {} MiB", MAX_LINE >> 20))
            }
            // The last line, without a newline.
            Ok(_) => {
                self.done = true;
                Some(
                    String::from_utf8(line)
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
                )
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A file in `dir` for a recording saved now: `gilscope-2025-06-01-153012.gilrec`
/// (UTC), with `-2`, `-3`… where one of that name exists.
pub fn new_file_name(dir: &Path) -> std::path::PathBuf {
    let since_epoch =
        std::time::SystemTime::now().duration_since(std::time::SystemTime::UNIX_EPOCH).unwrap_or_default();
    let stem = format!("gilscope-{}", file_stamp(since_epoch));
    let mut path = dir.join(format!("{stem}.{EXTENSION}"));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{stem}-{n}.{EXTENSION}"));
        n += 1;
    }
    path
}

/// "2025-06-01T15:30:12Z": a UTC time as ISO 8601, for the header.
pub fn utc_timestamp(since_epoch: Duration) -> String {
    let (date, secs) = utc_date(since_epoch);
    format!("{date}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// "2025-06-01-153012": the same, for a file name.
pub fn file_stamp(since_epoch: Duration) -> String {
    let (date, secs) = utc_date(since_epoch);
    format!("{date}-{:02}{:02}{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The date ("2025-06-01") and the seconds into that day, UTC: days since
/// 1970 to a civil date, after Howard Hinnant's well-known algorithm.
fn utc_date(since_epoch: Duration) -> (String, u64) {
    let secs = since_epoch.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (format!("{year:04}-{month:02}-{day:02}"), secs % 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Hello, Record, ReleaseReason, Timeline};

    fn header() -> Header {
        Header {
            format: FORMAT.into(),
            version: VERSION,
            gilscope: "test".into(),
            saved_at: "2025-01-01T00:00:00Z".into(),
            source: "live".into(),
            settings: Settings {
                experiment: ExperimentLine::from(&Experiment::new(2)),
                models: vec!["threads".into(), "hybrid 2".into(), "subinterpreters shared-gil".into()],
                mode: "race".into(),
                lesson: Some(3),
                cpython_subinterpreters: true,
                cpython_free_threaded: false,
            },
            machine: Machine { cores: 16, cpu: Some("a CPU".into()), os: None, kernel: None },
            interpreter: Interpreter { runtime: "sim".into(), python: None, python_version: None },
        }
    }

    fn every_entry() -> Vec<Entry> {
        let spec = RunSpec { experiment: Experiment::new(1), model: Model::Threads };
        let hello = Hello {
            version: protocol::VERSION,
            pid: 9,
            runtime: Runtime::Sim,
            gil: true,
            threads: 1,
            first_worker: 0,
            timeline: Timeline::Exact,
            gils: None,
        };
        let msgs = vec![
            Msg::Started { run: 1, requested_at: 5, pids: vec![9] },
            Msg::StartFailed { run: 2, why: "no".into() },
            Msg::Report(Report::Hello { run: 1, stream: 0, hello }),
            Msg::Report(Report::Record {
                run: 1,
                stream: 0,
                record: Record::Release { t: 7, worker: 0, reason: ReleaseReason::Io },
            }),
            Msg::Report(Report::Ended { run: 1, stream: 0, outcome: Err("killed".into()) }),
            Msg::Sample(Sample {
                at: 8,
                cores: vec![12.5, 99.0],
                processes: vec![ProcessSample {
                    pid: 9,
                    cpu_cores: Some(0.97),
                    rss_bytes: 3,
                    threads: 2,
                    worker_threads: 1,
                    memory: Some(Memory { rss_kb: 3, pss_kb: 2, uss_kb: 1 }),
                }],
                outside_cores: Some(0.02),
            }),
            Msg::Key(KeyEvent::new(KeyCode::Char(' '), KeyModifiers::NONE)),
            Msg::Key(KeyEvent::new(KeyCode::Left, KeyModifiers::NONE)),
            Msg::Tick,
        ];
        let mut entries = vec![
            Entry { at: 1, event: Event::Begin(Begin::Earlier) },
            Entry { at: 2, event: Event::Begin(Begin::Round(2)) },
            Entry { at: 3, event: Event::Begin(Begin::Session { view: View::default() }) },
            Entry { at: 4, event: Event::Start { run: 1, baseline: true, spec } },
        ];
        entries.extend(
            msgs.into_iter().enumerate().map(|(i, m)| Entry { at: 10 + i as u64, event: Event::Msg(m) }),
        );
        entries
    }

    fn bytes(recording: &Recording) -> Vec<u8> {
        let mut out = Vec::new();
        recording.write(&mut out).unwrap();
        out
    }

    #[test]
    fn every_kind_of_entry_survives_a_round_trip() {
        let recording = Recording { header: header(), entries: every_entry() };
        let written = bytes(&recording);
        let read = Recording::read(written.as_slice(), "x").unwrap();
        assert_eq!(read.header, recording.header);
        assert_eq!(bytes(&read), written, "written again, the same bytes");
        assert_eq!(format!("{:?}", read.entries), format!("{:?}", recording.entries));
    }

    #[test]
    fn a_cut_short_file_is_damaged_and_a_foreign_one_is_not_a_recording() {
        let written = bytes(&Recording { header: header(), entries: every_entry() });
        let text = String::from_utf8(written).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let without_end = lines[..lines.len() - 1].join("\n");
        let err = Recording::read(without_end.as_bytes(), "f").unwrap_err();
        assert_eq!(err.exit_code, 1);
        assert!(err.message.contains("cut short"), "{err}");
        let mid_line = &text[..text.len() - 10];
        let err = Recording::read(mid_line.as_bytes(), "f").unwrap_err();
        assert_eq!(err.exit_code, 1, "{err}");
        for foreign in ["", "hello\n", "{\"format\":\"other\"}\n", "\u{0}\u{1}"] {
            let err = Recording::read(foreign.as_bytes(), "f").unwrap_err();
            assert_eq!(err.exit_code, 2, "{foreign:?}: {err}");
            assert!(err.message.contains("not a gilscope recording"), "{err}");
            assert!(!err.message.contains('\n'));
        }
    }

    #[test]
    fn a_newer_version_is_refused_by_name() {
        let mut h = serde_json::to_value(header()).unwrap();
        h["version"] = serde_json::json!(VERSION + 1);
        h["a_field_from_the_future"] = serde_json::json!(true);
        let err = Recording::read(format!("{h}\n").as_bytes(), "f.gilrec").unwrap_err();
        assert_eq!(err.exit_code, 2);
        assert!(err.message.contains("newer gilscope (recording format 2; this one reads 1)"), "{err}");
    }

    #[test]
    fn keys_are_written_by_name_and_read_back() {
        for (code, mods) in [
            (KeyCode::Char(' '), KeyModifiers::NONE),
            (KeyCode::Char('Z'), KeyModifiers::NONE),
            (KeyCode::Char('c'), KeyModifiers::CONTROL),
            (KeyCode::F(1), KeyModifiers::NONE),
            (KeyCode::Home, KeyModifiers::NONE),
        ] {
            let key = KeyEvent::new(code, mods);
            assert_eq!(parse_key(&key_name(&key)), key);
        }
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(Duration::from_secs(0)), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(Duration::from_secs(1_709_251_199)), "2024-02-29T23:59:59Z");
        assert_eq!(file_stamp(Duration::from_hours(264_384)), "2000-02-29-000000");
    }
}
