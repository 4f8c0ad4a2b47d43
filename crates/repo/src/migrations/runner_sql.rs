//! The SQL the runner itself issues, each statement pinned to the schema version it
//! runs on.
//!
//! The generated `table!` definitions describe only the latest schema; code that
//! runs while a file is still below it must not use them (Rails and Django warn
//! against the same with their models). Each module here holds the statements and
//! column lists of one version, and a later version that changes these tables adds
//! its own module instead of editing an older one.

/// The legacy app's schema, which the baseline adopts.
pub(super) mod baseline {
    use diesel::prelude::*;

    use crate::sql;

    /// The tables the legacy app creates (its `001_initial` and later additive
    /// migrations), before the later `hasBackedUpSeed` column, with its own migration
    /// bookkeeping and the tables idstore never touches. No rows.
    #[cfg(any(test, feature = "testing"))]
    pub const LEGACY_APP_SCHEMA: &str = include_str!("../../fixtures/legacy_app_schema.sql");

    /// The columns of the legacy `accounts` table, in order.
    pub const ACCOUNTS_COLUMNS: &[&str] = &[
        "id",
        "dateCreated",
        "derivationPath",
        "did",
        "identityEncrBase64",
        "mnemonicEncrBase64",
        "passkeyCredIdHex",
        "publicKeyHex",
    ];

    /// The columns of the legacy `settings` table, in order. The last was appended
    /// by a later app migration, so older files lack it.
    pub const SETTINGS_COLUMNS: &[&str] = &[
        "id",
        "accountDid",
        "activeDid",
        "apiServer",
        "filterFeedByNearby",
        "filterFeedByVisible",
        "finishedOnboarding",
        "firstName",
        "hideRegisterPromptOnNewContact",
        "isRegistered",
        "lastName",
        "lastAckedOfferToUserJwtId",
        "lastAckedOfferToUserProjectsJwtId",
        "lastNotifiedClaimId",
        "lastViewedClaimId",
        "notifyingNewActivityTime",
        "notifyingReminderMessage",
        "notifyingReminderTime",
        "partnerApiServer",
        "passkeyExpirationMinutes",
        "profileImageUrl",
        "searchBoxes",
        "showContactGivesInline",
        "showGeneralAdvanced",
        "showShortcutBvc",
        "vapid",
        "warnIfProdServer",
        "warnIfTestServer",
        "webPushServer",
        LATE_COLUMN,
    ];

    /// The column a later app build appended to `settings`.
    pub const LATE_COLUMN: &str = "hasBackedUpSeed";

    /// Adds [`LATE_COLUMN`] as the app's own migration does.
    pub const ADD_LATE_COLUMN: &str =
        "ALTER TABLE settings ADD COLUMN hasBackedUpSeed BOOLEAN DEFAULT FALSE";

    /// The app's shipped step that adds [`LATE_COLUMN`], by its name in the app's
    /// migration bookkeeping (see [`super::app_service`]).
    pub const APP_LATE_COLUMN_STEP: &str = "003_add_hasBackedUpSeed_to_settings";

    /// Whether the file's `settings` exists and lacks [`LATE_COLUMN`].
    pub fn lacks_late_column(conn: &mut SqliteConnection) -> QueryResult<bool> {
        let present = sql::columns(conn, "settings")?;
        Ok(!present.is_empty() && !present.iter().any(|c| c == LATE_COLUMN))
    }

    /// Why a legacy file cannot be adopted (empty when it can): every column it
    /// holds needs a place to go back to, or quarantine and the cleanup's rollback
    /// would lose it.
    pub fn shape_problems(conn: &mut SqliteConnection) -> QueryResult<Vec<String>> {
        let mut problems = Vec::new();
        for (table, expected) in [
            ("accounts", ACCOUNTS_COLUMNS),
            ("settings", SETTINGS_COLUMNS),
        ] {
            let present = sql::columns(conn, table)?;
            if present.is_empty() {
                continue; // the baseline creates it
            }
            let unknown: Vec<&str> = present
                .iter()
                .map(String::as_str)
                .filter(|c| !expected.contains(c))
                .collect();
            if !unknown.is_empty() {
                problems.push(format!(
                    "{table} has columns idstore does not know ({})",
                    unknown.join(", ")
                ));
                continue;
            }
            let wanted: Vec<&str> = expected
                .iter()
                .copied()
                .filter(|c| *c != LATE_COLUMN || present.iter().any(|p| p == c))
                .collect();
            if present
                .iter()
                .map(String::as_str)
                .ne(wanted.iter().copied())
            {
                let missing: Vec<&str> = wanted
                    .iter()
                    .copied()
                    .filter(|c| !present.iter().any(|p| p == c))
                    .collect();
                if missing.is_empty() {
                    problems.push(format!("{table} has its columns in an unexpected order"));
                } else {
                    problems.push(format!("{table} lacks columns {}", missing.join(", ")));
                }
            }
        }
        if sql::table_exists(conn, "active_identity")?
            && !sql::columns(conn, "active_identity")?
                .iter()
                .any(|c| c == "activeDid")
        {
            problems.push("the app's active_identity table has no activeDid column".to_owned());
        }
        Ok(problems)
    }
}

/// `20261206000001`: `active_identity`, the quarantine tables and the decision log.
pub(super) mod active_identity {
    use diesel::connection::DefaultLoadingMode;
    use diesel::prelude::*;
    use diesel::sql_types::{Binary, Integer};

    use crate::sql::Lossless;

    /// An account row the step moved to `accounts_quarantine` (text as reported).
    #[derive(QueryableByName)]
    pub struct QuarantinedAccount {
        #[diesel(sql_type = Integer)]
        pub id: i32,
        #[diesel(sql_type = Binary)]
        pub did: Lossless,
        #[diesel(sql_type = Integer, column_name = keptAccountId)]
        pub kept_account_id: i32,
        #[diesel(sql_type = Binary)]
        pub reason: Lossless,
    }

    /// Every row of `accounts_quarantine`, by id.
    pub fn quarantined_accounts(
        conn: &mut SqliteConnection,
    ) -> QueryResult<impl Iterator<Item = QueryResult<QuarantinedAccount>> + '_> {
        diesel::sql_query(
            "SELECT id, did, keptAccountId, reason FROM accounts_quarantine ORDER BY id",
        )
        .load_iter::<_, DefaultLoadingMode>(conn)
    }

    /// A pointer value the step kept in `active_did_quarantine` (text as reported).
    #[derive(QueryableByName)]
    pub struct QuarantinedPointer {
        #[diesel(sql_type = Binary, column_name = activeDid)]
        pub value: Lossless,
        #[diesel(sql_type = Binary)]
        pub reason: Lossless,
    }

    /// Every row of `active_did_quarantine`, by id.
    pub fn quarantined_pointers(
        conn: &mut SqliteConnection,
    ) -> QueryResult<impl Iterator<Item = QueryResult<QuarantinedPointer>> + '_> {
        diesel::sql_query("SELECT activeDid, reason FROM active_did_quarantine ORDER BY id")
            .load_iter::<_, DefaultLoadingMode>(conn)
    }

    /// Drops one decision-log row (a rollback told to forget it).
    pub fn forget_decision(conn: &mut SqliteConnection, id: i32) -> QueryResult<()> {
        diesel::sql_query("DELETE FROM quarantine_decisions WHERE id = ?")
            .bind::<Integer, _>(id)
            .execute(conn)
            .map(drop)
    }
}

/// `20261206000002`: `settings.activeDid` dropped, its values archived.
pub(super) mod cleanup {
    use diesel::connection::DefaultLoadingMode;
    use diesel::prelude::*;
    use diesel::sql_types::{Binary, Integer};

    /// A `settings.activeDid` value the step archived (text as reported).
    #[derive(QueryableByName)]
    pub struct Archived {
        #[diesel(sql_type = Integer, column_name = settingsId)]
        pub settings_id: i32,
        #[diesel(sql_type = Binary, column_name = activeDid)]
        pub value: crate::sql::Lossless,
    }

    /// Every row of `settings_active_did_archive`, by settings row.
    pub fn archived(
        conn: &mut SqliteConnection,
    ) -> QueryResult<impl Iterator<Item = QueryResult<Archived>> + '_> {
        diesel::sql_query(
            "SELECT settingsId, activeDid FROM settings_active_did_archive ORDER BY settingsId",
        )
        .load_iter::<_, DefaultLoadingMode>(conn)
    }

    /// Indexes and triggers on `settings` that idstore's steps do not create: the
    /// step's down.sql rebuilds the table, which would drop them. (Their definitions
    /// are checked before they are recreated.)
    pub fn foreign_settings_objects(
        conn: &mut SqliteConnection,
    ) -> QueryResult<Vec<crate::sql::SchemaObject>> {
        diesel::sql_query(
            "SELECT type AS kind, name, tbl_name, sql FROM sqlite_master
              WHERE tbl_name = 'settings' AND type IN ('index', 'trigger') AND sql IS NOT NULL
                AND name NOT IN ('idx_settings_accountDid',
                                 'settings_active_did_sync_on_insert',
                                 'settings_active_did_sync_on_update')
              ORDER BY type, name",
        )
        .load(conn)
    }
}

/// The app's own migration service: an ordered list of `{ name, sql }` steps, each
/// recorded by name in its table `migrations (name, applied_at)` once applied, and
/// run when its name is not there. idstore records there what it did on the app's
/// behalf, so that the service neither runs a step again (its 003 would fail with
/// "duplicate column name") nor misses that one of idstore's exported steps is in.
/// A table of another shape is not the app's and is left alone.
pub(super) mod app_service {
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    use crate::sql;

    /// The app's bookkeeping table.
    pub const TABLE: &str = "migrations";

    /// The app's bookkeeping's columns.
    const COLUMNS: [&str; 2] = ["name", "applied_at"];

    /// Whether the file has the app's bookkeeping, in exactly its shape.
    fn present(conn: &mut SqliteConnection) -> QueryResult<bool> {
        Ok(sql::columns(conn, TABLE)? == COLUMNS)
    }

    /// Why the app's bookkeeping cannot record idstore's steps, when it cannot: the
    /// file has no such table, or one of another shape (its columns, as found).
    pub fn unrecognized(conn: &mut SqliteConnection) -> QueryResult<Option<String>> {
        let columns = sql::columns(conn, TABLE)?;
        Ok(if columns == COLUMNS {
            None
        } else if columns.is_empty() {
            Some(format!("the file has no {TABLE} table"))
        } else {
            Some(format!(
                "its {TABLE} table has the columns ({}), not (name, applied_at)",
                columns.join(", ")
            ))
        })
    }

    /// Records `name` as applied (once); returns whether a row was added.
    pub fn record(conn: &mut SqliteConnection, name: &str) -> QueryResult<bool> {
        if !present(conn)? {
            return Ok(false);
        }
        let added = diesel::sql_query(
            "INSERT INTO migrations (name, applied_at)
             SELECT ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
              WHERE NOT EXISTS (SELECT 1 FROM migrations WHERE name = ?)",
        )
        .bind::<Text, _>(name)
        .bind::<Text, _>(name)
        .execute(conn)?;
        Ok(added > 0)
    }

    /// Forgets `name`, as the app's service does when it runs a step's down SQL.
    pub fn forget(conn: &mut SqliteConnection, name: &str) -> QueryResult<()> {
        if present(conn)? {
            diesel::sql_query("DELETE FROM migrations WHERE name = ?")
                .bind::<Text, _>(name)
                .execute(conn)?;
        }
        Ok(())
    }
}
