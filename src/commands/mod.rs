//! The commands a user runs, on top of everything else: the live view
//! (`gilscope`, and `gilscope lesson`), `gilscope run`, `gilscope calibrate`,
//! `gilscope replay` and `gilscope export`. Nothing imports from here but
//! `main.rs`.

pub mod calibrate;
pub mod export;
pub mod live;
pub mod replay;
pub mod run;

use std::io::Write;

/// Says one line to the user on stderr, as `gilscope: line`. A stderr that
/// cannot be written to (closed, full) is no reason to stop.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "gilscope: {line}");
}

/// The exit status when stdout was closed before the report was written,
/// as if gilscope had died of SIGPIPE (what a shell shows for `… | head`).
pub const CLOSED_STDOUT: u8 = 141;

/// Writes `text` and a newline to stdout: success, or the exit status of a
/// reader that stopped reading ([`CLOSED_STDOUT`]), or one line saying why
/// it could not be written (a full disk).
pub fn print(text: &str) -> std::process::ExitCode {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // Whoever read the output stopped reading: nothing to say to them.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::ExitCode::from(CLOSED_STDOUT),
        Err(e) => {
            say(&format!("cannot write to stdout: {e}"));
            std::process::ExitCode::FAILURE
        }
    }
}
