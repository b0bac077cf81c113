//! The real CPython runtime: finding the interpreter, deploying the
//! instrumented worker script, and calibrating the simulation against it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The instrumented worker, built into the binary so gilscope runs from anywhere.
pub const WORKER_SOURCE: &str = include_str!("../assets/python/gilscope_worker.py");

/// The interpreter used when `--python` is not given.
pub const DEFAULT_PYTHON: &str = "python3";

/// A Python interpreter that answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Python {
    pub path: PathBuf,
    pub version: String,
    /// Whether the GIL is on when the interpreter starts normally.
    pub gil: bool,
    /// Built free-threaded (Py_GIL_DISABLED): can run with PYTHON_GIL=0.
    pub free_threaded_build: bool,
    /// Where the worker script was written.
    pub script: PathBuf,
}

impl Python {
    /// Asks `path` who it is, and deploys the worker script for it.
    pub fn probe(path: &Path) -> Result<Python, String> {
        let probe = "import sys, sysconfig; \
                     g = getattr(sys, '_is_gil_enabled', None); \
                     print(sys.version.split()[0], int(g() if g else 1), \
                     int(bool(sysconfig.get_config_var('Py_GIL_DISABLED'))))";
        let out = Command::new(path).args(["-c", probe]).output().map_err(|e| {
            format!(
                "cannot run the Python interpreter {:?} ({e}); install python3 or pass --python PATH",
                path.display().to_string()
            )
        })?;
        if !out.status.success() {
            return Err(format!(
                "{:?} did not run as a Python interpreter ({}); pass --python PATH",
                path.display().to_string(),
                out.status
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        let [version, gil, free] = words[..] else {
            return Err(format!(
                "{:?} answered {text:?}, not like CPython; pass --python PATH",
                path.display()
            ));
        };
        let major_minor: Vec<u32> = version.split('.').take(2).filter_map(|n| n.parse().ok()).collect();
        if major_minor.len() < 2 || major_minor[0] < 3 || (major_minor[0] == 3 && major_minor[1] < 8) {
            return Err(format!("{} is Python {version}; gilscope needs 3.8 or later", path.display()));
        }
        Ok(Python {
            path: path.to_owned(),
            version: version.to_owned(),
            gil: gil == "1",
            free_threaded_build: free == "1",
            script: deploy_script()?,
        })
    }

    /// e.g. "python3 3.11.7" or "python3.13t 3.13.1, GIL off".
    pub fn describe(&self) -> String {
        format!("{} {}{}", self.path.display(), self.version, if self.gil { "" } else { ", GIL off" })
    }

    /// Runs the seed loop bare (no instrumentation) and returns its time in ns.
    pub fn bare_loop_ns(&self, iterations: u64) -> Result<u64, String> {
        let out = Command::new(&self.path)
            .arg(&self.script)
            .args(["--bare", "--iterations", &iterations.to_string()])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.path.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        match text.trim().parse() {
            Ok(ns) if out.status.success() => Ok(ns),
            _ => Err(format!(
                "the CPython worker's --bare run failed: {}",
                String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("no output")
            )),
        }
    }
}

fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("gilscope")
}

/// Writes the worker script where the interpreter can read it (multiprocessing
/// needs a real file), named by its content so versions never collide.
fn deploy_script() -> Result<PathBuf, String> {
    let hash = WORKER_SOURCE
        .bytes()
        .fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
    let dir = cache_dir();
    let path = dir.join(format!("gilscope_worker-{hash:016x}.py"));
    if std::fs::read_to_string(&path).is_ok_and(|s| s == WORKER_SOURCE) {
        return Ok(path);
    }
    let fail = |e: std::io::Error| format!("cannot write the CPython worker to {}: {e}", dir.display());
    std::fs::create_dir_all(&dir).map_err(fail)?;
    // Write aside and rename, so a concurrent gilscope never runs half a file.
    let tmp = dir.join(format!(".gilscope_worker-{hash:016x}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, WORKER_SOURCE).map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(fail)?;
    Ok(path)
}

/// What `gilscope calibrate` measured: CPython's cost per loop iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub python: String,
    pub version: String,
    pub iteration_ns: f64,
    /// The simulation's cost units per ns, measured between the same
    /// CPython runs: one CPython iteration = iteration_ns × this many units.
    #[serde(default)]
    pub sim_units_per_ns: Option<f64>,
}

impl Calibration {
    fn file() -> PathBuf {
        cache_dir().join("calibration.json")
    }

    /// The stored calibration, if any (a broken file counts as none).
    pub fn load() -> Option<Calibration> {
        let text = std::fs::read_to_string(Self::file()).ok()?;
        serde_json::from_str(&text).ok().filter(|c: &Calibration| c.iteration_ns > 0.0)
    }

    pub fn store(&self) -> Result<PathBuf, String> {
        let path = Self::file();
        let fail = |e: String| format!("cannot store the calibration in {}: {e}", path.display());
        std::fs::create_dir_all(cache_dir()).map_err(|e| fail(e.to_string()))?;
        let text = serde_json::to_string_pretty(self).map_err(|e| fail(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| fail(e.to_string()))?;
        Ok(path)
    }

    /// Measures `python`'s seed loop: the median of `rounds` bare runs (the
    /// same loop varies by tens of per cent from run to run on a shared
    /// machine; the median is what a run typically costs).
    pub fn measure(python: &Python, iterations: u64, rounds: u32) -> Result<Calibration, String> {
        let (mut times, mut units) = (Vec::new(), Vec::new());
        for _ in 0..rounds.max(1) {
            // Interleaved, so both see the machine at the same speed.
            units.push(crate::experiment::plan::measure_units_per_ns());
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
