//! `idstore`: adopt, migrate, inspect and roll back the SQLite file that holds a
//! user's identities, settings and active identity.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match commands::run(&args) {
        Ok(true) if !commands::stdout_failed() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            let e = commands::explain_storage(e, &args);
            commands::print_error(&commands::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
