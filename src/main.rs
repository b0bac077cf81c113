//! The binary: read the command line, hand it to a command.

use std::process::ExitCode;

use clap::Parser;
use gilscope::cli::{Cli, Command, RuntimeChoice};
use gilscope::commands;
use gilscope::experiment::spec::DEFAULT_ITERATION_NS;

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
            eprintln!("gilscope: {}", line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::Worker(args)) => gilscope::worker::main(&args),
        Some(Command::Calibrate(args)) => report(commands::calibrate::execute(&args)),
        Some(Command::Run(args)) => {
            // Flags that are each fine but do not fit together are usage errors too.
            let runs = match args.runs(DEFAULT_ITERATION_NS) {
                Ok(runs) => runs,
                Err(why) => {
                    eprintln!("gilscope: {why}");
                    return ExitCode::from(2);
                }
            };
            // A recording replays in the live view: its models share one experiment.
            if let (Some(_), Err(why)) = (&args.record, gilscope::recording::replayable(&runs)) {
                eprintln!("gilscope: --record: {why}");
                return ExitCode::from(2);
            }
            // A missing interpreter is a bad --python: say so before running anything.
            let python = if args.experiment.runtime == RuntimeChoice::Sim {
                None
            } else {
                match gilscope::cpython::Python::probe(&args.experiment.python) {
                    Ok(python) => Some(python),
                    Err(why) => {
                        eprintln!("gilscope: --python: {why}");
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
                    eprintln!("gilscope: {why}");
                    ExitCode::from(2)
                }
            }
        }
        Some(Command::Replay(args)) => commands::replay::main(&args),
        Some(Command::Export(args)) => commands::export::main(&args),
        None => commands::live::main(&cli.experiment),
    }
}

fn report(outcome: Result<String, String>) -> ExitCode {
    match outcome {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("gilscope: {why}");
            ExitCode::FAILURE
        }
    }
}
