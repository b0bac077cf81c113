//! The command line: every option, its default and its validation.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::experiment::matrix::{Choice, ModelChoice};
use crate::experiment::model::{Model, StartMethod};
use crate::experiment::spec::{
    self, DEFAULT_ITERATIONS, DEFAULT_REQUESTS, Experiment, MAX_PACE, MAX_WORKERS, Workload,
};
use crate::protocol::Runtime;
use crate::worker::WorkerArgs;

#[derive(Parser, Debug)]
#[command(
    name = "gilscope",
    version,
    about = "See Python's GIL at work: the same CPU-bound job under threading and multiprocessing, live.",
    long_about = "See Python's GIL at work: the same job under threading (N threads, one GIL) and \
                  multiprocessing (N processes, one GIL each), side by side.\n\n\
                  Without a subcommand gilscope opens the interactive view; press space to start."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub experiment: ExperimentArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the models one after the other, without the interactive view, and print their figures.
    Run(RunArgs),
    /// Measure the real interpreter's cost per loop iteration and store it, so the
    /// simulation's iterations take as long as `CPython`'s.
    Calibrate(CalibrateArgs),
    /// The live view, one lesson at a time: a question on screen and the settings that answer it
    Lesson(LessonArgs),
    /// Show a recorded run again in the live view, as it ran (no python, no workers)
    Replay(ReplayArgs),
    /// Turn a recording into a trace that Perfetto or `chrome://tracing` opens
    Export(ExportArgs),
    /// Internal: one simulated interpreter process, started by gilscope itself.
    #[command(hide = true)]
    Worker(WorkerArgs),
}

/// What every experiment shares, interactive or not.
#[derive(Args, Debug, Clone)]
pub struct ExperimentArgs {
    /// Workers (threads or processes) per model [default: one per core]
    #[arg(long, short = 'n', allow_hyphen_values = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_WORKERS)))]
    pub workers: Option<u32>,
    /// Loop iterations per CPU worker: sqrt(i) for i in 0..N
    #[arg(long, allow_hyphen_values = true, value_name = "N", default_value_t = DEFAULT_ITERATIONS, value_parser = clap::value_parser!(u64).range(1..=10_000_000_000))]
    pub iterations: u64,
    /// How long a thread may hold the GIL while others wait (0.1ms to 1s), like sys.setswitchinterval
    #[arg(long, allow_hyphen_values = true, value_name = "DURATION", default_value = "5ms", value_parser = parse_switch_interval)]
    pub switch_interval: Duration,
    /// What each worker does
    #[arg(long, value_enum, default_value_t = Workload::Cpu)]
    pub workload: Workload,
    /// The GIL of the threaded interpreter: off is free-threaded `CPython` (3.13t)
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    pub gil: OnOff,
    /// Blocking requests per I/O worker (io and mixed workloads)
    #[arg(long, allow_hyphen_values = true, value_name = "R", default_value_t = DEFAULT_REQUESTS, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub requests: u32,
    /// How long each I/O request blocks
    #[arg(long, allow_hyphen_values = true, value_name = "DURATION", default_value = "50ms", value_parser = parse_io_wait)]
    pub io_wait: Duration,
    /// Which interpreter runs the workers: gilscope's simulated `CPython`, the real one, or both
    /// [default: the live view opens on the real one where --python can run, else the simulation; `run` uses sim]
    #[arg(long, value_enum)]
    pub runtime: Option<RuntimeChoice>,
    /// The Python interpreter of the cpython runtime (a free-threaded build such as python3.13t runs with the GIL off)
    #[arg(long, value_name = "PATH", default_value = crate::cpython::DEFAULT_PYTHON)]
    pub python: PathBuf,
    /// Slow every iteration down this many times (with more real CPU work) so a run can be watched
    #[arg(long, allow_hyphen_values = true, value_name = "X", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PACE)))]
    pub pace: Option<u32>,
    /// The models to compare, a comma list of threads, processes, subinterpreters, free-threaded
    /// [default: threads,processes]
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_model)]
    pub models: Option<Vec<Model>>,
    /// How the real `CPython`'s multiprocessing starts its processes
    #[arg(long, value_enum, default_value_t = StartMethod::Fork)]
    pub start_method: StartMethod,
    /// The subinterpreters' GIL: one each (PEP 684), or all sharing the main one
    #[arg(long, value_enum, default_value_t = GilSharing::Own)]
    pub subinterpreter_gil: GilSharing,
}

/// Whether subinterpreters have a GIL each or share one.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum GilSharing {
    Own,
    Shared,
}

fn parse_model(s: &str) -> Result<Model, String> {
    Model::parse(s.trim()).ok_or_else(|| {
        format!("unknown model {s:?}: use threads, processes, subinterpreters or free-threaded")
    })
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum RuntimeChoice {
    /// gilscope's simulated `CPython` (exact GIL timeline)
    Sim,
    /// the real interpreter (--python; GIL lanes read from its memory, or inferred where it cannot be read)
    Cpython,
    /// both, and a table of how far they agree
    Both,
}

impl RuntimeChoice {
    pub fn runtimes(self) -> &'static [Runtime] {
        match self {
            RuntimeChoice::Sim => &[Runtime::Sim],
            RuntimeChoice::Cpython => &[Runtime::Cpython],
            RuntimeChoice::Both => &[Runtime::Sim, Runtime::Cpython],
        }
    }
}

#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// The Python interpreter to measure
    #[arg(long, value_name = "PATH", default_value = crate::cpython::DEFAULT_PYTHON)]
    pub python: PathBuf,
    /// Loop iterations per measurement
    #[arg(long, allow_hyphen_values = true, value_name = "N", default_value_t = DEFAULT_ITERATIONS, value_parser = clap::value_parser!(u64).range(10_000..=10_000_000_000))]
    pub iterations: u64,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub experiment: ExperimentArgs,
    /// Which models to run, one after the other
    #[arg(long, value_enum, default_value_t = ModelChoice::Both)]
    pub model: ModelChoice,
    /// Processes of the hybrid model
    #[arg(long, allow_hyphen_values = true, value_name = "P", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_WORKERS)))]
    pub processes: u32,
    /// Time the baseline and the models this many times, interleaved, and
    /// report medians with their spread
    #[arg(long, allow_hyphen_values = true, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub rounds: u32,
    /// Print one JSON object instead of tables
    #[arg(long)]
    pub json: bool,
    /// Save every run (baseline runs too) and the OS samples to FILE, for `gilscope replay`
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Write a Chrome trace (Perfetto, `chrome://tracing`) of every run to FILE
    #[arg(long, value_name = "OUT.json")]
    pub trace: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct LessonArgs {
    /// The lesson to start at (1 is the first; `--list` shows them)
    #[arg(value_name = "N", default_value_t = 1)]
    pub number: usize,
    /// List the lessons and exit
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub experiment: ExperimentArgs,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A recording (`R` in the live view, or `gilscope run --record FILE`)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Play this many times faster than it ran (0.1 to 100)
    #[arg(long, allow_hyphen_values = true, value_name = "X", default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A recording (`R` in the live view, or `gilscope run --record FILE`)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Where to write the Chrome trace-event JSON
    #[arg(long, value_name = "OUT.json", required = true)]
    pub trace: PathBuf,
}

impl ExperimentArgs {
    /// The runtime asked for; the simulation where none was.
    pub fn runtime(&self) -> RuntimeChoice {
        self.runtime.unwrap_or(RuntimeChoice::Sim)
    }

    /// The experiment these flags describe, on the first runtime they name,
    /// one loop iteration costing `iteration_ns` (the plan's calibration).
    pub fn experiment(&self, default_pace: u32, iteration_ns: f64) -> Experiment {
        Experiment {
            iteration_ns,
            workload: self.workload,
            iterations: self.iterations,
            switch_interval: self.switch_interval,
            gil: self.gil == OnOff::On,
            requests: self.requests,
            io_wait: self.io_wait,
            pace: self.pace.unwrap_or(default_pace),
            runtime: self.runtime().runtimes()[0],
            start_method: self.start_method,
            ..Experiment::new(self.workers.unwrap_or_else(cores))
        }
    }
}

impl ExperimentArgs {
    /// The models asked for with `--models`, the subinterpreters' GIL
    /// applied; None when the flag was not given.
    pub fn chosen_models(&self) -> Option<Vec<Model>> {
        let shared_gil = self.subinterpreter_gil == GilSharing::Shared;
        let models = self.models.as_ref()?;
        let mut out: Vec<Model> = Vec::new();
        for &model in models {
            let model = match model {
                Model::Subinterpreters { .. } => Model::Subinterpreters { shared_gil },
                other => other,
            };
            if !out.contains(&model) {
                out.push(model);
            }
        }
        Some(out)
    }
}

impl RunArgs {
    /// What the models flags asked for: `--models` wins over `--model`.
    pub fn choice(&self) -> Choice {
        self.experiment.chosen_models().map_or(Choice::Named(self.model), Choice::Models)
    }

    /// The runs to make, in order, with the default iteration cost: a usage
    /// error is known before anything is measured.
    pub fn runs(&self, iteration_ns: f64) -> Result<Vec<crate::experiment::spec::RunSpec>, String> {
        crate::experiment::matrix::runs(
            &self.experiment.experiment(1, iteration_ns),
            self.choice(),
            self.processes,
            self.experiment.runtime().runtimes(),
        )
    }
}

/// Logical cores, as the OS reports them.
pub fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// Reads "5ms", "0.5ms", "100us", "1s"; a bare number is milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("{s:?} is not a duration like 5ms, 250us or 1s"))?;
    let scale = match unit.trim() {
        "" | "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "s" => 1.0,
        "ns" => 1e-9,
        other => return Err(format!("unknown unit {other:?}: use s, ms or us")),
    };
    let seconds = value * scale;
    if !seconds.is_finite() || seconds > 1e6 {
        return Err(format!("{s:?} is too long"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_speed(s: &str) -> Result<f64, String> {
    let x: f64 =
        s.trim().trim_end_matches(['x', '×']).parse().map_err(|_| format!("{s:?} is not a number like 4"))?;
    if !(0.1..=100.0).contains(&x) {
        return Err(format!("{s} is outside 0.1 ..= 100"));
    }
    Ok(x)
}

fn parse_switch_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < spec::MIN_SWITCH_INTERVAL || d > spec::MAX_SWITCH_INTERVAL {
        return Err(format!("{s} is outside 0.1ms ..= 1s"));
    }
    Ok(d)
}

fn parse_io_wait(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_micros(10) || d > Duration::from_mins(1) {
        return Err(format!("{s} is outside 10us ..= 60s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_person_writes_them() {
        assert_eq!(parse_duration("5ms"), Ok(Duration::from_millis(5)));
        assert_eq!(parse_duration("0.1ms"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_millis(7)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_switch_interval("2s").is_err());
        assert!(parse_switch_interval("50us").is_err());
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
