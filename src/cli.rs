//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Adopt, migrate, inspect and roll back an idstore database.
#[derive(Debug, Parser)]
#[command(name = "idstore", version, about, long_about = None)]
pub struct Cli {
    /// Database file [default: idstore.sqlite in the platform's data folder for idstore]
    #[arg(long, global = true, env = "IDSTORE_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Print nothing but errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Adopt a legacy file if needed and apply pending migrations, atomically.
    Migrate(MigrateArgs),
    /// Revert migrations, newest first, in one transaction.
    Rollback(RollbackArgs),
    /// Show applied and pending migrations, the active identity and counts.
    Status,
}

/// `idstore migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Do everything and validate, then roll back: report what would happen.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not write a backup copy next to the database first.
    #[arg(long)]
    pub no_backup: bool,
    /// Stop after this migration version.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
}

/// `idstore rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Revert every migration newer than this version [default: everything above the baseline].
    #[arg(long, value_name = "VERSION", conflicts_with = "steps")]
    pub to: Option<String>,
    /// Revert the newest N applied migrations.
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,
    /// Allow reverting the baseline, which drops the accounts and settings tables
    /// (still refused while they hold user data).
    #[arg(long)]
    pub include_baseline: bool,
    /// Do everything and validate, then roll back.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not write a backup copy next to the database first.
    #[arg(long)]
    pub no_backup: bool,
}
