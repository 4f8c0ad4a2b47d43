//! `check`, `repair`, `account`, `active`, `settings` and `demo`.

use anyhow::{Result, anyhow};
use idstore_domain::account::format_date_created;
use idstore_domain::{Did, NewAccount, Settings, SettingsChange, SettingsField};
use idstore_repo::{HealthReport, Problem, ProblemKind, Store, check_database};
use serde_json::{Value, json};

use super::Ctx;
use super::quarantine::resolve_hint;
use crate::cli::{AccountCommand, ActiveArgs, ActiveCommand, DemoCommand, SettingsCommand};

/// `check`: works on any database, migrated or not; `Ok(false)` when problems exist
/// or decisions wait.
/// `check`: works on any database, migrated or not; `Ok(false)` when problems exist
/// or decisions wait. With `all`, every problem is streamed as it is found.
pub(super) fn check(ctx: &Ctx, all: bool) -> Result<bool> {
    let mut conn = ctx.open_read_only()?;
    let is_decision = |k: ProblemKind| {
        matches!(
            k,
            ProblemKind::QuarantinedAccount | ProblemKind::QuarantinedPointer
        )
    };
    // (problems, decisions waiting)
    let (problems, decisions) = if all && idstore_repo::status(&mut conn)?.servable() {
        // Streamed as found: only the two counts are kept, so memory stays flat.
        let (mut problems, mut decisions) = (0u64, 0u64);
        Store::new(&mut conn).check_each(|p| {
            if ctx.out.json {
                super::print_line(&serde_json::to_string(&p).unwrap_or_default());
            } else if !ctx.out.quiet {
                super::print_line(&problem_line("", &p));
            }
            if is_decision(p.kind) {
                decisions += 1;
            } else {
                problems += 1;
            }
        })?;
        (problems, decisions)
    } else {
        let report = check_database(&mut conn)?;
        emit_health(ctx, &report);
        let decisions = report.count(ProblemKind::QuarantinedAccount)
            + report.count(ProblemKind::QuarantinedPointer);
        (report.total() - decisions, decisions)
    };
    if problems + decisions > 0 && !ctx.out.json {
        let mut parts = Vec::new();
        if problems > 0 {
            parts.push(format!(
                "{problems} problem(s) found; `idstore repair` fixes those that can be fixed without losing data"
            ));
        }
        if decisions > 0 {
            parts.push(format!(
                "{decisions} quarantined item(s) wait for a decision; `idstore quarantine list` shows them"
            ));
        }
        super::print_error(&parts.join("; "));
    }
    Ok(problems + decisions == 0)
}

/// One problem as `check` and `repair` print it: a decision waiting names the
/// commands that resolve it.
fn problem_line(prefix: &str, p: &Problem) -> String {
    match p.item {
        Some(item) => format!(
            "{prefix}decision waiting ({}): {}\n  resolve: {}",
            p.kind.as_str(),
            p.detail,
            resolve_hint(item)
        ),
        None if p.kind == ProblemKind::NeedsMigration => format!(
            "{prefix}{}: {}; run `idstore migrate`",
            p.kind.as_str(),
            p.detail
        ),
        None => format!("{prefix}{}: {}", p.kind.as_str(), p.detail),
    }
}

fn emit_health(ctx: &Ctx, report: &HealthReport) {
    ctx.out.emit(
        json!({ "ok": report.ok(), "problems": report.problems, "omitted": report.omitted }),
        || {
            if report.ok() {
                return "ok: no problems found".to_owned();
            }
            let mut lines: Vec<String> = report
                .problems
                .iter()
                .map(|p| problem_line("", p))
                .collect();
            lines.extend(report.omitted.iter().map(|(kind, n)| {
                format!(
                    "… and {n} more {} problem(s) (`idstore check --all` lists every one)",
                    kind.as_str()
                )
            }));
            lines.join("\n")
        },
    );
}

pub(super) fn repair(ctx: &Ctx) -> Result<()> {
    let mut conn = ctx.open_migrated(true)?;
    let report = Store::new(&mut conn).repair()?;
    ctx.out.emit(
        json!({ "fixed": report.fixed, "left": report.left, "left_omitted": report.left_omitted }),
        || {
            let mut lines: Vec<String> = report
                .fixed
                .iter()
                .map(|p| format!("fixed {}: {}", p.kind.as_str(), p.detail))
                .collect();
            let decisions = report.left.iter().filter(|p| p.is_decision()).count();
            if report.fixed.is_empty() {
                lines.push(if decisions > 0 {
                    format!("nothing repair can fix; {decisions} quarantined item(s) wait for your decision:")
                } else {
                    "nothing to fix".to_owned()
                });
            }
            lines.extend(report.left.iter().map(|p| problem_line("left ", p)));
            lines.extend(report.left_omitted.iter().map(|(kind, n)| {
                format!(
                    "… and {n} more {} left (`idstore check --all` lists every one)",
                    kind.as_str()
                )
            }));
            lines.join("\n")
        },
    );
    Ok(())
}

pub(super) fn account(ctx: &Ctx, cmd: &AccountCommand) -> Result<()> {
    match cmd {
        AccountCommand::Add {
            did,
            public_key,
            derivation_path,
            date,
        } => {
            let date_created = match date {
                Some(d) => d.clone(),
                None => format_date_created(chrono::Utc::now()),
            };
            let new = NewAccount {
                did: did.clone(),
                date_created,
                derivation_path: derivation_path.clone(),
                identity_encr_base64: None,
                mnemonic_encr_base64: None,
                passkey_cred_id_hex: None,
                public_key_hex: public_key.clone(),
            };
            let mut conn = ctx.open_migrated(true)?;
            let added = Store::new(&mut conn).add_account(&new)?;
            ctx.out.emit(
                json!({ "did": added.did, "date_created": added.date_created }),
                || format!("added {} (created {})", added.did, added.date_created),
            );
        }
        AccountCommand::List => {
            let mut conn = ctx.open_migrated(false)?;
            let mut store = Store::new(&mut conn);
            let active = store.active_identity()?.active_did;
            let list = store.accounts()?;
            let rows: Vec<Value> = list
                .iter()
                .map(|a| json!({ "did": a.did, "date_created": a.date_created, "active": Some(&a.did) == active.as_ref() }))
                .collect();
            ctx.out.emit(json!({ "accounts": rows }), || {
                if list.is_empty() {
                    return "no accounts".to_owned();
                }
                let lines: Vec<String> = list
                    .iter()
                    .map(|a| {
                        let mark = if Some(&a.did) == active.as_ref() {
                            "*"
                        } else {
                            " "
                        };
                        format!("{mark} {}  {}", a.did, a.date_created)
                    })
                    .collect();
                lines.join("\n")
            });
        }
        AccountCommand::Remove { did, allow_last } => {
            let mut conn = ctx.open_migrated(true)?;
            let r = Store::new(&mut conn).delete_account(did, *allow_last)?;
            ctx.out.emit(
                json!({ "removed": r.removed, "active_did": r.active_did }),
                || {
                    let mut s = format!("removed {}", r.removed);
                    if r.was_active {
                        let now = r
                            .active_did
                            .as_ref()
                            .map_or("none".to_owned(), Did::to_string);
                        s.push_str(&format!("\nit was active; active identity now: {now}"));
                    }
                    s
                },
            );
        }
    }
    Ok(())
}

pub(super) fn active(ctx: &Ctx, args: &ActiveArgs) -> Result<()> {
    let write = args.action.is_some();
    let mut conn = ctx.open_migrated(write)?;
    let mut store = Store::new(&mut conn);
    match &args.action {
        Some(ActiveCommand::Set { did }) => store.set_active_did(Some(did))?,
        Some(ActiveCommand::Clear) => store.set_active_did(None)?,
        None => {}
    }
    let now = store.active_identity()?;
    let last_updated = now.last_updated.map(|t| t.and_utc().to_rfc3339());
    ctx.out.emit(
        json!({ "active_did": now.active_did, "last_updated": last_updated }),
        || match &now.active_did {
            Some(d) => format!("active identity: {d}"),
            None => "no active identity".to_owned(),
        },
    );
    Ok(())
}

/// Settings as a JSON object with the legacy field names, every field present.
fn settings_json(s: &Settings) -> Value {
    serde_json::to_value(s).expect("settings serialize")
}

fn settings_text(s: &Settings) -> String {
    let lines: Vec<String> = SettingsField::ALL
        .iter()
        .filter(|f| !s.get_json(**f).is_null())
        .map(|f| format!("{} = {}", f.name(), s.get_json(*f)))
        .collect();
    if lines.is_empty() {
        "(no settings set)".to_owned()
    } else {
        lines.join("\n")
    }
}

pub(super) fn settings(ctx: &Ctx, cmd: &SettingsCommand) -> Result<()> {
    let (change, account) = match cmd {
        SettingsCommand::Show { account, merged } => {
            let mut conn = ctx.open_migrated(false)?;
            let mut store = Store::new(&mut conn);
            let shown = match (account, merged) {
                (_, true) => store.account_settings(account.as_ref())?.settings,
                (Some(did), false) => {
                    store.account(did)?;
                    store.override_settings(did)?.unwrap_or_default()
                }
                (None, false) => store.master_settings()?,
            };
            ctx.out
                .emit(settings_json(&shown), || settings_text(&shown));
            return Ok(());
        }
        SettingsCommand::Set {
            assignments,
            account,
        } => {
            let mut change = SettingsChange::default();
            for (field, value) in assignments {
                change.set_from_str(*field, value)?;
            }
            (change, account)
        }
        SettingsCommand::Unset { fields, account } => {
            let mut change = SettingsChange::default();
            for field in fields {
                change.clear(*field);
            }
            (change, account)
        }
    };
    let mut conn = ctx.open_migrated(true)?;
    let mut store = Store::new(&mut conn);
    let result = match account {
        Some(did) => {
            store.save_account_settings(did, &change)?;
            store
                .override_settings(did)?
                .ok_or_else(|| anyhow!("the override row was not saved"))?
        }
        None => {
            store.save_settings(&change)?;
            store.master_settings()?
        }
    };
    ctx.out
        .emit(settings_json(&result), || settings_text(&result));
    Ok(())
}

pub(super) fn demo(ctx: &Ctx, cmd: &DemoCommand) -> Result<()> {
    match cmd {
        DemoCommand::Legacy { path } => {
            idstore_repo::legacy::write_legacy_demo(path)?;
            let dids = idstore_repo::legacy::DEMO_DIDS;
            ctx.out.emit(json!({ "path": path.display().to_string(), "accounts": dids, "active_did": dids[1] }), || {
                format!(
                    "wrote a legacy database to {} with {} identities ({} active, {} stored twice)\nnext: idstore --db {} migrate",
                    path.display(),
                    dids.len(),
                    dids[1],
                    dids[0],
                    path.display()
                )
            });
        }
    }
    Ok(())
}
