//! The real `CPython` runtime: finding the interpreter and asking it who it is,
//! and running the plain sqrt loop in it for calibration.

pub mod discover;
mod script;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use script::WORKER_SOURCE;

/// The interpreter used when `--python` is not given.
pub const DEFAULT_PYTHON: &str = "python3";

/// A Python interpreter that answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Python {
    pub path: PathBuf,
    pub version: String,
    /// Whether the GIL is on when the interpreter starts normally.
    pub gil: bool,
    /// Built free-threaded (`Py_GIL_DISABLED`): can run with `PYTHON_GIL=0`.
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
            script: script::deploy()?,
        })
    }

    /// The major and minor version, e.g. (3, 11).
    pub fn major_minor(&self) -> (u32, u32) {
        let mut parts = self.version.split('.').filter_map(|p| p.parse().ok());
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }

    /// The whole version as numbers, for ordering: (3, 13, 1).
    pub fn version_key(&self) -> Vec<u32> {
        self.version
            .split('.')
            .map(|p| p.chars().take_while(char::is_ascii_digit).collect::<String>())
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Interpreters with a GIL of their own (PEP 684) arrived in 3.12.
    pub fn has_subinterpreters(&self) -> bool {
        self.major_minor() >= (3, 12)
    }

    /// e.g. "python3 3.11.7" or "python3.13t 3.13.1, GIL off".
    pub fn describe(&self) -> String {
        format!("{} {}{}", self.path.display(), self.version, if self.gil { "" } else { ", GIL off" })
    }

    /// Runs the plain sqrt loop (no instrumentation) and returns its time in ns.
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
