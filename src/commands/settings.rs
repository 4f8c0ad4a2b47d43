//! `settings show | set | unset`.

use idstore_repo::domain::{Settings, SettingsChange, SettingsField};
use idstore_repo::{Error, SettingsScope};

use crate::cli::SettingsCommand;
use crate::context::Ctx;
use crate::output::Shown;

/// Settings as text: each set field a line, its value escaped and capped.
fn settings_text(s: &Settings) -> String {
    let lines: Vec<String> = SettingsField::ALL
        .iter()
        .filter_map(|f| {
            let value = match (f, &s.search_boxes) {
                (SettingsField::SearchBoxes, Some(boxes)) => serde_json::to_string(boxes).ok()?,
                (SettingsField::SearchBoxes, None) => return None,
                _ => match s.get_json(*f) {
                    serde_json::Value::Null => return None,
                    value => value.to_string(),
                },
            };
            Some(format!("{} = {}", f.name(), Shown(&value)))
        })
        .collect();
    if lines.is_empty() {
        "(no settings set)".to_owned()
    } else {
        lines.join("\n")
    }
}

pub(super) fn settings(ctx: &Ctx, cmd: &SettingsCommand) -> Result<(), Error> {
    let (change, account) = match cmd {
        SettingsCommand::Show { account, merged } => {
            let mut db = ctx.open_read()?;
            let mut store = db.store()?;
            let scope = match (account, merged) {
                (_, true) => SettingsScope::Merged(account.as_ref()),
                (Some(did), false) => SettingsScope::Override(did),
                (None, false) => SettingsScope::Master,
            };
            let shown = store.settings(scope)?.settings;
            ctx.out.emit_serialized(&shown, || settings_text(&shown));
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
    let mut db = ctx.open_write()?;
    let mut store = db.store()?;
    let result = match account {
        Some(did) => {
            store.save_account_settings(did, &change)?;
            store.settings(SettingsScope::Override(did))?.settings
        }
        None => {
            store.save_settings(&change)?;
            store.settings(SettingsScope::Master)?.settings
        }
    };
    ctx.out.emit_serialized(&result, || settings_text(&result));
    Ok(())
}
