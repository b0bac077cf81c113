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
            if let Err(why) = args.runs(DEFAULT_ITERATION_NS) {
                eprintln!("gilscope: {why}");
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
