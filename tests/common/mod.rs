//! What the tests that run gilscope share: the binary with a cache of its
//! own, scratch folders, is a pid still alive, and waiting for a condition
//! with a deadline.

#![allow(dead_code)] // each test file uses its own part

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A fresh, empty folder of this test process's own.
pub fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("gilscope-test-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// The gilscope binary with an empty cache folder of its own
/// (`XDG_CACHE_HOME`), so no test reads the developer's calibration or
/// another test's.
pub fn gilscope() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gilscope"));
    command.env("XDG_CACHE_HOME", scratch("cache"));
    command
}

/// Alive and not a zombie waiting to be reaped.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

/// Polls `done` every 20 ms until it holds or `limit` passes; its last answer.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// pyenv's interpreter of version `prefix` ("3.13"), which these machines
/// carry; a test that needs it fails loudly when it is missing.
pub fn pyenv_python(prefix: &str) -> PathBuf {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")))
        .expect("HOME or PYENV_ROOT is set");
    let versions = std::fs::read_dir(root.join("versions"))
        .unwrap_or_else(|e| panic!("no pyenv versions under {}: {e}", root.display()));
    let mut found: Vec<PathBuf> = versions
        .flatten()
        .filter(|v| v.file_name().to_string_lossy().starts_with(&format!("{prefix}.")))
        .map(|v| v.path().join("bin").join("python3"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| panic!("this test needs pyenv's Python {prefix}, and it is not installed"))
}
