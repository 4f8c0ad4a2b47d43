//! `account add | list | remove`.

use idstore_repo::domain::NewAccount;
use idstore_repo::domain::account::format_date_created;
use idstore_repo::{Error, ErrorKind, WhenLast};
use serde_json::json;

use crate::cli::AccountCommand;
use crate::context::Ctx;
use crate::output::{Shown, shown_or_none};

pub(super) fn account(ctx: &Ctx, cmd: &AccountCommand) -> Result<bool, Error> {
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
            let mut new = NewAccount::new(did.clone(), public_key.clone(), date_created);
            if let Some(path) = derivation_path {
                new = new.derivation_path(path.clone());
            }
            let mut db = ctx.open_write()?;
            let added = db.store()?.add_account(&new)?;
            ctx.out.emit(
                json!({ "did": added.did, "date_created": added.date_created }),
                || {
                    format!(
                        "added {} (created {})",
                        Shown(added.did.as_str()),
                        Shown(&added.date_created)
                    )
                },
            );
        }
        AccountCommand::List => return list(ctx),
        AccountCommand::Remove { did, allow_last } => {
            let mut db = ctx.open_write()?;
            let r = db.store()?.delete_account(
                did,
                if *allow_last {
                    WhenLast::Delete
                } else {
                    WhenLast::Refuse
                },
            )?;
            ctx.out.emit(
                json!({ "removed": r.removed, "active_did": r.active_did }),
                || {
                    let mut s = format!("removed {}", Shown(r.removed.as_str()));
                    if r.was_active {
                        s.push_str(&format!(
                            "\nit was active; active identity now: {}",
                            shown_or_none(r.active_did.as_ref().map(|d| d.as_str()))
                        ));
                    }
                    s
                },
            );
        }
    }
    Ok(true)
}

/// How many unreadable rows `account list` names; the rest are counted.
const UNREADABLE_NAMED: usize = 10;

/// Lists every account, printed as it is read: memory stays flat however many there
/// are (with `--json`, one document whose `accounts` array is written element by
/// element). A row that cannot be read (text that is
/// not UTF-8, a DID that is not valid) does not hide the others: it is named on
/// stderr (and under `"unreadable"` in JSON), and the exit status is 1.
fn list(ctx: &Ctx) -> Result<bool, Error> {
    let mut db = ctx.open_read()?;
    let mut store = db.store()?;
    let active = store.active_identity()?.active_did;
    let out = &ctx.out;
    if out.json {
        out.line("{\"accounts\":[");
    }
    let mut count = 0u64;
    let mut unreadable = Vec::new();
    let mut unreadable_count = 0usize;
    for account in store.accounts()? {
        let a = match account {
            Ok(a) => a,
            Err(e) if e.kind() == ErrorKind::InvalidStoredValue => {
                unreadable_count += 1;
                if unreadable.len() < UNREADABLE_NAMED {
                    if !out.json {
                        crate::output::error_line(&e.to_string());
                    }
                    unreadable.push(e.to_string());
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        let is_active = Some(&a.did) == active.as_ref();
        if out.json {
            let item = json!({ "did": a.did, "date_created": a.date_created, "active": is_active });
            out.line(&format!("{}{item}", if count > 0 { "," } else { "" }));
        } else if !out.quiet {
            let mark = if is_active { "*" } else { " " };
            out.line(&format!(
                "{mark} {}  {}",
                Shown(a.did.as_str()),
                Shown(&a.date_created)
            ));
        }
        count += 1;
    }
    if out.json {
        out.line(&format!(
            "],\"unreadable\":{},\"unreadable_count\":{unreadable_count}}}",
            json!(unreadable)
        ));
    } else if count == 0 && unreadable_count == 0 {
        out.text("no accounts");
    }
    if unreadable_count > 0 {
        crate::output::error_line(&format!(
            "{unreadable_count} account row(s) could not be read{}; `idstore check` lists every such value",
            if unreadable_count > unreadable.len() {
                format!(" (the first {} named above)", unreadable.len())
            } else {
                String::new()
            }
        ));
    }
    Ok(unreadable_count == 0)
}
