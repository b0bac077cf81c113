//! gilscope's cache directory: where the `CPython` worker script is deployed
//! and the calibration is kept (`$XDG_CACHE_HOME/gilscope`, else
//! `~/.cache/gilscope`).

use std::path::PathBuf;

/// The directory gilscope keeps its files in.
pub fn dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("gilscope")
}
