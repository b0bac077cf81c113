//! The commands a user runs, on top of everything else: the live view
//! (`gilscope`), `gilscope run` and `gilscope calibrate`. Nothing imports
//! from here but `main.rs`.

pub mod calibrate;
pub mod live;
pub mod run;
