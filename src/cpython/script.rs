//! The instrumented worker script, built into the binary so gilscope runs
//! from anywhere, and written to the cache when a run needs it
//! (multiprocessing needs a real file to start its children from).

use std::path::PathBuf;

/// The instrumented worker's source.
pub const WORKER_SOURCE: &str = include_str!("../../assets/python/gilscope_worker.py");

/// Writes the worker script where the interpreter can read it, named by its
/// content so that versions never collide.
pub(super) fn deploy() -> Result<PathBuf, String> {
    let hash = WORKER_SOURCE
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let dir = crate::cache::dir();
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
