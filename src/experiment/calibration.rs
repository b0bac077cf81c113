//! How long one loop iteration takes, on this machine, in both runtimes:
//! what `gilscope calibrate` measures and stores, and the one place it is
//! read back from disk. A stored calibration is a file anyone may have
//! edited: it is used only when its figures are plausible, and it names the
//! interpreter it was measured on.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::cpython::Python;
use crate::sim::workload::measure_units_per_ns;

/// What `gilscope calibrate` measured: `CPython`'s cost per loop iteration,
/// and the simulation's speed measured between the same `CPython` runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub python: String,
    pub version: String,
    pub iteration_ns: f64,
    /// The simulation's cost units per ns, measured between the same
    /// `CPython` runs: one `CPython` iteration = `iteration_ns` × this many units.
    #[serde(default)]
    pub sim_units_per_ns: Option<f64>,
    /// What starting a worker in a subinterpreter of its own costs on this
    /// interpreter (3.12 and later): creating it and loading the worker
    /// there. The simulation spends as long, one interpreter at a time.
    #[serde(default)]
    pub interpreter_start_ns: Option<f64>,
}

/// What one `CPython` loop iteration may plausibly cost, in ns: a fast
/// machine's 3.12 takes about 20, a slow one's 3.8 a few hundred.
pub const ITERATION_NS: std::ops::RangeInclusive<f64> = 5.0..=5_000.0;
/// The simulation's cost units per ns: one unit is a dependent square root,
/// a few ns on any machine gilscope runs on.
pub const UNITS_PER_NS: std::ops::RangeInclusive<f64> = 0.01..=10.0;
/// What starting a subinterpreter may plausibly cost, in ns: a few ms here.
pub const INTERPRETER_START_NS: std::ops::RangeInclusive<f64> = 1e4..=5e9;

const FILE: &str = "calibration.json";

/// What is stored, read back.
#[derive(Clone, Debug, PartialEq)]
pub enum Stored {
    None,
    Sound(Calibration),
    /// Unreadable or implausible: why, in a line for the user.
    Refused(String),
}

impl Calibration {
    /// The stored calibration. A refused cache folder is an error; a file
    /// that is corrupt or out of range is refused with a reason, and the next
    /// calibration replaces it.
    pub fn load() -> Result<Stored, String> {
        let Some(cache) = Cache::existing()? else { return Ok(Stored::None) };
        let where_ = cache.path(FILE);
        let bytes = match cache.read(FILE, 64 * 1024) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(Stored::None),
            Err(why) => return Ok(Stored::Refused(format!("ignored {FILE}: {why}"))),
        };
        let calibration: Calibration = match serde_json::from_slice(&bytes) {
            Ok(c) => c,
            Err(e) => {
                return Ok(Stored::Refused(format!(
                    "ignored the corrupt {} ({e}); the next `gilscope calibrate` replaces it",
                    where_.display()
                )));
            }
        };
        Ok(match calibration.implausible() {
            Some(why) => Stored::Refused(format!(
                "ignored {}: {why}; run `gilscope calibrate` to measure again",
                where_.display()
            )),
            None => Stored::Sound(calibration),
        })
    }

    /// Why these figures cannot be right, if they cannot.
    fn implausible(&self) -> Option<String> {
        if !ITERATION_NS.contains(&self.iteration_ns) {
            return Some(format!(
                "{} ns per iteration is outside {}–{} ns",
                self.iteration_ns,
                ITERATION_NS.start(),
                ITERATION_NS.end()
            ));
        }
        if let Some(units) = self.sim_units_per_ns.filter(|u| !UNITS_PER_NS.contains(u)) {
            return Some(format!(
                "{units} simulated cost units per ns is outside {}–{}",
                UNITS_PER_NS.start(),
                UNITS_PER_NS.end()
            ));
        }
        match self.interpreter_start_ns {
            Some(ns) if !INTERPRETER_START_NS.contains(&ns) => Some(format!(
                "{ns} ns to start a subinterpreter is outside {}–{} ns",
                INTERPRETER_START_NS.start(),
                INTERPRETER_START_NS.end()
            )),
            _ => None,
        }
    }

    /// Whether this was measured on `python`: the same path as given, the same version.
    pub fn measured_on(&self, python: &Python) -> bool {
        self.python == python.path.display().to_string() && self.version == python.version
    }

    /// "python3 3.11.7": the interpreter it was measured on.
    pub fn interpreter(&self) -> String {
        format!("{} {}", self.python, self.version)
    }

    pub fn store(&self) -> Result<PathBuf, String> {
        let fail = |e: String| format!("cannot store the calibration: {e}");
        let text = serde_json::to_string_pretty(self).map_err(|e| fail(e.to_string()))?;
        Cache::create().and_then(|cache| cache.write(FILE, text.as_bytes())).map_err(fail)
    }

    /// Measures `python`'s plain sqrt loop: the median of `rounds` bare runs
    /// (the same loop varies by tens of per cent from run to run on a shared
    /// machine; the median is what a run typically costs).
    pub fn measure(python: &Python, iterations: u64, rounds: u32) -> Result<Calibration, String> {
        let (mut times, mut units) = (Vec::new(), Vec::new());
        for _ in 0..rounds.max(1) {
            // Interleaved, so both see the machine at the same speed.
            units.push(measure_units_per_ns());
            times.push(python.bare_loop_ns(iterations)?);
        }
        times.sort_unstable();
        units.sort_by(f64::total_cmp);
        let interpreter_start_ns =
            if python.has_subinterpreters() { Some(python.interpreter_start_ns()? as f64) } else { None };
        let calibration = Calibration {
            python: python.path.display().to_string(),
            version: python.version.clone(),
            iteration_ns: times[times.len() / 2] as f64 / iterations.max(1) as f64,
            sim_units_per_ns: Some(units[units.len() / 2]),
            interpreter_start_ns,
        };
        match calibration.implausible() {
            Some(why) => Err(format!("{} measured {why}: is it really CPython?", python.describe())),
            None => Ok(calibration),
        }
    }
}
