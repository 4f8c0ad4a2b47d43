//! `migrate`, `rollback` and `status`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use idstore_repo::{Integrity, MigrateOptions, MigrationReport, RollbackOptions, RollbackTarget};
use serde_json::json;

use super::{Ctx, backup};
use crate::cli::{MigrateArgs, RollbackArgs};

/// Progress on stderr while a migration runs, drawn only on a terminal: a line per
/// step, and a bar with the elapsed time below them.
struct Progress(indicatif::ProgressBar);

impl Progress {
    fn start(enabled: bool) -> Option<Progress> {
        if !enabled || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template("[{pos}/{len}] {msg} ({elapsed})")
                .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        Some(Progress(bar))
    }

    fn report(&self, version: &str, at: usize, of: usize) {
        let message = if version == "validate" {
            "validating".to_owned()
        } else {
            format!("applying {version}")
        };
        self.0.set_length(of as u64);
        self.0.set_position(at as u64);
        self.0.println(format!("[{at}/{of}] {message}"));
        self.0.set_message(message);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

pub(super) fn migrate(ctx: &Ctx, args: &MigrateArgs) -> Result<()> {
    let out = ctx.out;
    let to = args.to.as_deref();
    // The plan's refusals come first, on a read-only connection: a refused file stays
    // byte for byte (not even switched to WAL), and a refused target creates no file.
    // Room for the backup and the run is one of them. `migrate` itself inspects the
    // file again inside its transaction, and runs what that read decides.
    let (work, wants_backup) = if ctx.db.path.exists() {
        let mut ro = ctx.open_read_only()?;
        let plan = idstore_repo::plan_migration(&mut ro, to)?;
        let wants_backup =
            !args.no_backup && !args.dry_run && !plan.is_empty() && plan.has_user_tables();
        if !plan.is_empty() {
            idstore_repo::fault::ensure_space(&mut ro, "migrate", wants_backup)?;
        }
        (!plan.is_empty(), wants_backup)
    } else {
        if let Some(to) = to {
            idstore_repo::check_target(to)?;
        }
        (true, false)
    };
    let mut conn = ctx.open_creating()?;
    let backup_path = if wants_backup {
        Some(backup(&mut conn, &ctx.db.path)?)
    } else {
        None
    };
    let progress = Progress::start(!out.quiet && !out.json && work);
    let report_step = |v: &str, at: usize, of: usize| {
        if let Some(p) = &progress {
            p.report(v, at, of);
        }
    };
    let options = MigrateOptions {
        to,
        dry_run: args.dry_run,
        progress: Some(&report_step),
        integrity: if args.full_check {
            Integrity::Full
        } else {
            Integrity::Written
        },
        ..Default::default()
    };
    let result = idstore_repo::migrate(&mut conn, options);
    drop(progress);
    // Under --json a failure's error document (kind validation_failed, say) is the
    // one output.
    let report = result?;
    out.emit(migrate_json(&report, backup_path.as_deref()), || {
        let mut lines = Vec::new();
        if let Some(b) = &backup_path {
            lines.push(format!("backup: {}", b.display()));
        }
        if report.adopted_legacy && !report.applied.is_empty() {
            lines.push("adopted a legacy database".to_owned());
        }
        if report.applied.is_empty() {
            lines.push("nothing to migrate: the database is up to date".to_owned());
        }
        lines.extend(report.applied.iter().map(|v| format!("applied {v}")));
        lines.extend(report.warnings.iter().map(|w| format!("warning: {w}")));
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

/// What `migrate --json` prints.
#[derive(serde::Serialize)]
struct MigrateOutput<'a> {
    applied: &'a [String],
    backup: Option<String>,
    active_did: Option<&'a str>,
    warnings: &'a [idstore_repo::MigrationWarning],
    errors: &'a [String],
    data_migrated: u64,
    dry_run: bool,
    adopted_legacy: bool,
}

fn migrate_json(report: &MigrationReport, backup: Option<&Path>) -> serde_json::Value {
    serde_json::to_value(MigrateOutput {
        applied: &report.applied,
        backup: backup.map(|p| p.display().to_string()),
        active_did: report.active_did.as_deref(),
        warnings: &report.warnings,
        errors: &report.errors,
        data_migrated: report.values_migrated,
        dry_run: report.dry_run,
        adopted_legacy: report.adopted_legacy,
    })
    .expect("the report serializes")
}

pub(super) fn rollback(ctx: &Ctx, args: &RollbackArgs) -> Result<()> {
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
        forget_decisions: args.forget_decisions,
    };
    // Plan on a read-only connection first: a refused rollback writes nothing, not
    // even a backup or the switch to WAL.
    let plan = {
        let mut ro = ctx.open_read_only()?;
        idstore_repo::rollback_plan(&mut ro, &options)?
    };
    if plan.is_empty() {
        let mut ro = ctx.open_read_only()?;
        let st = idstore_repo::status(&mut ro)?;
        return emit_rollback(ctx, &[], None, st.active_did, args.dry_run);
    }
    idstore_repo::fault::ensure_space(
        &mut ctx.open_read_only()?,
        "rollback",
        !args.no_backup && !args.dry_run,
    )?;
    let mut conn = ctx.options().create(false).open(&ctx.db.path)?;
    if plan.iter().any(|v| v == idstore_repo::BASELINE_VERSION) && !args.dry_run {
        // The baseline's down.sql refuses while user data exists: find out before
        // writing a backup.
        idstore_repo::rollback(
            &mut conn,
            &RollbackOptions {
                dry_run: true,
                ..options.clone()
            },
        )?;
    }
    let backup_path = if !args.no_backup && !args.dry_run {
        Some(backup(&mut conn, &ctx.db.path)?)
    } else {
        None
    };
    let report = idstore_repo::rollback(&mut conn, &options)?;
    if !report.forgotten_decisions.is_empty() && !ctx.out.quiet && !ctx.out.json {
        let items: Vec<String> = report
            .forgotten_decisions
            .iter()
            .map(ToString::to_string)
            .collect();
        super::print_note(&format!(
            "warning: the record of restore decisions ({}) was dropped as asked: a later migrate keeps the replaced accounts again",
            items.join(", ")
        ));
    }
    emit_rollback(
        ctx,
        &report.reverted,
        backup_path,
        report.active_did,
        report.dry_run,
    )
}

fn emit_rollback(
    ctx: &Ctx,
    reverted: &[String],
    backup: Option<PathBuf>,
    active_did: Option<String>,
    dry_run: bool,
) -> Result<()> {
    let doc = json!({
        "reverted": reverted,
        "backup": backup.as_ref().map(|p| p.display().to_string()),
        "active_did": active_did,
        "dry_run": dry_run,
    });
    ctx.out.emit(doc, || {
        let mut lines = Vec::new();
        if let Some(b) = &backup {
            lines.push(format!("backup: {}", b.display()));
        }
        if reverted.is_empty() {
            lines.push("nothing to roll back".to_owned());
        }
        lines.extend(reverted.iter().map(|v| format!("reverted {v}")));
        lines.push(format!(
            "active identity: {}",
            active_did.as_deref().unwrap_or("none")
        ));
        if dry_run {
            lines.push("dry run: everything was rolled back".to_owned());
        }
        lines.join("\n")
    });
    Ok(())
}

pub(super) fn status(ctx: &Ctx) -> Result<()> {
    if ctx.key.is_none() && idstore_repo::is_encrypted(&ctx.db.path).unwrap_or(false) {
        // All that can be told without the key.
        ctx.out.emit(
            json!({
                "database": ctx.db.path.display().to_string(),
                "encrypted": true,
                "readable": false,
            }),
            || {
                format!(
                    "database:  {}\nencrypted: yes (or it is not an SQLite database at all); give its key with IDSTORE_KEY or --key-file to see the rest",
                    ctx.db.path.display()
                )
            },
        );
        return Ok(());
    }
    // The default database is created on first use so `idstore status` works on a
    // fresh machine; an explicit --db is only read.
    let mut conn = if ctx.db.default {
        ctx.open_creating()?
    } else {
        ctx.open_read_only()?
    };
    let st = idstore_repo::status(&mut conn)?;
    let next = st
        .pending
        .first()
        .map(|v| json!({ "version": v, "does": idstore_repo::step_summary(v) }));
    let doc = json!({
        "database": ctx.db.path.display().to_string(),
        "applied": st.applied,
        "pending": st.pending,
        "unknown": st.unknown,
        "legacy": st.legacy,
        "paused_at": st.paused_at(),
        "servable": st.servable(),
        "next_step": next,
        "active_did": st.active_did,
        "accounts": st.accounts,
        "encrypted": ctx.key.is_some(),
        "readable": true,
    });
    ctx.out.emit(doc, || {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        let mut lines = vec![
            format!("database: {}", ctx.db.path.display()),
            format!(
                "legacy:   {}",
                if st.legacy {
                    "yes (run `idstore migrate` to adopt it)"
                } else {
                    "no"
                }
            ),
            format!(
                "encrypted: {}",
                if ctx.key.is_some() { "yes" } else { "no" }
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
        if let Some(at) = st.paused_at() {
            lines.push(format!(
                "step:     paused at {at}, the transition step: idstore serves the file, and settings.activeDid is kept in step for older app builds"
            ));
        }
        if let Some(v) = st.pending.first() {
            lines.push(format!(
                "next:     {v} {}",
                idstore_repo::step_summary(v)
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
