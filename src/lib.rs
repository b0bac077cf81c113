//! gilscope: Python's GIL, made visible.
//!
//! Workers run a simulated CPython (or the real one) in child processes and
//! stream what their GIL does; the app turns that into figures and timelines.

pub mod protocol;
