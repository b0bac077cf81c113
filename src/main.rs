//! The binary: read the command line, hand it to a command.

use std::io::Write;
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
    // Before any thread starts: termination signals become messages.
    signals::block();
    match cli.command {
        Some(Command::Calibrate(args)) => {
            leave_on_signal();
            report(commands::calibrate::execute(&args))
        }
        Some(Command::Run(args)) => {
            leave_on_signal();
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
            let python = if args.experiment.runtime == RuntimeChoice::Sim {
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
                println!("{}", gilscope::app::lesson::list());
                return ExitCode::SUCCESS;
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

/// Headless commands end at a termination signal, taking every process
/// they started with them.
fn leave_on_signal() {
    let signals = match signals::watch() {
        Ok(signals) => signals,
        Err(e) => {
            say(&format!("cannot watch for termination signals ({e}); workers still die with gilscope"));
            return;
        }
    };
    let spawned = std::thread::Builder::new().name("leave".into()).spawn(move || {
        if let Ok(signal) = signals.recv() {
            signals::mark_leaving();
            children::kill_every_group();
            std::process::exit(i32::from(signals::exit_status(signal)));
        }
    });
    if let Err(e) = spawned {
        say(&format!("cannot watch for termination signals ({e}); workers still die with gilscope"));
    }
}

fn report(outcome: Result<String, String>) -> ExitCode {
    // Ended by a signal: the runs failed because their workers were killed
    // on the way out, which is no news; the exit follows at once.
    while signals::leaving() {
        std::thread::park();
    }
    match outcome {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                // Whoever read the output stopped reading: nothing to say to them.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    ExitCode::from(commands::CLOSED_STDOUT)
                }
                Err(e) => {
                    say(&format!("cannot write the report: {e}"));
                    ExitCode::FAILURE
                }
            }
        }
        Err(why) => {
            say(&why);
            ExitCode::FAILURE
        }
    }
}
