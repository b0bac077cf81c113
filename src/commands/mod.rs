//! The commands a user runs, on top of everything else: the live view
//! (`gilscope`, and `gilscope lesson`), `gilscope run`, `gilscope calibrate`,
//! `gilscope replay` and `gilscope export`. Nothing imports from here but
//! `main.rs`.

pub mod calibrate;
pub mod export;
pub mod live;
pub mod replay;
pub mod run;
