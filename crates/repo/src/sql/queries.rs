//! The reads and the one write that the store, the health checks and the migration
//! runner share: account existence, the master settings row, the pointer, and the
//! decision log's restores.
//!
//! Every statement here is plain SQL over columns that every schema version since
//! the one named on it has, so the migration runner may use them on a file that is
//! not at the latest version; none uses the generated `table!` definitions, which
//! describe only the latest one. The hot ones go through [`Fixed`], which Diesel
//! keeps prepared (it re-prepares every `sql_query`).

use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Nullable, Text};
use idstore_domain::Did;
use idstore_domain::settings::DEFAULT_API_SERVER;

use crate::error::{Error, ErrorKind};
use crate::sql::{self, Fixed};

/// Whether an account has this DID (any version: `accounts.did`).
pub(crate) fn account_exists(conn: &mut SqliteConnection, did: &str) -> QueryResult<bool> {
    // Selecting only the key lets SQLite answer from the UNIQUE index alone.
    Fixed::<Bool>::new(
        "SELECT EXISTS (SELECT id FROM accounts WHERE did = ",
        did,
        ")",
    )
    .get_result(conn)
}

/// [`account_exists`], as the typed refusal the API gives.
pub(crate) fn require_account(conn: &mut SqliteConnection, did: &Did) -> Result<(), Error> {
    if account_exists(conn, did.as_str())? {
        Ok(())
    } else {
        Err(unknown_account(did))
    }
}

/// The refusal of an operation on a DID no account has.
pub(crate) fn unknown_account(did: &Did) -> Error {
    Error::new(
        ErrorKind::UnknownAccount,
        format!(
            "no account has DID {did}; nothing was changed (Store::accounts lists the known ones)"
        ),
    )
}

/// The pointer row (from the active-identity step on): `None` when the row is
/// missing, `Some(None)` when no identity is active.
pub(crate) fn pointer(conn: &mut SqliteConnection) -> QueryResult<Option<Option<String>>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Nullable<diesel::sql_types::Binary>)]
        value: Option<sql::Lossless>,
    }
    diesel::sql_query("SELECT activeDid AS value FROM active_identity WHERE id = 1")
        .get_result::<Row>(conn)
        .optional()
        .map(|row| row.map(|r| r.value.map(|l| l.0)))
}

/// The active identity wherever the file's schema keeps it: `active_identity` once
/// it exists, else the master row's `settings.activeDid` (any version). `''` reads
/// as none.
pub(crate) fn stored_active_did(conn: &mut SqliteConnection) -> QueryResult<Option<String>> {
    let raw = if sql::columns(conn, "active_identity")?
        .iter()
        .any(|c| c == "activeDid")
    {
        pointer(conn)?.flatten()
    } else {
        legacy_master_active_did(conn)?
    };
    Ok(raw.filter(|s| !s.is_empty()))
}

/// The master row's `settings.activeDid`, when the column exists (up to the
/// transition step).
pub(crate) fn legacy_master_active_did(conn: &mut SqliteConnection) -> QueryResult<Option<String>> {
    if !sql::columns(conn, "settings")?
        .iter()
        .any(|c| c == "activeDid")
    {
        return Ok(None);
    }
    sql::optional_text(conn, "SELECT activeDid AS value FROM settings WHERE id = 1")
}

/// Re-creates the master settings row (as the baseline seeds it) when it is missing.
/// At the transition step the row also carries the legacy `activeDid` column: it is
/// seeded with the current pointer, so the transition trigger keeps the pointer.
pub(crate) fn ensure_master_row(conn: &mut SqliteConnection) -> QueryResult<()> {
    let query = if sql::columns(conn, "settings")?
        .iter()
        .any(|c| c == "activeDid")
    {
        "INSERT OR IGNORE INTO settings (id, apiServer, activeDid)
         VALUES (1, ?, (SELECT activeDid FROM active_identity WHERE id = 1))"
    } else {
        "INSERT OR IGNORE INTO settings (id, apiServer) VALUES (1, ?)"
    };
    diesel::sql_query(query)
        .bind::<Text, _>(DEFAULT_API_SERVER)
        .execute(conn)
        .map(drop)
}

/// Upserts the pointer row; the DID (when given) must name an account.
pub(crate) fn write_pointer(conn: &mut SqliteConnection, did: Option<&Did>) -> Result<(), Error> {
    if let Some(did) = did {
        require_account(conn, did)?;
    }
    let value = did.map(Did::as_str);
    // An UPDATE, and an INSERT only when the row went missing: the same upsert, but
    // statements that stay prepared (Diesel re-prepares its ON CONFLICT form per call).
    let updated = Fixed::<()>::new(
        "UPDATE active_identity SET activeDid = ",
        value,
        " WHERE id = 1",
    )
    .execute(conn)?;
    if updated == 0 {
        Fixed::<()>::new(
            "INSERT INTO active_identity (id, activeDid) VALUES (1, ",
            value,
            ")",
        )
        .execute(conn)?;
    }
    Ok(())
}

/// The pointer's value when it names no account.
pub(crate) fn dangling_pointer(conn: &mut SqliteConnection) -> QueryResult<Option<String>> {
    sql::optional_text(
        conn,
        "SELECT p.activeDid AS value FROM active_identity AS p
           LEFT JOIN accounts AS a ON a.did = p.activeDid
          WHERE p.id = 1 AND p.activeDid IS NOT NULL AND a.id IS NULL",
    )
}

/// When the pointer names no account: keeps its value in `active_did_quarantine`,
/// then points at `replacement` (or clears it). Returns the value it moved.
pub(crate) fn clear_dangling_pointer(
    conn: &mut SqliteConnection,
    replacement: Option<&Did>,
) -> Result<Option<String>, Error> {
    let dangling = dangling_pointer(conn)?;
    if let Some(value) = &dangling {
        diesel::sql_query("INSERT INTO active_did_quarantine (activeDid, reason) VALUES (?, ?)")
            .bind::<Text, _>(value)
            .bind::<Text, _>("active_identity named no account; cleared")
            .execute(conn)?;
        write_pointer(conn, replacement)?;
    }
    Ok(dangling)
}

/// Parses a DID read from the database, naming it in the error when it is invalid.
pub(crate) fn parse_stored_did(
    what: &'static str,
    value: Option<String>,
) -> Result<Option<Did>, Error> {
    value
        .map(|v| {
            Did::try_from(v.clone()).map_err(|e| {
                Error::stored_value(
                    format_args!("{what} {}", idstore_domain::display::Shown::quoted(&v)),
                    e,
                )
            })
        })
        .transpose()
}

/// Restore decisions on accounts that a later `migrate` would undo once the
/// active-identity step is rolled back: the account kept aside by the restore is
/// still in the quarantine, so the re-run would keep the lowest id of the DID
/// again. Each as (decision row id, restored account's quarantine id). From the
/// active-identity step on (the kinds are the values its CHECK constraints allow).
pub(crate) fn restores_a_migrate_would_undo(
    conn: &mut SqliteConnection,
) -> QueryResult<Vec<(i32, i32)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Integer)]
        decision: i32,
        #[diesel(sql_type = Integer)]
        item: i32,
    }
    Ok(diesel::sql_query(
        "SELECT d.id AS decision, d.itemId AS item FROM quarantine_decisions AS d
          WHERE d.decision = 'restore' AND d.itemKind = 'account'
            AND EXISTS (SELECT 1 FROM accounts_quarantine AS q WHERE q.id = d.keptAsideId)
          ORDER BY d.id",
    )
    .load::<Row>(conn)?
    .into_iter()
    .map(|r| (r.decision, r.item))
    .collect())
}
