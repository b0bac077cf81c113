//! The binary: read the command line, hand it to a command.

use std::process::ExitCode;

use clap::Parser;
use gilscope::children;
use gilscope::cli::{Cli, Command, RuntimeChoice};
use gilscope::commands::{self, say};
use gilscope::experiment::spec::DEFAULT_ITERATION_NS;
use gilscope::signals;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line that names the flag, not clap's whole usage block.
            let text = e.to_string();
            let line = text.lines().next().unwrap_or("invalid arguments");
            say(line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Worker(args)) = &cli.command {
        // A worker keeps the default signal handling: gilscope kills it.
        gilscope::worker::main(args);
    }
    // Before any thread starts: termination signals become messages, and
    // until a command takes them itself, each one ends gilscope at once.
    signals::block();
    if let Err(e) = signals::watch(leave) {
        say(&format!("cannot watch for termination signals ({e}); workers still die with gilscope"));
    }
    match cli.command {
        Some(Command::Calibrate(args)) => report(commands::calibrate::execute(&args)),
        Some(Command::Run(args)) => {
            // Flags that are each fine but do not fit together are usage errors too.
            let runs = match args.runs(DEFAULT_ITERATION_NS) {
                Ok(runs) => runs,
                Err(why) => {
                    say(&why);
                    return ExitCode::from(2);
                }
            };
            // A recording replays in the live view: its models share one experiment.
            if let (Some(_), Err(why)) = (&args.record, gilscope::recording::replayable(&runs)) {
                say(&format!("--record: {why}"));
                return ExitCode::from(2);
            }
            // A missing interpreter is a bad --python: say so before running anything.
            let python = if args.experiment.runtime() == RuntimeChoice::Sim {
                None
            } else {
                match gilscope::cpython::Python::probe(&args.experiment.python) {
                    Ok(python) => Some(python),
                    Err(why) => {
                        say(&format!("--python: {why}"));
                        return ExitCode::from(2);
                    }
                }
            };
            report(commands::run::execute(&args, python))
        }
        Some(Command::Lesson(args)) => {
            if args.list {
                return commands::print(&gilscope::app::lesson::list());
            }
            match gilscope::app::lesson::numbered(args.number) {
                Ok(index) => commands::live::lesson(&args.experiment, index),
                Err(why) => {
                    say(&why);
                    ExitCode::from(2)
                }
            }
        }
        Some(Command::Replay(args)) => commands::replay::main(&args),
        Some(Command::Export(args)) => commands::export::main(&args),
        Some(Command::Worker(_)) | None => commands::live::main(&cli.experiment),
    }
}

/// A termination signal that no command took: every process gilscope
/// started goes with it, and the exit status says which signal it was.
fn leave(signal: libc::c_int) {
    signals::mark_leaving();
    children::kill_every_group();
    std::process::exit(i32::from(signals::exit_status(signal)));
}

fn report(outcome: Result<String, String>) -> ExitCode {
    // Ended by a signal: the runs failed because their workers were killed
    // on the way out, which is no news; the exit follows at once.
    while signals::leaving() {
        std::thread::park();
    }
    match outcome {
        Ok(text) => commands::print(&text),
        Err(why) => {
            say(&why);
            ExitCode::FAILURE
        }
    }
}
