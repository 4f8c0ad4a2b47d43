//! What each subcommand does, and how it reports.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use idstore_repo::{
    MigrateError, MigrateOptions, MigrationStatus, OpenOptions, RollbackOptions, RollbackTarget,
    SqliteConnection,
};
use serde_json::json;

use crate::cli::{Cli, Command, MigrateArgs, RollbackArgs};

/// Runs the parsed command.
pub fn run(cli: &Cli) -> Result<()> {
    let out = Output {
        json: cli.json,
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    let db = resolve_db(cli.db.as_deref())?;
    match &cli.command {
        Command::Migrate(args) => migrate(&db, args, out),
        Command::Rollback(args) => rollback(&db, args, out),
        Command::Status => status(&db, out),
    }
}

/// The error and its causes on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

#[derive(Clone, Copy)]
struct Output {
    json: bool,
    quiet: bool,
    verbose: bool,
}

impl Output {
    /// Prints `doc` when `--json`, else `text()` unless `--quiet`.
    fn emit(self, doc: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{doc}");
        } else if !self.quiet {
            let t = text();
            if !t.is_empty() {
                println!("{t}");
            }
        }
    }
}

/// The database path, and whether it is the default one (created with its folder).
struct Db {
    path: PathBuf,
    default: bool,
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
    let folder = data.join("idstore");
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("could not create {}", folder.display()))?;
    Ok(Db {
        path: folder.join("idstore.sqlite"),
        default: true,
    })
}

fn open(db: &Db, create: bool) -> Result<SqliteConnection> {
    Ok(OpenOptions::new()
        .create(create || db.default)
        .open(&db.path)?)
}

/// Writes `<file>.backup-<UTC time>.sqlite` beside the database, owner-only.
fn backup(conn: &mut SqliteConnection, db: &Path) -> Result<PathBuf> {
    let stamp = chrono_stamp();
    let mut name = db.file_name().unwrap_or_default().to_owned();
    name.push(format!(".backup-{stamp}.sqlite"));
    let dest = db.with_file_name(name);
    idstore_repo::backup_to(conn, &dest)?;
    Ok(dest)
}

fn chrono_stamp() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ").to_string()
}

fn has_user_tables(st: &MigrationStatus) -> bool {
    st.legacy || !st.applied.is_empty() || st.app_active_identity
}

fn migrate(db: &Db, args: &MigrateArgs, out: Output) -> Result<()> {
    let mut conn = open(db, true)?;
    let before = idstore_repo::status(&mut conn)?;
    let wants_backup = !args.no_backup && !args.dry_run && has_user_tables(&before);
    let pending_here = before
        .pending
        .iter()
        .any(|v| args.to.as_deref().is_none_or(|to| v.as_str() <= to));
    let backup_path = if wants_backup && pending_here {
        Some(backup(&mut conn, &db.path)?)
    } else {
        None
    };
    let options = MigrateOptions {
        to: args.to.as_deref(),
        dry_run: args.dry_run,
        ..Default::default()
    };
    let report = match idstore_repo::migrate(&mut conn, options) {
        Ok(r) => r,
        Err(MigrateError::ValidationFailed { report }) => {
            if out.json {
                println!("{}", migrate_json(&report, backup_path.as_deref()));
            }
            return Err(anyhow!(
                "validation failed, nothing was changed: {}",
                report.errors.join("; ")
            ));
        }
        Err(e) => return Err(e.into()),
    };
    out.emit(migrate_json(&report, backup_path.as_deref()), || {
        let mut lines = Vec::new();
        if let Some(b) = &backup_path {
            lines.push(format!("backup: {}", b.display()));
        }
        if report.adopted_legacy {
            lines.push("adopted a legacy database".to_owned());
        }
        if report.applied.is_empty() {
            lines.push("nothing to migrate: the database is up to date".to_owned());
        }
        for v in &report.applied {
            lines.push(format!("applied {v}"));
        }
        for w in &report.warnings {
            lines.push(format!("warning: {w}"));
        }
        if out.verbose || !report.applied.is_empty() {
            lines.push(format!(
                "active identity: {}",
                report.active_did.as_deref().unwrap_or("none")
            ));
        }
        if report.dry_run {
            lines.push("dry run: everything was rolled back".to_owned());
        }
        lines.join("\n")
    });
    Ok(())
}

fn migrate_json(
    report: &idstore_domain::MigrationReport,
    backup: Option<&Path>,
) -> serde_json::Value {
    json!({
        "applied": report.applied,
        "backup": backup.map(|p| p.display().to_string()),
        "active_did": report.active_did,
        "warnings": report.warnings,
        "errors": report.errors,
        "data_migrated": report.values_migrated,
        "dry_run": report.dry_run,
        "adopted_legacy": report.adopted_legacy,
    })
}

fn rollback(db: &Db, args: &RollbackArgs, out: Output) -> Result<()> {
    let mut conn = open(db, false)?;
    let target = match (&args.to, args.steps) {
        (Some(v), _) => RollbackTarget::Version(v.clone()),
        (None, Some(n)) => RollbackTarget::Steps(n),
        (None, None) if args.include_baseline => RollbackTarget::Everything,
        (None, None) => RollbackTarget::Baseline,
    };
    let options = RollbackOptions {
        target,
        include_baseline: args.include_baseline,
        dry_run: args.dry_run,
    };
    // Dry-run the rollback first so a refused one writes no backup.
    let plan = idstore_repo::rollback(
        &mut conn,
        &RollbackOptions {
            dry_run: true,
            ..options.clone()
        },
    )?;
    let backup_path = if !args.no_backup && !args.dry_run && !plan.reverted.is_empty() {
        Some(backup(&mut conn, &db.path)?)
    } else {
        None
    };
    let report = if args.dry_run {
        plan
    } else {
        idstore_repo::rollback(&mut conn, &options)?
    };
    let doc = json!({
        "reverted": report.reverted,
        "backup": backup_path.as_ref().map(|p| p.display().to_string()),
        "active_did": report.active_did,
        "dry_run": report.dry_run,
    });
    out.emit(doc, || {
        let mut lines = Vec::new();
        if let Some(b) = &backup_path {
            lines.push(format!("backup: {}", b.display()));
        }
        if report.reverted.is_empty() {
            lines.push("nothing to roll back".to_owned());
        }
        for v in &report.reverted {
            lines.push(format!("reverted {v}"));
        }
        lines.push(format!(
            "active identity: {}",
            report.active_did.as_deref().unwrap_or("none")
        ));
        if report.dry_run {
            lines.push("dry run: everything was rolled back".to_owned());
        }
        lines.join("\n")
    });
    Ok(())
}

fn status(db: &Db, out: Output) -> Result<()> {
    let mut conn = if db.default {
        open(db, true)?
    } else {
        OpenOptions::new().read_only(true).open(&db.path)?
    };
    let st = idstore_repo::status(&mut conn)?;
    let doc = json!({
        "database": db.path.display().to_string(),
        "applied": st.applied,
        "pending": st.pending,
        "unknown": st.unknown,
        "legacy": st.legacy,
        "active_did": st.active_did,
        "accounts": st.accounts,
    });
    out.emit(doc, || {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        let mut lines = vec![
            format!("database: {}", db.path.display()),
            format!(
                "legacy:   {}",
                if st.legacy {
                    "yes (run `idstore migrate` to adopt it)"
                } else {
                    "no"
                }
            ),
            format!("applied:  {}", list(&st.applied)),
            format!("pending:  {}", list(&st.pending)),
        ];
        if !st.unknown.is_empty() {
            lines.push(format!(
                "unknown:  {} (written by a newer idstore)",
                list(&st.unknown)
            ));
        }
        lines.push(format!(
            "active:   {}",
            st.active_did.as_deref().unwrap_or("none")
        ));
        lines.push(format!("accounts: {}", st.accounts));
        lines.join("\n")
    });
    Ok(())
}
