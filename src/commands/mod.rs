//! What each subcommand does, and how it reports.

mod encryption;
mod manage;
mod migrate;
mod quarantine;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use idstore_repo::{OpenOptions, SqliteConnection, ensure_migrated};

use crate::cli::{Cli, Command};

/// Runs the parsed command. `Ok(false)` means it ran but found problems (exit 1).
pub fn run(cli: &Cli) -> Result<bool> {
    let ctx = Ctx {
        out: Output {
            json: cli.json,
            quiet: cli.quiet,
            verbose: cli.verbose,
        },
        db: resolve_db(cli.db.as_deref())?,
        busy_timeout: Duration::from_millis(cli.busy_timeout),
        key: encryption::read_key("IDSTORE_KEY", cli.key_file.as_deref(), "--key-file")?,
        sqlcipher_compat: cli.sqlcipher_compat,
    };
    match &cli.command {
        Command::Migrate(args) => migrate::migrate(&ctx, args).map(|()| true),
        Command::Rollback(args) => migrate::rollback(&ctx, args).map(|()| true),
        Command::Status => migrate::status(&ctx).map(|()| true),
        Command::Check { all } => manage::check(&ctx, *all),
        Command::Repair => manage::repair(&ctx).map(|()| true),
        Command::Account(cmd) => manage::account(&ctx, cmd).map(|()| true),
        Command::Active(args) => manage::active(&ctx, args).map(|()| true),
        Command::Settings(cmd) => manage::settings(&ctx, cmd).map(|()| true),
        Command::Quarantine(cmd) => quarantine::quarantine(&ctx, cmd).map(|()| true),
        Command::Encrypt(args) => encryption::encrypt(&ctx, args).map(|()| true),
        Command::Rekey(args) => encryption::rekey(&ctx, args).map(|()| true),
        Command::Decrypt(args) => encryption::decrypt(&ctx, args).map(|()| true),
        Command::Demo(cmd) => manage::demo(&ctx, cmd).map(|()| true),
        Command::Generate { what } => generate(*what).map(|()| true),
    }
}

/// Prints the man page or a shell's completions, from the clap definitions.
fn generate(what: crate::cli::Generated) -> Result<()> {
    use crate::cli::Generated;
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out: Vec<u8> = Vec::new();
    let shell = match what {
        Generated::Man => {
            clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
            None
        }
        Generated::CompleteBash => Some(clap_complete::Shell::Bash),
        Generated::CompleteZsh => Some(clap_complete::Shell::Zsh),
        Generated::CompleteFish => Some(clap_complete::Shell::Fish),
        Generated::CompletePowershell => Some(clap_complete::Shell::PowerShell),
    };
    if let Some(shell) = shell {
        clap_complete::generate(shell, &mut cmd, "idstore", &mut out);
    }
    print_line(String::from_utf8_lossy(&out).trim_end());
    Ok(())
}

/// An error that came from a full disk or an I/O error without being reported as one
/// (a read that hit the fault, say) is reported as a storage fault of the database:
/// where, how much is free, that nothing was changed, and what to do.
pub fn explain_storage(e: anyhow::Error, cli: &Cli) -> anyhow::Error {
    if e.chain().any(|c| {
        c.downcast_ref::<idstore_repo::fault::StorageFault>()
            .is_some()
    }) {
        return e;
    }
    let explained = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<idstore_repo::OpenError>(),
            Some(
                idstore_repo::OpenError::Wal { .. } | idstore_repo::OpenError::BackupNoRoom { .. }
            )
        ) || matches!(
            c.downcast_ref::<idstore_repo::MigrateError>(),
            Some(idstore_repo::MigrateError::NotEnoughSpace { .. })
        )
    });
    if explained {
        return e;
    }
    let Ok(db) = resolve_db(cli.db.as_deref()) else {
        return e;
    };
    let fault = e
        .chain()
        .find_map(|c| idstore_repo::fault::fault_from_message(&db.path, &c.to_string()));
    match fault {
        Some(f) => anyhow::Error::new(f),
        None => e,
    }
}

/// The stable kind of an error, as `--json` reports it (`error.kind`): the first
/// error in the chain that has one, `locked` for a lock held past the busy timeout,
/// else `error`.
pub fn error_kind(e: &anyhow::Error) -> &'static str {
    use idstore_repo::{MigrateError, OpenError, QuarantineError, RepoError, fault::StorageFault};
    for cause in e.chain() {
        let kind = if let Some(x) = cause.downcast_ref::<RepoError>() {
            x.kind()
        } else if let Some(x) = cause.downcast_ref::<MigrateError>() {
            x.kind()
        } else if let Some(x) = cause.downcast_ref::<OpenError>() {
            x.kind()
        } else if let Some(x) = cause.downcast_ref::<QuarantineError>() {
            x.kind()
        } else if let Some(x) = cause.downcast_ref::<idstore_repo::ConvertError>() {
            x.kind()
        } else if cause.downcast_ref::<idstore_repo::KeyError>().is_some() {
            "invalid_key"
        } else if let Some(x) = cause.downcast_ref::<StorageFault>() {
            x.kind_name()
        } else if cause
            .downcast_ref::<idstore_domain::SettingsError>()
            .is_some()
        {
            "invalid_setting"
        } else if cause.downcast_ref::<idstore_domain::DidError>().is_some() {
            "invalid_did"
        } else {
            continue;
        };
        return kind;
    }
    if e.chain()
        .any(|c| c.to_string().contains("database is locked"))
    {
        "locked"
    } else {
        "error"
    }
}

/// The error and its causes on one line (each error prints only its own words; its
/// cause comes next), with what to do about a lock.
pub fn one_line(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e.chain().map(|cause| cause.to_string()).collect();
    let mut line = parts.join(": ").replace('\n', " ");
    if let Some(hint) = hint(error_kind(e)) {
        line.push_str("; ");
        line.push_str(hint);
    }
    if line.contains("database is locked") {
        line.push_str(
            " (another program kept it locked past the busy timeout; close it, or retry with a longer --busy-timeout)",
        );
    }
    line
}

/// The command that helps with an error of this kind: the library's messages name
/// no command, since its callers are not all this CLI.
fn hint(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "not_found" => "`idstore migrate` creates one",
        "needs_migration" => "run `idstore migrate`",
        "unknown_account" => "`idstore account list` shows the known ones",
        "last_account" => "pass --allow-last to delete it anyway",
        "invalid_stored_value" => "`idstore check` lists such problems",
        "needs_repair" => "`idstore repair` re-creates it",
        "encrypted" => "give its key with IDSTORE_KEY or --key-file",
        "wrong_key" => {
            "check IDSTORE_KEY or --key-file (and --sqlcipher-compat 3 for a SQLCipher 3 file)"
        }
        "not_encrypted" => {
            "unset IDSTORE_KEY and drop --key-file, or encrypt it with `idstore encrypt`"
        }
        _ => return None,
    })
}

/// What every command needs: where the database is and how to report.
pub(crate) struct Ctx {
    pub out: Output,
    pub db: Db,
    pub busy_timeout: Duration,
    /// The database's key (none: a plain file).
    pub key: Option<idstore_repo::Key>,
    /// SQLCipher compatibility for older encrypted files.
    pub sqlcipher_compat: Option<u8>,
}

#[derive(Clone, Copy)]
pub(crate) struct Output {
    pub json: bool,
    pub quiet: bool,
    pub verbose: bool,
}

impl Output {
    /// Prints `doc` when `--json`, else `text()` unless `--quiet`.
    pub fn emit(self, doc: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            print_line(&doc.to_string());
        } else if !self.quiet {
            let t = text();
            if !t.is_empty() {
                print_line(&t);
            }
        }
    }
}

/// Set when writing to stdout failed for a reason other than a reader that went away.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Writes one line to stdout. A reader that went away (`idstore … | head -1`) ends the
/// output quietly, as `ls` and ripgrep do: no panic, no error line, and the command's
/// own exit status. Any other write error is reported once and makes the exit status 1.
pub(crate) fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
        && !STDOUT_FAILED.swap(true, Ordering::Relaxed)
    {
        print_error(&format!("could not write the output: {e}"));
    }
}

/// Whether a write to stdout failed (other than a closed pipe).
pub fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::Relaxed)
}

/// Writes `error: …` to stderr, ignoring a stderr that is gone (nothing is left to tell).
pub fn print_error(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "error: {message}");
}

/// Writes a line to stderr, ignoring a stderr that is gone.
pub(crate) fn print_note(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The database path, and whether it is the default one (created with its folder by
/// the commands that create).
pub(crate) struct Db {
    pub path: PathBuf,
    pub default: bool,
}

fn resolve_db(given: Option<&Path>) -> Result<Db> {
    if let Some(path) = given {
        return Ok(Db {
            path: path.to_owned(),
            default: false,
        });
    }
    let data = dirs::data_dir()
        .ok_or_else(|| anyhow!("no data folder is known for this platform; pass --db PATH"))?;
    Ok(Db {
        path: data.join("idstore").join("idstore.sqlite"),
        default: true,
    })
}

/// Writes `<file>.backup-<UTC time>.sqlite` beside the database, owner-only.
fn backup(conn: &mut SqliteConnection, db: &Path) -> Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ");
    let mut name = db.file_name().unwrap_or_default().to_owned();
    name.push(format!(".backup-{stamp}.sqlite"));
    let dest = db.with_file_name(name);
    idstore_repo::backup_to(conn, &dest)?;
    Ok(dest)
}

impl Ctx {
    fn options(&self) -> OpenOptions {
        let options = OpenOptions::new()
            .busy_timeout(self.busy_timeout)
            .key(self.key.clone());
        match self.sqlcipher_compat {
            Some(version) => options.sqlcipher_compatibility(version),
            None => options,
        }
    }

    /// Opens for `migrate`: creates the file (and, for the default path, its folder).
    fn open_creating(&self) -> Result<SqliteConnection> {
        if let Some(folder) = self.db.path.parent().filter(|_| self.db.default) {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("could not create {}", folder.display()))?;
        }
        Ok(self.options().open(&self.db.path)?)
    }

    /// Opens read-only, never creating: nothing is written to the file.
    fn open_read_only(&self) -> Result<SqliteConnection> {
        Ok(self.options().read_only(true).open(&self.db.path)?)
    }

    /// Opens a database that must already be migrated. The check runs on a read-only
    /// connection first, so a refused command leaves the file byte for byte as it was
    /// (a read-write connection would switch a legacy file to WAL).
    fn open_migrated(&self, write: bool) -> Result<SqliteConnection> {
        let mut conn = self.open_read_only()?;
        ensure_migrated(&mut conn)?;
        if !write {
            return Ok(conn);
        }
        drop(conn);
        Ok(self.options().create(false).open(&self.db.path)?)
    }
}
