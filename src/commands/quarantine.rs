//! `quarantine list | show | restore | discard`.

use std::io::IsTerminal;

use idstore_repo::domain::Secret;
use idstore_repo::domain::{QuarantineKind, QuarantineRef};
use idstore_repo::quarantine::{
    Decision, DecisionKind, Discard, QuarantinedDetail, QuarantinedItem,
};
use idstore_repo::{Error, ErrorKind, Store};
use serde_json::{Value, json};

use crate::cli::QuarantineCommand;
use crate::context::Ctx;
use crate::output::{Shown, note};

/// The commands that resolve `item`, as `check`, `repair` and `quarantine list` print them.
pub(super) fn resolve_hint(item: QuarantineRef) -> String {
    match item.kind {
        QuarantineKind::Account => format!(
            "idstore quarantine restore {item}  |  idstore quarantine discard {item} --export FILE"
        ),
        QuarantineKind::Pointer => format!(
            "idstore quarantine restore {item} (once it names an account)  |  idstore quarantine discard {item} --forget"
        ),
    }
}

/// A quarantined item as `--json` prints it: the command's own keys, which
/// operators' scripts read (the library's type speaks the app's names).
#[derive(serde::Serialize)]
struct ItemOutput<'a> {
    item: QuarantineRef,
    value: &'a str,
    reason: &'a str,
    quarantined_at: chrono::NaiveDateTime,
    waiting: bool,
    kept_account_id: Option<i32>,
    differs_from_kept: &'a [&'static str],
    names_account: bool,
}

impl<'a> From<&'a QuarantinedItem> for ItemOutput<'a> {
    fn from(i: &'a QuarantinedItem) -> Self {
        ItemOutput {
            item: i.item,
            value: &i.value,
            reason: &i.reason,
            quarantined_at: i.quarantined_at,
            waiting: i.waiting,
            kept_account_id: i.kept_account_id,
            differs_from_kept: &i.differs_from_kept,
            names_account: i.names_account,
        }
    }
}

/// A decision as `--json` prints it (the command's own keys, as [`ItemOutput`]).
#[derive(serde::Serialize)]
struct DecisionOutput<'a> {
    id: i32,
    decided_at: chrono::NaiveDateTime,
    decision: DecisionKind,
    item: QuarantineRef,
    value: &'a str,
    kept_aside: Option<QuarantineRef>,
    previous_active_did: Option<&'a str>,
    export_path: Option<&'a std::path::Path>,
}

impl<'a> From<&'a Decision> for DecisionOutput<'a> {
    fn from(d: &'a Decision) -> Self {
        DecisionOutput {
            id: d.id,
            decided_at: d.decided_at,
            decision: d.decision,
            item: d.item,
            value: &d.value,
            kept_aside: d.kept_aside,
            previous_active_did: d.previous_active_did.as_deref(),
            export_path: d.export_path.as_deref(),
        }
    }
}

fn item_lines(i: &QuarantinedItem) -> Vec<String> {
    let state = if i.waiting {
        "waiting"
    } else {
        "kept aside by a restore decision"
    };
    let mut lines = vec![format!(
        "{}  {}  {}  {}  (quarantined {})",
        i.item,
        state,
        Shown(&i.value),
        Shown(&i.reason),
        i.quarantined_at.format("%Y-%m-%d %H:%M:%S")
    )];
    match (i.item.kind, i.kept_account_id) {
        (QuarantineKind::Account, Some(kept)) if i.differs_from_kept.is_empty() => {
            lines.push(format!("  same fields as the kept account {kept}"));
        }
        (QuarantineKind::Account, Some(kept)) => lines.push(format!(
            "  differs from the kept account {kept} in: {}",
            i.differs_from_kept.join(", ")
        )),
        (QuarantineKind::Account, None) => {
            lines.push("  no account holds this DID now".to_owned());
        }
        (QuarantineKind::Pointer, _) if i.names_account => {
            lines.push("  names an account now: it can be restored".to_owned());
        }
        (QuarantineKind::Pointer, _) => lines.push("  names no account".to_owned()),
    }
    if i.waiting {
        lines.push(format!("  decide: {}", resolve_hint(i.item)));
    }
    lines
}

/// A secret as `show` prints it: redacted unless revealing.
fn secret(value: Option<&Secret>, reveal: bool) -> Value {
    match value {
        None => Value::Null,
        Some(s) if reveal => Value::String(s.expose().to_owned()),
        Some(_) => Value::String("<redacted>".to_owned()),
    }
}

fn detail_json(detail: &QuarantinedDetail, reveal: bool) -> Value {
    match detail {
        QuarantinedDetail::Account { row, summary } => json!({
            "summary": ItemOutput::from(summary),
            "row": {
                "id": row.id,
                "dateCreated": row.date_created,
                "derivationPath": row.derivation_path,
                "did": row.did,
                "identityEncrBase64": secret(row.identity_encr_base64.as_ref(), reveal),
                "mnemonicEncrBase64": secret(row.mnemonic_encr_base64.as_ref(), reveal),
                "passkeyCredIdHex": row.passkey_cred_id_hex,
                "publicKeyHex": row.public_key_hex,
                "keptAccountId": row.kept_account_id,
                "reason": row.reason,
            },
        }),
        QuarantinedDetail::Pointer { row, summary } => json!({
            "summary": ItemOutput::from(summary),
            "row": { "id": row.id, "activeDid": row.active_did, "reason": row.reason },
        }),
        other => json!({ "summary": ItemOutput::from(other.summary()) }),
    }
}

fn decision_text(d: &Decision) -> String {
    match (d.decision, d.item.kind) {
        (DecisionKind::Restore, QuarantineKind::Account) => {
            let mut s = format!(
                "restored {}: it is now the account for {}",
                d.item,
                Shown(&d.value)
            );
            if let Some(kept) = d.kept_aside {
                s.push_str(&format!(
                    "\nthe account it replaced is kept aside as {kept} (restore it to swap back, or discard it)"
                ));
            }
            s
        }
        (DecisionKind::Restore, QuarantineKind::Pointer) => format!(
            "restored {}: the active identity is now {} (it was {})",
            d.item,
            Shown(&d.value),
            crate::output::shown_or_none(d.previous_active_did.as_deref())
        ),
        (DecisionKind::DiscardExport, _) => format!(
            "discarded {} after writing it to {}",
            d.item,
            Shown(
                &d.export_path
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )
        ),
        (DecisionKind::DiscardForget, _) => {
            format!(
                "discarded {} without an export ({})",
                d.item,
                Shown(&d.value)
            )
        }
        _ => format!("decided on {}", d.item),
    }
}

pub(super) fn quarantine(ctx: &Ctx, cmd: &QuarantineCommand) -> Result<(), Error> {
    match cmd {
        QuarantineCommand::List => {
            let mut db = ctx.open_read()?;
            let items = db.store()?.quarantined_items()?;
            let shown: Vec<ItemOutput<'_>> = items.iter().map(ItemOutput::from).collect();
            ctx.out.emit(json!({ "items": shown }), || {
                if items.is_empty() {
                    return "nothing is quarantined".to_owned();
                }
                items
                    .iter()
                    .flat_map(item_lines)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        QuarantineCommand::Show {
            item,
            reveal_secrets,
        } => {
            if *reveal_secrets && (ctx.out.json || !std::io::stdout().is_terminal()) {
                return Err(Error::new(
                    ErrorKind::Other,
                    format!(
                        "--reveal-secrets prints key material only to a terminal, never to a pipe, a file or JSON; to keep a copy, use `idstore quarantine discard {item} --export PATH`"
                    ),
                ));
            }
            let mut db = ctx.open_read()?;
            let detail = db.store()?.quarantined_item(*item)?;
            let doc = detail_json(&detail, *reveal_secrets);
            ctx.out.emit(doc.clone(), || {
                let mut lines = item_lines(detail.summary());
                if let Some(row) = doc["row"].as_object() {
                    lines.extend(row.iter().map(|(k, v)| match v {
                        Value::String(s) => format!("{k}: {}", Shown(s)),
                        other => format!("{k}: {other}"),
                    }));
                }
                lines.join("\n")
            });
        }
        QuarantineCommand::Restore { item, no_backup } => {
            let decision = decide(
                ctx,
                *no_backup,
                |store| store.check_restore(*item),
                |store| store.restore_quarantined(*item),
            )?;
            ctx.out.emit(
                json!({ "decision": DecisionOutput::from(&decision) }),
                || decision_text(&decision),
            );
        }
        QuarantineCommand::Discard {
            item,
            export,
            forget,
            force,
            no_backup,
        } => {
            let how = match (export, forget) {
                (Some(path), _) => Discard::Export(path),
                (None, _) => Discard::Forget { force: *force },
            };
            let decision = decide(
                ctx,
                *no_backup,
                |store| store.check_discard(*item, how),
                |store| store.discard_quarantined(*item, how),
            )?;
            ctx.out.emit(
                json!({ "decision": DecisionOutput::from(&decision) }),
                || decision_text(&decision),
            );
        }
    }
    Ok(())
}

/// Runs one decision on a migrated file, after a backup unless told not to. Its
/// refusals are checked on a read-only connection first, so a refused decision
/// writes nothing, not even a backup.
fn decide(
    ctx: &Ctx,
    no_backup: bool,
    refusals: impl FnOnce(&mut Store<'_>) -> Result<(), Error>,
    run: impl FnOnce(&mut Store<'_>) -> Result<Decision, Error>,
) -> Result<Decision, Error> {
    let mut db = ctx.open_write()?;
    refusals(&mut db.store()?)?;
    if !no_backup {
        let path = ctx.backup_path();
        db.backup_to(&path)?;
        if ctx.out.verbose && !ctx.out.json {
            note(&format!("backup: {}", crate::output::shown_path(&path)));
        }
    }
    run(&mut db.store()?)
}
