//! Finding another interpreter when the one chosen cannot run a model:
//! subinterpreters with a GIL each need Python 3.12 or later, and
//! free-threading needs a free-threaded build. Looked for on PATH and in
//! pyenv's versions, newest first.

use std::path::{Path, PathBuf};

use crate::cpython::Python;

/// Interpreter names worth trying on PATH, newest first.
const ON_PATH: [&str; 8] = [
    "python3.14t",
    "python3.13t",
    "python3.15",
    "python3.14",
    "python3.13",
    "python3.12",
    "python3",
    "python",
];

/// Every interpreter that might be on this machine: PATH's, then pyenv's.
fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            for name in ON_PATH {
                let candidate = dir.join(name);
                if candidate.is_file() && !out.contains(&candidate) {
                    out.push(candidate);
                }
            }
        }
    }
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pyenv")));
    if let Some(versions) = root.map(|r| r.join("versions"))
        && let Ok(entries) = std::fs::read_dir(versions)
    {
        for entry in entries.flatten() {
            for name in ["python3", "python3t"] {
                let candidate = entry.path().join("bin").join(name);
                if candidate.is_file() && !out.contains(&candidate) {
                    out.push(candidate);
                }
            }
        }
    }
    out
}

/// The newest interpreter here that `fits`, if any.
pub fn find(fits: impl Fn(&Python) -> bool) -> Option<Python> {
    let mut found: Vec<Python> =
        candidates().iter().filter_map(|p| Python::probe(p).ok()).filter(|p| fits(p)).collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.version_key()));
    found.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_python_with_subinterpreters_is_found_in_pyenv() {
        // The machines this project runs on carry pyenv's 3.12 and 3.13.
        let found = find(Python::has_subinterpreters);
        let found = found.map(|p| p.major_minor());
        assert!(found.is_some_and(|v| v >= (3, 12)), "no 3.12+ interpreter found: {found:?}");
    }
}
