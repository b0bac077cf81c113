//! `gilscope export FILE --trace OUT.json`: a recording as the Chrome
//! trace-event JSON that Perfetto (ui.perfetto.dev) and `chrome://tracing` open.

use std::process::ExitCode;

use crate::cli::ExportArgs;
use crate::commands::say;
use crate::recording::{Recording, trace};

pub fn main(args: &ExportArgs) -> ExitCode {
    let recording = match Recording::load(&args.file) {
        Ok(recording) => recording,
        Err(e) => {
            say(&e.to_string());
            return ExitCode::from(e.exit_code);
        }
    };
    match trace::write(&recording, &args.trace) {
        Ok(()) => crate::commands::print(&format!(
            "wrote {}: open it in https://ui.perfetto.dev (Open trace file) or chrome://tracing (Load)",
            args.trace.display()
        )),
        Err(why) => {
            say(&why);
            ExitCode::FAILURE
        }
    }
}
