//! How long one loop iteration takes, on this machine, in both runtimes:
//! what `gilscope calibrate` measures and stores, and the one place it is
//! read back from disk.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
}

impl Calibration {
    fn file() -> PathBuf {
        crate::cache::dir().join("calibration.json")
    }

    /// The stored calibration, if any (a broken file counts as none).
    pub fn load() -> Option<Calibration> {
        let text = std::fs::read_to_string(Self::file()).ok()?;
        serde_json::from_str(&text).ok().filter(|c: &Calibration| c.iteration_ns > 0.0)
    }

    pub fn store(&self) -> Result<PathBuf, String> {
        let path = Self::file();
        let fail = |e: String| format!("cannot store the calibration in {}: {e}", path.display());
        std::fs::create_dir_all(crate::cache::dir()).map_err(|e| fail(e.to_string()))?;
        let text = serde_json::to_string_pretty(self).map_err(|e| fail(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| fail(e.to_string()))?;
        Ok(path)
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
        Ok(Calibration {
            python: python.path.display().to_string(),
            version: python.version.clone(),
            iteration_ns: times[times.len() / 2] as f64 / iterations.max(1) as f64,
            sim_units_per_ns: Some(units[units.len() / 2]),
        })
    }
}
