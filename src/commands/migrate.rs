//! `migrate` and `rollback`.

use std::io::IsTerminal;
use std::time::Duration;

use idstore_repo::migrations::{Integrity, RollbackOptions, RollbackTarget, Version};
use idstore_repo::{Error, MigrateOptions};
use serde_json::json;

use crate::cli::{MigrateArgs, RollbackArgs};
use crate::context::{Ctx, NewFile};
use crate::output::{note, shown_or_none, shown_path};

/// Progress on stderr while a migration runs (the caller draws it only on a
/// terminal): a line per step, and a bar with the elapsed time below them.
struct Progress(indicatif::ProgressBar);

impl Progress {
    fn start(enabled: bool) -> Option<Progress> {
        if !enabled {
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

pub(super) fn migrate(ctx: &Ctx, args: &MigrateArgs) -> Result<(), Error> {
    // A file this command creates is removed again when it fails, or when the run
    // was a dry run: nothing of it is left behind.
    let new = NewFile::watch(&ctx.db.path);
    match run_migrate(ctx, args) {
        Ok(()) if !args.dry_run => {
            new.keep();
            Ok(())
        }
        Ok(()) => Ok(()),
        Err(e) => Err(new.failed(e)),
    }
}

fn run_migrate(ctx: &Ctx, args: &MigrateArgs) -> Result<(), Error> {
    let out = &ctx.out;
    let mut db = ctx.open_creating()?;
    // Every refusal comes before the first write (the backup and the switch to WAL
    // included): the library checks them, and the room, in that order. The plan is
    // read here only to leave the bar off when there is nothing to do.
    let progress = Progress::start(
        !out.quiet
            && !out.json
            && std::io::stderr().is_terminal()
            && !db.plan_migration(args.to.as_ref())?.is_empty(),
    );
    let report_step = |v: &str, at: usize, of: usize| {
        if let Some(p) = &progress {
            p.report(v, at, of);
        }
    };
    let mut options = MigrateOptions::new()
        .dry_run(args.dry_run)
        .progress(&report_step)
        .integrity(if args.full_check {
            Integrity::Full
        } else {
            Integrity::Written
        });
    if let Some(to) = &args.to {
        options = options.to(to.clone());
    }
    if !args.no_backup {
        options = options.backup_to(ctx.backup_path());
    }
    let result = db.migrate(&options);
    drop(progress);
    // Under --json a failure's error document (kind validation_failed, say) is the
    // one output.
    let report = result?;
    let backup = report.backup.as_deref();
    let doc = MigrateOutput {
        applied: &report.applied,
        backup: backup.map(|p| p.display().to_string()),
        active_did: report.active_did.as_deref(),
        warnings: &report.warnings,
        omitted_warnings: &report.omitted_warnings,
        errors: &report.errors,
        data_migrated: report.values_migrated,
        dry_run: report.dry_run,
        adopted_legacy: report.adopted_legacy,
    };
    out.emit_serialized(&doc, || {
        let mut lines = Vec::new();
        if let Some(b) = backup {
            lines.push(format!("backup: {}", shown_path(b)));
        }
        if report.adopted_legacy && !report.applied.is_empty() {
            lines.push("adopted a legacy database".to_owned());
        }
        let upgraded = report
            .warnings
            .iter()
            .any(|w| w.kind() == "upgraded_preview");
        if report.applied.is_empty() && !upgraded {
            lines.push("nothing to migrate: the database is up to date".to_owned());
        }
        lines.extend(report.applied.iter().map(|v| format!("applied {v}")));
        lines.extend(report.warnings.iter().map(|w| format!("warning: {w}")));
        for (kind, n) in &report.omitted_warnings {
            lines.push(format!(
                "warning: … and {n} more {kind} warning(s), each value kept in the table named above{}",
                match *kind {
                    "quarantined_account" | "cleared_pointer" => " (`idstore quarantine list` shows them)",
                    _ => "",
                }
            ));
        }
        if out.verbose || !report.applied.is_empty() {
            lines.push(format!(
                "active identity: {}",
                shown_or_none(report.active_did.as_deref())
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
    applied: &'a [Version],
    backup: Option<String>,
    active_did: Option<&'a str>,
    warnings: &'a [idstore_repo::migrations::MigrationWarning],
    omitted_warnings: &'a std::collections::BTreeMap<&'static str, u64>,
    errors: &'a [String],
    data_migrated: u64,
    dry_run: bool,
    adopted_legacy: bool,
}

pub(super) fn rollback(ctx: &Ctx, args: &RollbackArgs) -> Result<(), Error> {
    let target = match (&args.to, args.steps) {
        (Some(v), _) => RollbackTarget::Version(v.clone()),
        (None, Some(n)) => RollbackTarget::Steps(n),
        (None, None) if args.include_baseline => RollbackTarget::Everything,
        (None, None) => RollbackTarget::Baseline,
    };
    let mut options = RollbackOptions::new()
        .target(target)
        .include_baseline(args.include_baseline)
        .dry_run(args.dry_run)
        .forget_decisions(args.forget_decisions);
    if !args.no_backup {
        options = options.backup_to(ctx.backup_path());
    }
    // The library makes every refusal (and checks the room) before the backup and
    // the first write.
    let mut db = ctx.open_write()?;
    let report = db.rollback(&options)?;
    if !report.forgotten_decisions.is_empty() && !ctx.out.quiet && !ctx.out.json {
        let items: Vec<String> = report
            .forgotten_decisions
            .iter()
            .map(ToString::to_string)
            .collect();
        note(&format!(
            "warning: the record of restore decisions ({}) was dropped as asked: a later migrate keeps the replaced accounts again",
            items.join(", ")
        ));
    }
    let backup = report.backup.as_ref();
    let doc = json!({
        "reverted": report.reverted,
        "upgraded_preview": report.upgraded_preview,
        "backup": backup.map(|p| p.display().to_string()),
        "active_did": report.active_did,
        "dry_run": report.dry_run,
    });
    ctx.out.emit(doc, || {
        let mut lines = Vec::new();
        if let Some(b) = backup {
            lines.push(format!("backup: {}", shown_path(b)));
        }
        if !report.upgraded_preview.is_empty() {
            lines.push(format!(
                "brought a preview build's steps ({}) to the current ones first, every row kept",
                report
                    .upgraded_preview
                    .iter()
                    .map(Version::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if report.reverted.is_empty() {
            lines.push("nothing to roll back".to_owned());
        }
        lines.extend(report.reverted.iter().map(|v| format!("reverted {v}")));
        lines.push(format!(
            "active identity: {}",
            shown_or_none(report.active_did.as_deref())
        ));
        if report.dry_run {
            lines.push("dry run: everything was rolled back".to_owned());
        }
        lines.join("\n")
    });
    Ok(())
}
