//! gilscope: Python's GIL, made visible.
//!
//! Workers run a simulated CPython (or the real one) in child processes and
//! stream what their GIL does; the app turns that into figures and timelines.
//!
//! Data flows one way: workers → supervisor → tally → what the user sees.

pub mod app;
pub mod calibrate;
pub mod cli;
pub mod clock;
pub mod cpython;
pub mod experiment;
pub mod gil_sampler;
pub mod monitor;
pub mod protocol;
pub mod run;
pub mod sim;
pub mod tui;
pub mod ui;
pub mod worker;
