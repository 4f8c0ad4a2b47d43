//! `idstore`: adopt, migrate, inspect and roll back the SQLite file that holds a
//! user's identities, settings and active identity.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if args.verbose {
        // The library's own reports (steps, quarantined values, decisions, slow
        // statements) to stderr; never key material.
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::INFO)
            .with_target(false)
            .without_time()
            .init();
    }
    match commands::run(&args) {
        Ok(true) if !commands::stdout_failed() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            let e = commands::explain_storage(e, &args);
            let line = commands::one_line(&e);
            commands::print_error(&line);
            if args.json {
                // Scripts tell a locked file from a missing one or a full disk by kind.
                let doc = serde_json::json!({
                    "error": { "kind": commands::error_kind(&e), "message": line }
                });
                commands::print_line(&doc.to_string());
            }
            ExitCode::FAILURE
        }
    }
}
