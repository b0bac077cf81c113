//! The real `CPython` runtime: finding the interpreter and asking it who it is,
//! and running the plain sqrt loop in it for calibration. Each of those runs
//! isolated (`-I`), bounded in time, and in a process group of its own.

pub mod discover;
mod script;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::children::{self, Finished, Unfinished};

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

/// How long an interpreter may take to say who it is: `CPython` answers in
/// tens of milliseconds; anything that takes longer is not one to use.
pub const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// What the probe asks: the version, whether the GIL is on, and whether the
/// build is free-threaded.
const PROBE: &str = "import sys, sysconfig; \
                     g = getattr(sys, '_is_gil_enabled', None); \
                     print(sys.version.split()[0], int(g() if g else 1), \
                     int(bool(sysconfig.get_config_var('Py_GIL_DISABLED'))))";

/// How much of an interpreter's output is kept: its answers are one line.
const MAX_ANSWER: usize = 4096;

impl Python {
    /// Asks `path` who it is, and deploys the worker script for it.
    ///
    /// Every interpreter runs isolated (`-I`): no module is imported from
    /// the working folder or from beside the script, and no `PYTHON*`
    /// variable changes what runs. An interpreter that does not answer
    /// within [`PROBE_LIMIT`] is killed with whatever it started.
    pub fn probe(path: &Path) -> Result<Python, String> {
        let shown = path.display().to_string();
        let answer = ask(path, &["-I", "-c", PROBE])?;
        let text = String::from_utf8_lossy(&answer.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        let (version, gil, free) = match words[..] {
            [version, gil, free] if answer.status.success() => (version, gil, free),
            // Not the answer of a Python 3: maybe an older one, which
            // refuses -I but says its version when asked plainly.
            _ => return Err(not_an_answer(path, &answer)),
        };
        check_version(&shown, version)?;
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

    /// Runs the plain sqrt loop (no instrumentation) and returns its time in
    /// ns. It may take up to 2 µs an iteration (30 times `CPython`'s usual
    /// cost) and 10 s more before it is taken for hung.
    pub fn bare_loop_ns(&self, iterations: u64) -> Result<u64, String> {
        let limit = Duration::from_secs(10)
            + Duration::from_micros(2).saturating_mul(u32::try_from(iterations).unwrap_or(u32::MAX));
        self.bare(
            &["--iterations", &iterations.to_string()],
            limit,
            &format!("loop of {iterations} iterations"),
        )
    }

    /// What starting a worker in a subinterpreter of its own costs here, in
    /// ns: the interpreter created and the worker script loaded in it (the
    /// median of three). Only for 3.12 and later.
    pub fn interpreter_start_ns(&self) -> Result<u64, String> {
        self.bare(&["--interpreter-start"], Duration::from_secs(20), "interpreter start")
    }

    /// Runs the worker script's `--bare` mode with `args`: the ns it prints.
    fn bare(&self, args: &[&str], limit: Duration, what: &str) -> Result<u64, String> {
        let mut command = Command::new(&self.path);
        command.arg("-I").arg(&self.script).arg("--bare").args(args);
        let out = match children::run_bounded(command, limit, MAX_ANSWER) {
            Ok(out) => out,
            Err(Unfinished::Spawn(e)) => return Err(format!("cannot run {}: {e}", self.path.display())),
            Err(Unfinished::TimedOut) => {
                return Err(format!(
                    "the CPython worker's --bare {what} did not finish within {} s ({})",
                    limit.as_secs(),
                    self.path.display()
                ));
            }
        };
        let text = String::from_utf8_lossy(&out.stdout);
        match text.trim().parse() {
            Ok(ns) if out.status.success() => Ok(ns),
            _ => Err(format!(
                "the CPython worker's --bare {what} failed: {}",
                last_line(&out.stderr).unwrap_or("no output")
            )),
        }
    }
}

/// Runs `path args…` bounded by [`PROBE_LIMIT`].
fn ask(path: &Path, args: &[&str]) -> Result<Finished, String> {
    let mut command = Command::new(path);
    command.args(args);
    match children::run_bounded(command, PROBE_LIMIT, MAX_ANSWER) {
        Ok(finished) => Ok(finished),
        Err(Unfinished::Spawn(e)) => Err(format!(
            "cannot run the Python interpreter {:?} ({e}); install python3 or pass --python PATH",
            path.display().to_string()
        )),
        Err(Unfinished::TimedOut) => Err(format!(
            "{} did not answer within {} s; pass --python PATH of a Python 3.8 or later",
            path.display(),
            PROBE_LIMIT.as_secs()
        )),
    }
}

/// Refuses versions before 3.8.
fn check_version(shown: &str, version: &str) -> Result<(), String> {
    let major_minor: Vec<u32> = version.split('.').take(2).filter_map(|n| n.parse().ok()).collect();
    if major_minor.len() < 2 || major_minor[0] < 3 || (major_minor[0] == 3 && major_minor[1] < 8) {
        return Err(format!("{shown} is Python {version}; gilscope needs 3.8 or later"));
    }
    Ok(())
}

/// Why `answer` is not what a Python 3.8+ says to the probe, in one line.
fn not_an_answer(path: &Path, answer: &Finished) -> String {
    let shown = path.display().to_string();
    // Python 2 refuses -I; `-V` gets its version (on stderr) without
    // importing anything.
    if let Ok(plain) = ask(path, &["-V"]) {
        let said = [&plain.stdout, &plain.stderr].map(|b| String::from_utf8_lossy(b).into_owned());
        let version = said.iter().find_map(|s| s.trim().strip_prefix("Python ").map(str::to_owned));
        if let Some(version) = version.filter(|v| v.starts_with(|c: char| c.is_ascii_digit())) {
            if let Err(old) = check_version(&shown, version.trim()) {
                return old;
            }
            return format!(
                "{shown} is Python {} but did not answer gilscope's question ({}); pass --python PATH",
                version.trim(),
                last_line(&answer.stderr).unwrap_or("no answer")
            );
        }
    }
    let stdout = String::from_utf8_lossy(&answer.stdout);
    match (answer.status.success(), last_line(&answer.stderr), stdout.trim()) {
        (false, Some(line), _) => {
            format!("{shown} did not run as a Python interpreter ({line}); pass --python PATH")
        }
        (false, None, _) => {
            format!("{shown} did not run as a Python interpreter ({}); pass --python PATH", answer.status)
        }
        (true, Some(line), "") => {
            format!("{shown} answered on stderr only ({line}), not like CPython; pass --python PATH")
        }
        (true, None, "") => {
            format!("{shown} printed nothing when asked its version, not like CPython; pass --python PATH")
        }
        (true, _, text) => {
            format!("{shown} answered {:?}, not like CPython; pass --python PATH", first_chars(text))
        }
    }
}

/// The last line of `bytes` with something on it, as text.
fn last_line(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()?.lines().rev().map(str::trim).find(|l| !l.is_empty())
}

fn first_chars(text: &str) -> &str {
    text.char_indices().nth(80).map_or(text, |(i, _)| &text[..i])
}
