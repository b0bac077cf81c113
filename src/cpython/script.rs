//! The instrumented worker script, built into the binary so gilscope runs
//! from anywhere, and written to the cache when a run needs it
//! (multiprocessing needs a real file to start its children from).

use std::path::PathBuf;

use crate::cache::Cache;

/// The instrumented worker's source.
pub const WORKER_SOURCE: &str = include_str!("../../assets/python/gilscope_worker.py");

/// Writes the worker script into the cache folder where the interpreter
/// can read it, named by its content so that versions never collide. A file
/// already there is used only when it holds exactly this source (read without
/// following links); anything else is replaced.
pub(super) fn deploy() -> Result<PathBuf, String> {
    let hash = WORKER_SOURCE
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let name = format!("gilscope_worker-{hash:016x}.py");
    let cache = Cache::create()?;
    if let Ok(Some(bytes)) = cache.read(&name, WORKER_SOURCE.len() as u64)
        && bytes == WORKER_SOURCE.as_bytes()
    {
        return Ok(cache.path(&name));
    }
    cache.write(&name, WORKER_SOURCE.as_bytes()).map_err(|e| format!("cannot deploy the CPython worker: {e}"))
}
