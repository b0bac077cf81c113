//! gilscope's stand-in for `CPython`: worker threads that run "bytecode" only
//! while they hold their process's GIL.

pub mod gil;
pub mod interpreter;
mod pthread;
pub mod workload;

/// Tests that time busy threads take the cores one at a time: on a machine
/// of two cores, several at once would be measuring each other.
#[cfg(test)]
pub(crate) fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static CORES: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CORES.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
