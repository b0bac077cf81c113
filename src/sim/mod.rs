//! gilscope's stand-in for `CPython`: worker threads that run "bytecode" only
//! while they hold their process's GIL.

pub mod gil;
pub mod interpreter;
pub mod workload;
