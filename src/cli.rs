//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use idstore_repo::domain::QuarantineRef;
use idstore_repo::domain::{Did, SettingsChange, SettingsField};

/// Adopt, migrate, inspect and manage an idstore database without writing SQL.
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

    /// How long to wait for another program's lock on the database, in milliseconds.
    #[arg(
        long,
        global = true,
        env = "IDSTORE_BUSY_TIMEOUT_MS",
        value_name = "MS",
        default_value_t = 5000
    )]
    pub busy_timeout: u64,

    /// A file holding the key of an encrypted database: its content, one trailing
    /// newline dropped. The key can also come from IDSTORE_KEY (empty: no key); it is
    /// never a command-line value, which other users could read in `ps`.
    #[arg(long, global = true, value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// The SQLCipher format of an encrypted file: 3 (1024-byte pages, 64,000
    /// PBKDF2-SHA1 iterations, HMAC-SHA1) or 4 (the defaults). Without it the format
    /// is found by trying both. For `encrypt` and `rekey`, the format to write
    /// (`rekey` keeps the file's own without it).
    #[arg(
        long,
        global = true,
        env = "IDSTORE_SQLCIPHER_COMPAT",
        value_name = "VERSION",
        value_parser = parse_cipher_format
    )]
    pub sqlcipher_compat: Option<idstore_repo::encryption::CipherFormat>,

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
    /// List the problems in the database (up to 10 of each kind, the rest counted);
    /// exits 1 when there is any.
    Check {
        /// List every problem, one line each (one JSON object a line with --json).
        #[arg(long)]
        all: bool,
    },
    /// Fix what can be fixed without losing data, and list what is left.
    Repair,
    /// Add, list and remove identities.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Show, switch or clear the active identity.
    Active(ActiveArgs),
    /// Show and change settings.
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Look at quarantined items and decide on each: restore it, or discard it.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Encrypt a plain database in place with a new key (IDSTORE_NEW_KEY or
    /// --new-key-file): every table is copied beside it, checked, and renamed over it.
    Encrypt(ConvertArgs),
    /// Change an encrypted database's key: the current one from IDSTORE_KEY or
    /// --key-file, the new one from IDSTORE_NEW_KEY or --new-key-file.
    Rekey(ConvertArgs),
    /// Turn an encrypted database back into a plain one, in place.
    Decrypt(DecryptArgs),
    /// Rehearse the rollout on a folder of files (copies of users' files): each is
    /// migrated, checked, rolled back and compared on a private copy, one JSON Lines
    /// record a file, then a summary; the originals are never written. Exits 1 when
    /// a rollback trigger fired.
    Rehearse(RehearseArgs),
    /// Write sample databases to try idstore on.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Print shell completions, the man page, or idstore's migrations in the app's
    /// own format.
    #[command(hide = true)]
    Generate {
        /// What to print.
        #[arg(value_enum)]
        what: Generated,
    },
}

/// `idstore rehearse`.
#[derive(Debug, clap::Args)]
pub struct RehearseArgs {
    /// A folder of database files, walked recursively without following links (a
    /// file's `-journal` or `-wal` is copied with it).
    pub corpus: PathBuf,
    /// The JSON Lines report, appended to (a regular file of yours; created
    /// owner-only): files it already holds a record of are skipped, so a rerun picks
    /// up where a run stopped, and shards may share it.
    #[arg(long, value_name = "FILE")]
    pub report: PathBuf,
    /// Only this shard of the corpus, `I/N` with 1 <= I <= N: the files whose name
    /// hashes to the I-th of N shards, for N jobs of any runner.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Another engine to compare with: a command that, given a copy of a file and an
    /// output path as its last two arguments, writes there the file its own run of
    /// idstore's exported steps gives (`idstore generate app-migrations`).
    #[arg(long, value_name = "COMMAND")]
    pub engine: Option<String>,
    /// How long the other engine may take on one file (seconds); it is stopped
    /// after that, with everything it started.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub engine_timeout_s: u64,
    /// A migration slower than this (milliseconds) fires the performance trigger.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub slow_ms: u64,
    /// The largest file rehearsed, with its journal or log (MiB); a larger one is
    /// refused (`too_large`) rather than copied.
    #[arg(long, value_name = "MIB", default_value_t = 4096)]
    pub max_mib: u64,
}

/// A shard of a corpus: the `index`-th (from 1) of `count` shards.
#[derive(Debug, Clone, Copy)]
pub struct Shard {
    /// From 1.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

fn parse_cipher_format(text: &str) -> Result<idstore_repo::encryption::CipherFormat, String> {
    text.parse::<u8>()
        .ok()
        .and_then(idstore_repo::encryption::CipherFormat::from_version)
        .ok_or_else(|| format!("{text:?} is not a SQLCipher version idstore writes: 3 or 4"))
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not I/N (say 2/8)"))?;
    let index: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("{i:?} is not a number"))?;
    let count: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("{n:?} is not a number"))?;
    if count == 0 || index == 0 || index > count {
        return Err(format!("{text}: I must be between 1 and N"));
    }
    Ok(Shard { index, count })
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
    pub to: Option<idstore_repo::migrations::Version>,
    /// Validate with SQLite's integrity_check of the whole file, not only of what the
    /// run wrote (slower on large files: every index of every table is compared with
    /// its table).
    #[arg(long)]
    pub full_check: bool,
}

/// `idstore encrypt` and `idstore rekey`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// A file holding the new key (its content, one trailing newline dropped); or
    /// give it in IDSTORE_NEW_KEY.
    #[arg(long, value_name = "PATH")]
    pub new_key_file: Option<PathBuf>,
    /// Do not write a backup first (by default one is written beside the database,
    /// encrypted with the new key).
    #[arg(long)]
    pub no_backup: bool,
    /// Then remove every plaintext copy of the database beside it (earlier backups,
    /// an interrupted conversion's copy): overwritten with zeros, synced, deleted.
    #[arg(long)]
    pub remove_plaintext_copies: bool,
}

/// `idstore decrypt`.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Do not write a backup first (by default one is written beside the database,
    /// encrypted with the key it has now).
    #[arg(long)]
    pub no_backup: bool,
}

/// `idstore rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Revert every migration newer than this version [default: everything above the baseline].
    #[arg(long, value_name = "VERSION", conflicts_with = "steps")]
    pub to: Option<idstore_repo::migrations::Version>,
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
    /// Roll back even though that drops the record of restore decisions (a later
    /// migrate would keep the replaced accounts again).
    #[arg(long)]
    pub forget_decisions: bool,
}

/// `idstore quarantine …`: items are written KIND:ID (`account:4`, `pointer:1`).
#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// Every quarantined item: kind, id, DID or value, reason, date, and for an
    /// account which fields differ from the kept one (never their values).
    List,
    /// One item whole; key material is redacted unless --reveal-secrets is given on a terminal.
    Show {
        /// The item, KIND:ID.
        item: QuarantineRef,
        /// Print key material too (only when stdout is a terminal).
        #[arg(long)]
        reveal_secrets: bool,
    },
    /// Make an account the one for its DID (the replaced account is kept aside in
    /// its place), or a pointer value the active identity (it must name an account).
    Restore {
        /// The item, KIND:ID.
        item: QuarantineRef,
        /// Do not write a backup copy next to the database first.
        #[arg(long)]
        no_backup: bool,
    },
    /// Delete an item: after writing it, secrets included, to a new owner-only file
    /// (--export), or without a copy (--forget; an account also needs --force).
    Discard {
        /// The item, KIND:ID.
        item: QuarantineRef,
        /// Write the whole row as JSON to this new file first (never overwritten).
        #[arg(
            long,
            value_name = "PATH",
            required_unless_present = "forget",
            conflicts_with = "forget"
        )]
        export: Option<PathBuf>,
        /// Delete without an export.
        #[arg(long)]
        forget: bool,
        /// With --forget on an account: really delete its key material without a copy.
        #[arg(long, requires = "forget")]
        force: bool,
        /// Do not write a backup copy next to the database first.
        #[arg(long)]
        no_backup: bool,
    },
}

/// `idstore account …`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Add an identity.
    Add {
        /// Its DID (did:ethr:0x… or did:peer:0z…).
        did: Did,
        /// Its public key, hex.
        #[arg(long, value_name = "HEX")]
        public_key: String,
        /// Its HD derivation path.
        #[arg(long, value_name = "P")]
        derivation_path: Option<String>,
        /// When it was created (RFC 3339) [default: now]
        #[arg(long, value_name = "RFC3339")]
        date: Option<String>,
    },
    /// List identities (never their secret material).
    List,
    /// Remove an identity; if it is active, the next one becomes active.
    Remove {
        /// Its DID.
        did: Did,
        /// Allow removing the last identity (which leaves none active).
        #[arg(long)]
        allow_last: bool,
    },
}

/// `idstore active [set DID | clear]`.
#[derive(Debug, Args)]
pub struct ActiveArgs {
    /// Without a subcommand: show the active identity.
    #[command(subcommand)]
    pub action: Option<ActiveCommand>,
}

/// Changes of the active identity.
#[derive(Debug, Subcommand)]
pub enum ActiveCommand {
    /// Make an identity the active one.
    Set {
        /// Its DID.
        did: Did,
    },
    /// Leave no identity active.
    Clear,
}

/// `idstore settings …`.
#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Show the master settings, an identity's override row, or merged settings.
    Show {
        /// The identity whose override row to show (or merge, with --merged).
        #[arg(long, value_name = "DID")]
        account: Option<Did>,
        /// Merge the override row (of --account, else of the active identity) over the master.
        #[arg(long)]
        merged: bool,
    },
    /// Set settings: FIELD=VALUE … (on the master row, or an identity's override row).
    Set {
        /// FIELD=VALUE pairs, with the legacy field names.
        #[arg(required = true, value_name = "FIELD=VALUE", value_parser = parse_assignment)]
        assignments: Vec<(SettingsField, String)>,
        /// Change this identity's override row instead of the master row.
        #[arg(long, value_name = "DID")]
        account: Option<Did>,
    },
    /// Clear settings to NULL (for an override row: fall back to the master value).
    Unset {
        /// Field names.
        #[arg(required = true, value_name = "FIELD")]
        fields: Vec<SettingsField>,
        /// Change this identity's override row instead of the master row.
        #[arg(long, value_name = "DID")]
        account: Option<Did>,
    },
}

/// What `idstore generate` prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Generated {
    /// The man page, roff (`idstore generate man > idstore.1`).
    Man,
    /// Bash completions.
    CompleteBash,
    /// Zsh completions.
    CompleteZsh,
    /// Fish completions.
    CompleteFish,
    /// PowerShell completions.
    CompletePowershell,
    /// idstore's steps as the app's migration service runs them
    /// (`export/app-migrations.json`): a JSON object with `format`
    /// ("idstore-app-migrations"), `formatVersion` (1), `producer` ({ name, version }),
    /// `about`, `preflight` (a read-only query: a row `{ step, token }` per step, the
    /// token its run would raise now, NULL when it runs), `steps` (oldest first, each
    /// `{ name, version, summary, pausePoint, sql, sqlSha256, down, downSha256 }`)
    /// and `refusals` (each `{ token, message, raisedBy, step }`). Ship every step up
    /// to the one with `pausePoint` to stop at the transition; roll back by running
    /// the `down` of each applied step, newest first, the baseline's kept (it refuses a
    /// file holding data). Its shape is
    /// `export/app-migrations.schema.json` and `export/app-migrations.d.ts`.
    AppMigrations,
}

/// `idstore demo …`.
#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Write a small database as the legacy app would, with a few identities.
    Legacy {
        /// Where to write it (must not exist).
        path: PathBuf,
    },
}

impl Cli {
    /// The new key's file, for the commands that take one.
    pub fn new_key_file(&self) -> Option<&std::path::Path> {
        match &self.command {
            Command::Encrypt(a) | Command::Rekey(a) => a.new_key_file.as_deref(),
            _ => None,
        }
    }
}

/// A `FIELD=VALUE` argument without its `=`.
#[derive(Debug)]
pub struct AssignmentError;

impl std::fmt::Display for AssignmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "expected FIELD=VALUE; valid fields are: {}",
            SettingsField::names().join(", ")
        )
    }
}

impl std::error::Error for AssignmentError {}

/// `FIELD=VALUE`, with the value checked against the field's type.
fn parse_assignment(
    s: &str,
) -> Result<(SettingsField, String), Box<dyn std::error::Error + Send + Sync>> {
    let (name, value) = s.split_once('=').ok_or(AssignmentError)?;
    let field: SettingsField = name.parse()?;
    SettingsChange::default().set_from_str(field, value)?;
    Ok((field, value.to_owned()))
}
