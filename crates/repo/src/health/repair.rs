//! `repair`: what can be fixed without losing data, in one transaction.

use diesel::dsl::count_star;
use diesel::prelude::*;
use idstore_domain::Did;
use idstore_schema::active_identity;

use super::check::{
    find_problems, has_unique_did_index, legacy_pointer_out_of_step, missing_guards,
};
use super::{HealthReport, ProblemKind, RepairReport, problem};
use crate::error::{Error, ErrorKind};
use crate::migrations::missing_quarantine_tables;
use crate::migrations::steps::DECISION_LOG;
use crate::sql;
use crate::sql::queries::{clear_dangling_pointer, ensure_master_row};
use crate::store::read_master;

pub(super) fn repair_in_transaction(
    conn: &mut SqliteConnection,
    file: &crate::fs::DbFile,
) -> Result<RepairReport, Error> {
    let mut fixed = Vec::new();
    if read_master(conn)?.is_none() {
        ensure_master_row(conn)?;
        fixed.push(problem(
            ProblemKind::MissingMasterRow,
            "re-created the master settings row with the default API server".into(),
        ));
    }
    // First: the duplicates and a dangling pointer below are kept there.
    let missing = missing_quarantine_tables(conn)?;
    for table in &missing {
        diesel::sql_query(crate::migrations::steps::definition(table)).execute(conn)?;
    }
    if !missing.is_empty() {
        fixed.push(problem(
            ProblemKind::MissingQuarantineTable,
            format!("re-created idstore's tables {} (empty)", missing.join(", ")),
        ));
    }
    let moved = quarantine_duplicates(conn)?;
    if moved > 0 {
        fixed.push(problem(ProblemKind::DuplicateDid, format!("moved {moved} duplicate account rows (all but the lowest id of each DID) to accounts_quarantine")));
    }
    if !has_unique_did_index(conn)? {
        diesel::sql_query("CREATE UNIQUE INDEX idx_accounts_did_unique ON accounts(did)")
            .execute(conn)?;
        fixed.push(problem(
            ProblemKind::MissingDidIndex,
            "re-created the UNIQUE index idx_accounts_did_unique".into(),
        ));
    }
    let first = first_valid_account(conn)?;
    let pointer_rows: i64 = active_identity::table
        .select(count_star())
        .get_result(conn)?;
    if pointer_rows == 0 {
        diesel::insert_into(active_identity::table)
            .values((
                active_identity::id.eq(1),
                active_identity::activeDid.eq(None::<String>),
            ))
            .execute(conn)?;
        fixed.push(problem(
            ProblemKind::MissingPointerRow,
            "re-created the active_identity row (no active identity)".into(),
        ));
    }
    if let Some(old) = clear_dangling_pointer(conn, first.as_ref())? {
        let now = first
            .as_ref()
            .map_or("cleared it".to_owned(), |d| format!("re-pointed it to {d}"));
        fixed.push(problem(
            ProblemKind::DanglingPointer,
            format!("active identity {old:?} named no account: {now}; the old value is kept in active_did_quarantine"),
        ));
    }
    // Last, once the pointer is valid: the guard only checks later writes.
    let missing = missing_guards(conn)?;
    if !missing.is_empty() {
        for name in &missing {
            diesel::sql_query(crate::migrations::steps::definition(name)).execute(conn)?;
        }
        fixed.push(problem(
            ProblemKind::MissingPointerGuard,
            format!(
                "re-created the pointer guard triggers {}",
                missing.join(", ")
            ),
        ));
    }
    if let Some((legacy, pointer)) = legacy_pointer_out_of_step(conn)? {
        // The transition trigger on settings then finds the pointer already in place.
        diesel::sql_query(
            "UPDATE settings SET activeDid = (SELECT activeDid FROM active_identity WHERE id = 1) WHERE id = 1",
        )
        .execute(conn)?;
        fixed.push(problem(
            ProblemKind::LegacyPointerOutOfStep,
            format!("settings.activeDid was {legacy:?}; set it to the active identity {pointer:?}"),
        ));
    }
    if !sql::table_exists(conn, DECISION_LOG)? {
        diesel::sql_query(crate::migrations::steps::definition(DECISION_LOG)).execute(conn)?;
        fixed.push(problem(
            ProblemKind::MissingDecisionLog,
            "re-created the quarantine_decisions log (empty)".into(),
        ));
    }
    // Inside the write transaction: a running conversion holds the lock throughout.
    for (leftover, done) in crate::fs::leftovers::remove_leftovers(file) {
        let shown =
            idstore_domain::display::Shown(&leftover.path.display().to_string()).to_string();
        match done {
            Ok(crate::fs::leftovers::Removed::Wiped) => fixed.push(problem(
                ProblemKind::LeftoverCopy,
                format!("removed what an interrupted conversion left: {shown} (overwritten with zeros first)"),
            )),
            Ok(crate::fs::leftovers::Removed::UnlinkedOnly(why)) => fixed.push(problem(
                ProblemKind::UntrustedFile,
                format!(
                    "removed the name {shown}, which was not idstore's ({}), without writing through it",
                    idstore_domain::display::Shown(&why)
                ),
            )),
            // Another user's file stays, and is listed as left.
            Ok(crate::fs::leftovers::Removed::Left(_)) => {}
            Err(e) => return Err(Error::io(&leftover.path, e)),
        }
    }
    let mut left = HealthReport::default();
    find_problems(conn, &mut |p| left.add(p))?;
    for leftover in crate::fs::leftovers::leftovers(file) {
        if let Some(why) = leftover.untrusted {
            left.add(problem(
                ProblemKind::UntrustedFile,
                format!(
                    "{} is another user's file where a conversion's copy goes ({}): idstore leaves it; its owner can remove it",
                    idstore_domain::display::Shown(&leftover.path.display().to_string()),
                    idstore_domain::display::Shown(&why)
                ),
            ));
        }
    }
    if let Some(p) = left.problems.iter().find(|p| p.kind.repairable()) {
        // Nothing may be committed half-repaired.
        return Err(Error::new(
            ErrorKind::RepairIncomplete,
            format!(
                "repair rolled back: a fixable problem remained ({}: {})",
                p.kind.as_str(),
                p.detail
            ),
        ));
    }
    Ok(RepairReport {
        fixed,
        left: left.problems,
        left_omitted: left.omitted,
    })
}

/// The first account by (`dateCreated`, DID) whose DID is valid.
fn first_valid_account(conn: &mut SqliteConnection) -> QueryResult<Option<Did>> {
    #[derive(QueryableByName)]
    struct Next {
        #[diesel(sql_type = diesel::sql_types::Binary)]
        date: Vec<u8>,
        #[diesel(sql_type = diesel::sql_types::Binary)]
        did: Vec<u8>,
        // The DID decoded in the file's encoding (the bytes above order the scan).
        #[diesel(sql_type = diesel::sql_types::Binary)]
        did_text: crate::sql::StoredText,
    }
    // One row at a time in (dateCreated, did) order, each found by a scan that keeps
    // only the best row so far: no sort of the whole table (which an encrypted file,
    // its temporary data in memory, would hold in memory).
    let mut after: Option<(Vec<u8>, Vec<u8>)> = None;
    loop {
        let next = diesel::sql_query(
            "SELECT CAST(dateCreated AS BLOB) AS date, CAST(did AS BLOB) AS did, did AS did_text FROM accounts
              WHERE ?1 IS NULL OR (CAST(dateCreated AS BLOB), CAST(did AS BLOB)) > (?1, ?2)
              ORDER BY CAST(dateCreated AS BLOB), CAST(did AS BLOB) LIMIT 1",
        )
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Binary>, _>(
            after.as_ref().map(|a| a.0.as_slice()),
        )
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Binary>, _>(
            after.as_ref().map(|a| a.1.as_slice()),
        )
        .get_result::<Next>(conn)
        .optional()?;
        let Some(next) = next else {
            return Ok(None);
        };
        if let crate::sql::StoredText::Text(d) = &next.did_text
            && let Ok(valid) = Did::try_from(d.clone())
        {
            return Ok(Some(valid));
        }
        after = Some((next.date, next.did));
    }
}

/// Moves every account row beyond the first (lowest id) of its DID, every column
/// intact, to `accounts_quarantine`, as the migration does. Returns how many.
fn quarantine_duplicates(conn: &mut SqliteConnection) -> QueryResult<usize> {
    let moved = diesel::sql_query(
        "INSERT INTO accounts_quarantine (id, dateCreated, derivationPath, did, identityEncrBase64,
                                          mnemonicEncrBase64, passkeyCredIdHex, publicKeyHex,
                                          keptAccountId, reason)
         SELECT dup.id, dup.dateCreated, dup.derivationPath, dup.did, dup.identityEncrBase64,
                dup.mnemonicEncrBase64, dup.passkeyCredIdHex, dup.publicKeyHex,
                (SELECT min(id) FROM accounts WHERE did = dup.did), 'duplicate did found by repair'
           FROM accounts AS dup
          WHERE dup.id > (SELECT min(id) FROM accounts WHERE did = dup.did)",
    )
    .execute(conn)?;
    if moved > 0 {
        diesel::sql_query("DELETE FROM accounts WHERE id IN (SELECT id FROM accounts_quarantine)")
            .execute(conn)?;
    }
    Ok(moved)
}
