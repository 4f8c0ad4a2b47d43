//! The subcommands, a file per family, each taking the [`Ctx`] and its arguments
//! (`rehearse`, larger, is a module of the command of its own: `crate::rehearse`).
//!
//! **Rule:** a command opens the database only through [`Ctx`] (the real path, the
//! key, the busy timeout) and changes it only through idstore-repo's API (`demo
//! legacy` alone writes a new file as the legacy app would); a refused command
//! leaves the file byte for byte as it was; everything it prints goes through
//! `crate::output` (one JSON document under `--json`, escaped text otherwise).

mod account;
mod active;
mod check;
mod demo;
mod encryption;
mod generate;
mod migrate;
mod quarantine;
mod settings;
mod status;

use idstore_repo::Error;

use crate::cli::{Cli, Command};
use crate::context::Ctx;

/// Runs the parsed command. `Ok(false)` means it ran but found problems (exit 1).
pub fn run(cli: &Cli, ctx: &Ctx) -> Result<bool, Error> {
    match &cli.command {
        Command::Migrate(args) => migrate::migrate(ctx, args).map(|()| true),
        Command::Rollback(args) => migrate::rollback(ctx, args).map(|()| true),
        Command::Status => status::status(ctx).map(|()| true),
        Command::Check { all } => check::check(ctx, *all),
        Command::Repair => check::repair(ctx).map(|()| true),
        Command::Account(cmd) => account::account(ctx, cmd),
        Command::Active(args) => active::active(ctx, args).map(|()| true),
        Command::Settings(cmd) => settings::settings(ctx, cmd).map(|()| true),
        Command::Quarantine(cmd) => quarantine::quarantine(ctx, cmd).map(|()| true),
        Command::Encrypt(args) => encryption::encrypt(ctx, args).map(|()| true),
        Command::Rekey(args) => encryption::rekey(ctx, args).map(|()| true),
        Command::Decrypt(args) => encryption::decrypt(ctx, args).map(|()| true),
        Command::Rehearse(args) => crate::rehearse::rehearse(ctx, args),
        Command::Demo(cmd) => demo::demo(ctx, cmd).map(|()| true),
        Command::Generate { what } => generate::generate(ctx, *what).map(|()| true),
    }
}

/// Whether the command opens a database (and so may need its key).
pub fn opens_database(command: &Command) -> bool {
    !matches!(command, Command::Demo(_) | Command::Generate { .. })
}
