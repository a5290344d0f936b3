//! `tunas-profiler`: the command-line front end. Everything testable lives
//! in the library; this file parses arguments, dispatches the command and
//! maps errors to exit codes. The flags are in `cli/args.rs`, what each
//! command does with its request in `cli/commands.rs`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::args::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli::commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
