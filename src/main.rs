//! `idstore`: adopt, migrate, inspect and roll back the SQLite file that holds a
//! user's identities, settings and active identity.

#[cfg(not(unix))]
compile_error!(
    "idstore supports Unix only (Linux, macOS, the BSDs), as its library idstore-repo does: keys are read without following links or waiting on FIFOs, files keep their Unix owners and modes, and the rehearsal walks folders by descriptor"
);

mod cli;
mod commands;
mod context;
mod error;
mod export;
mod keys;
mod output;
mod rehearse;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => return error::usage(&e),
    };
    if args.verbose {
        // The library's own reports (steps, quarantined values, decisions, waits for
        // a lock, slow statements) to stderr; never key material.
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::INFO)
            .with_target(false)
            .without_time()
            .init();
    }
    let keyed = commands::opens_database(&args.command);
    if keyed && keys::any_given(&[args.key_file.as_deref(), args.new_key_file()]) {
        // Before any key is read: a key never reaches a core dump.
        keys::no_core_dumps();
    }
    let outcome = context::Ctx::new(&args, keyed).and_then(|ctx| {
        let ran = commands::run(&args, &ctx);
        ran.map(|ok| ok && !ctx.out.failed())
    });
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            let line = error::one_line(&e);
            output::error_line(&line);
            if args.json {
                // Scripts tell a locked file from a missing one or a full disk by kind.
                output::Output::new(true, false, false).line(&error::json(&e).to_string());
            }
            ExitCode::from(error::exit_code(e.kind()))
        }
    }
}
