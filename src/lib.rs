//! gilscope: Python's GIL, made visible.
//!
//! Workers run a simulated `CPython` (or the real one) in child processes and
//! stream what their GIL does; the app turns that into figures and timelines.
//!
//! Data flows one way: workers → supervisor → tally → what the user sees.
//! The layers, from the bottom: `clock`, `format`, `cache`, `children`,
//! `signals`; `protocol`;
//! `sim` and `worker` (the simulated interpreter); `gil_sampler` (a running
//! interpreter's GIL, read from its memory); `cpython`; `experiment`;
//! `monitor`; `app` (state, no I/O); `ui` (drawing from `&App`) beside
//! `recording` (sessions kept in files, replayed into an app); `commands` on
//! top. A module imports only from layers below it.

pub mod app;
pub(crate) mod cache;
pub mod children;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod cpython;
pub mod experiment;
pub(crate) mod format;
pub mod gil_sampler;
pub mod monitor;
pub mod procfs;
pub mod protocol;
pub mod recording;
pub mod scenario;
pub mod signals;
pub mod sim;
pub mod ui;
pub mod worker;
