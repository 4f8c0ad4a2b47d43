//! The decisions: restore and discard, each in one immediate transaction with its
//! log row, and the owner-only export file a discard writes first.

use std::io;
use std::path::Path;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::Integer;
use idstore_domain::{Did, Secret};
use idstore_schema::{
    accounts, accounts_quarantine, active_did_quarantine, active_identity, quarantine_decisions,
};

use super::read::{decisions, detail, require_log};
use super::{
    Decision, DecisionKind, Discard, QuarantinedAccount, QuarantinedDetail, QuarantinedItem,
};
use crate::error::{Error, ErrorKind};
use crate::sql::queries::write_pointer;
use crate::store::Store;
use idstore_domain::quarantine::{QuarantineKind, QuarantineRef};

/// The whole row as an export file holds it: every column, secrets included.
fn export_document(detail: &QuarantinedDetail) -> serde_json::Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let at = |t: &NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string();
    let (item, table, row) = match detail {
        QuarantinedDetail::Account { row, summary } => (
            summary.item,
            "accounts_quarantine",
            serde_json::json!({
                "id": row.id,
                "dateCreated": row.date_created,
                "derivationPath": row.derivation_path,
                "did": row.did,
                "identityEncrBase64": row.identity_encr_base64.as_ref().map(Secret::expose),
                "mnemonicEncrBase64": row.mnemonic_encr_base64.as_ref().map(Secret::expose),
                "passkeyCredIdHex": row.passkey_cred_id_hex,
                "publicKeyHex": row.public_key_hex,
                "keptAccountId": row.kept_account_id,
                "reason": row.reason,
                "quarantinedAt": at(&row.quarantined_at),
            }),
        ),
        QuarantinedDetail::Pointer { row, summary } => (
            summary.item,
            "active_did_quarantine",
            serde_json::json!({
                "id": row.id,
                "activeDid": row.active_did,
                "reason": row.reason,
                "quarantinedAt": at(&row.quarantined_at),
            }),
        ),
    };
    serde_json::json!({
        "idstore_quarantine_export": 1,
        "item": item.to_string(),
        "exported_at": now,
        "table": table,
        "row": row,
    })
}

/// Writes `bytes` to `path`, which must not exist (a link there counts),
/// owner-only and durable, folder included. The content goes to a temporary file
/// beside it first and is then linked into place, which fails rather than
/// overwrite: a killed process never leaves a half-written file at `path`.
fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use crate::fs::{Folder, Protects, folder_of};
    let export_err = |source: io::Error| -> Error {
        Error::at(
            ErrorKind::ExportFailed,
            path,
            format!(
                "could not write the export to {}; the item was not deleted",
                path.display()
            ),
        )
        .caused_by(source)
    };
    let name = path.file_name().ok_or_else(|| {
        export_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the export path names no file",
        ))
    })?;
    let folder = Folder::open(folder_of(path)).map_err(export_err)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".partial-{}", std::process::id()));
    let written = (|| {
        let mut file = folder.create_new(&tmp_name, None)?;
        file.write_all(bytes)?;
        file.sync(Protects::ExportContent)?;
        drop(file);
        folder.link(&tmp_name, name)
    })();
    if folder.inspect(&tmp_name).is_ok_and(|e| e.is_some()) {
        let _ = folder.remove(&tmp_name);
    }
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(export_exists(path)),
        Err(e) => return Err(export_err(e)),
    }
    folder.sync(Protects::ExportName).map_err(export_err)
}

/// The refusal to export over a file that exists.
fn export_exists(path: &Path) -> Error {
    Error::at(
        ErrorKind::Exists,
        path,
        format!(
            "{} already exists; exports never overwrite a file: pass a new path",
            path.display()
        ),
    )
}

/// A new log row; returns its id.
#[allow(clippy::too_many_arguments)]
fn record(
    conn: &mut SqliteConnection,
    decision: DecisionKind,
    item: QuarantineRef,
    value: &str,
    kept_aside: Option<i32>,
    previous_active_did: Option<&str>,
    export_path: Option<&Path>,
) -> Result<Decision, Error> {
    let export = export_path.map(|p| p.to_string_lossy().into_owned());
    let id = diesel::insert_into(quarantine_decisions::table)
        .values((
            quarantine_decisions::decision.eq(decision.as_str()),
            quarantine_decisions::itemKind.eq(item.kind.as_str()),
            quarantine_decisions::itemId.eq(item.id),
            quarantine_decisions::subject.eq(value),
            quarantine_decisions::keptAsideId.eq(kept_aside),
            quarantine_decisions::previousActiveDid.eq(previous_active_did),
            quarantine_decisions::exportPath.eq(&export),
        ))
        .returning(quarantine_decisions::id)
        .get_result::<i32>(conn)?;
    tracing::info!(item = %item, decision = decision.as_str(), "quarantine decision");
    Ok(decisions(conn, Some(id))?
        .pop()
        .expect("the row was just inserted"))
}

/// Swaps a quarantined account in: row `q` becomes the account for its DID with its
/// own id; the account holding the DID (if any) moves to the quarantine in its place.
/// The accounts row is updated in place (its DID unchanged), so the pointer and the
/// override settings rows naming the DID stay valid throughout.
fn restore_account(
    conn: &mut SqliteConnection,
    q: &QuarantinedAccount,
) -> QueryResult<Option<i32>> {
    let kept: Option<i32> = accounts::table
        .filter(accounts::did.eq(&q.did))
        .select(accounts::id)
        .get_result(conn)
        .optional()?;
    diesel::delete(accounts_quarantine::table.find(q.id)).execute(conn)?;
    let fields = (
        accounts::id.eq(q.id),
        accounts::dateCreated.eq(&q.date_created),
        accounts::derivationPath.eq(&q.derivation_path),
        accounts::did.eq(&q.did),
        accounts::identityEncrBase64.eq(q.identity_encr_base64.as_ref().map(Secret::expose)),
        accounts::mnemonicEncrBase64.eq(q.mnemonic_encr_base64.as_ref().map(Secret::expose)),
        accounts::passkeyCredIdHex.eq(&q.passkey_cred_id_hex),
        accounts::publicKeyHex.eq(&q.public_key_hex),
    );
    match kept {
        Some(kept_id) => {
            diesel::sql_query(
                "INSERT INTO accounts_quarantine (id, dateCreated, derivationPath, did,
                        identityEncrBase64, mnemonicEncrBase64, passkeyCredIdHex, publicKeyHex,
                        keptAccountId, reason)
                 SELECT id, dateCreated, derivationPath, did, identityEncrBase64,
                        mnemonicEncrBase64, passkeyCredIdHex, publicKeyHex, ?2,
                        'replaced by quarantined account ' || ?2 || ' on a restore decision'
                   FROM accounts WHERE id = ?1",
            )
            .bind::<Integer, _>(kept_id)
            .bind::<Integer, _>(q.id)
            .execute(conn)?;
            diesel::update(accounts::table.find(kept_id))
                .set(fields)
                .execute(conn)?;
            // Other rows kept aside for this DID now stand beside the restored account.
            diesel::update(
                accounts_quarantine::table
                    .filter(accounts_quarantine::keptAccountId.eq(kept_id))
                    .filter(accounts_quarantine::id.ne(kept_id)),
            )
            .set(accounts_quarantine::keptAccountId.eq(q.id))
            .execute(conn)?;
        }
        None => {
            diesel::insert_into(accounts::table)
                .values(fields)
                .execute(conn)?;
        }
    }
    Ok(kept)
}

impl Store<'_> {
    /// Every quarantined item, accounts first, by id. Lists no secret value: an
    /// account's comparison with the kept account names the differing fields only.
    pub fn quarantined_items(&mut self) -> Result<Vec<QuarantinedItem>, Error> {
        self.read(super::items)
    }

    /// One quarantined item, whole (key material as [`Secret`]).
    pub fn quarantined_item(&mut self, item: QuarantineRef) -> Result<QuarantinedDetail, Error> {
        self.read(|conn| detail(conn, item))
    }

    /// Every recorded decision, oldest first.
    pub fn quarantine_decisions(&mut self) -> Result<Vec<Decision>, Error> {
        self.read(|conn| Ok(decisions(conn, None)?))
    }

    /// The refusals of [`Store::restore_quarantined`], read only: call it first to
    /// refuse before writing anything else (a backup, say).
    pub fn check_restore(&mut self, item: QuarantineRef) -> Result<(), Error> {
        self.read(|conn| restorable(conn, item).map(drop))
    }

    /// The refusals of [`Store::discard_quarantined`], read only.
    pub fn check_discard(&mut self, item: QuarantineRef, how: Discard<'_>) -> Result<(), Error> {
        self.read(|conn| discardable(conn, item, how).map(drop))
    }

    /// Restores an item, in one transaction with its log row.
    ///
    /// - An account becomes the account for its DID, with its own id; the account it
    ///   replaces moves to the quarantine in its place (recorded as kept aside, so it
    ///   no longer waits for a decision). No row is lost and the pointer stays valid.
    /// - A pointer value becomes the active identity; refused unless it names an
    ///   account.
    pub fn restore_quarantined(&mut self, item: QuarantineRef) -> Result<Decision, Error> {
        self.write_durably(|conn| match restorable(conn, item)? {
            Restorable::Account(row) => {
                let kept = restore_account(conn, &row)?;
                record(
                    conn,
                    DecisionKind::Restore,
                    item,
                    &row.did,
                    kept,
                    None,
                    None,
                )
            }
            Restorable::Pointer { id, value, did } => {
                let previous: Option<String> = active_identity::table
                    .find(1)
                    .select(active_identity::activeDid)
                    .get_result::<Option<String>>(conn)
                    .optional()?
                    .flatten();
                write_pointer(conn, Some(&did))?;
                diesel::delete(active_did_quarantine::table.find(id)).execute(conn)?;
                record(
                    conn,
                    DecisionKind::Restore,
                    item,
                    &value,
                    None,
                    previous.as_deref(),
                    None,
                )
            }
        })
    }

    /// Deletes an item after exporting it, or on an explicit [`Discard::Forget`], in
    /// one transaction with its log row. An export is written and fsynced before the
    /// row is deleted, and removed again if the deletion does not commit.
    pub fn discard_quarantined(
        &mut self,
        item: QuarantineRef,
        how: Discard<'_>,
    ) -> Result<Decision, Error> {
        let mut exported: Option<&Path> = None;
        let result = self.write_durably(|conn| {
            let found = discardable(conn, item, how)?;
            let value = found.summary().value.clone();
            let decision = match how {
                Discard::Export(path) => {
                    let doc = export_document(&found);
                    let mut bytes = serde_json::to_vec_pretty(&doc).expect("JSON values serialize");
                    bytes.push(b'\n');
                    write_new_private_file(path, &bytes)?;
                    exported = Some(path);
                    DecisionKind::DiscardExport
                }
                Discard::Forget { .. } => DecisionKind::DiscardForget,
            };
            match item.kind {
                QuarantineKind::Account => {
                    diesel::delete(accounts_quarantine::table.find(item.id)).execute(conn)?
                }
                QuarantineKind::Pointer => {
                    diesel::delete(active_did_quarantine::table.find(item.id)).execute(conn)?
                }
            };
            record(conn, decision, item, &value, None, None, exported)
        });
        if let Some(path) = exported {
            if result.is_err() {
                // The row is still there: the export would be a stray copy of key material.
                super::remove_export(path);
            } else if let Some(unit) = self.unit_exports() {
                // Inside a unit of work, the row comes back if the unit rolls back.
                unit.push(path.to_owned());
            }
        }
        result
    }
}

/// What a restore will put in place, once its refusals passed.
enum Restorable {
    Account(QuarantinedAccount),
    Pointer { id: i32, value: String, did: Did },
}

/// Every refusal of a restore, in one place.
fn restorable(conn: &mut SqliteConnection, item: QuarantineRef) -> Result<Restorable, Error> {
    require_log(conn)?;
    match detail(conn, item)? {
        QuarantinedDetail::Account { row, .. } => Ok(Restorable::Account(row)),
        QuarantinedDetail::Pointer { row, summary } => {
            let shortened = || row.active_did.chars().take(80).collect::<String>();
            if !summary.names_account {
                return Err(Error::new(
                    ErrorKind::UnknownAccount,
                    format!(
                        "{item} cannot be restored: its value {:?} names no account; add that account first, or discard the value",
                        shortened()
                    ),
                ));
            }
            let did = Did::parse(&row.active_did).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidStoredValue,
                    format!(
                        "{item} cannot be restored: {:?} is not a valid DID ({e})",
                        shortened()
                    ),
                )
            })?;
            Ok(Restorable::Pointer {
                id: row.id,
                value: row.active_did,
                did,
            })
        }
    }
}

/// Every refusal of a discard, in one place; returns the item whole.
fn discardable(
    conn: &mut SqliteConnection,
    item: QuarantineRef,
    how: Discard<'_>,
) -> Result<QuarantinedDetail, Error> {
    require_log(conn)?;
    match how {
        Discard::Export(path) if std::fs::symlink_metadata(path).is_ok() => {
            // (Checked again, without a race, when the export is linked into place.)
            return Err(export_exists(path));
        }
        Discard::Forget { force: false } if item.kind == QuarantineKind::Account => {
            return Err(Error::new(
                ErrorKind::NeedsForce,
                format!(
                    "{item} holds key material: forgetting it deletes that for good; export it instead, or force it"
                ),
            ));
        }
        _ => {}
    }
    detail(conn, item)
}
