//! The migration chain against real temp-file databases: each step and the whole
//! chain up → down → up, every legacy case, foreign keys on and off, adoption,
//! injected validation failure, and the refusals.

use crate::common::*;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::MigrationHarness;
use idstore_repo::health::ProblemKind;
use idstore_repo::migrations::MigrationWarning;
use idstore_repo::migrations::{RollbackOptions, RollbackTarget};
use idstore_repo::{Database, ErrorKind, MigrateOptions};
use tempfile::TempDir;

fn to(version: &str) -> MigrateOptions<'_> {
    MigrateOptions::new().to(version)
}

fn all() -> MigrateOptions<'static> {
    MigrateOptions::new()
}

fn back_to_baseline() -> RollbackOptions {
    RollbackOptions::new()
}

/// Every legacy case in one file: a valid pointer to an account that has a duplicate
/// with different key material, an exact duplicate, override rows (one with a stray
/// activeDid), and extra NULL-accountDid rows.
fn rich_legacy(dir: &TempDir, master_active: &str) -> std::path::PathBuf {
    let data = format!(
        "{}{}{}{}
         INSERT INTO accounts (id, dateCreated, derivationPath, did, identityEncrBase64, mnemonicEncrBase64, passkeyCredIdHex, publicKeyHex)
           SELECT 6, dateCreated, derivationPath, did, identityEncrBase64, mnemonicEncrBase64, passkeyCredIdHex, publicKeyHex FROM accounts WHERE id = 2;
         INSERT INTO settings (id, accountDid, activeDid, apiServer, firstName, searchBoxes, isRegistered, passkeyExpirationMinutes)
           VALUES (1, NULL, {master_active}, 'https://api.endorser.ch', 'Master', '[{{\"name\":\"home\",\"bbox\":{{\"eastLong\":1.5,\"maxLat\":2,\"minLat\":1,\"westLong\":0.5}}}}]', 1, 15);
         INSERT INTO settings (id, accountDid, activeDid, firstName, isRegistered) VALUES (2, '{DID_A}', NULL, 'Override A', 0);
         INSERT INTO settings (id, accountDid, activeDid, lastName) VALUES (3, '{DID_B}', '{DID_B}', 'B''s');
         INSERT INTO settings (id, accountDid, apiServer) VALUES (4, NULL, 'https://stray.example');
         INSERT INTO settings (id, accountDid, activeDid) VALUES (7, NULL, '');
         DELETE FROM settings WHERE id = 7;
         INSERT INTO settings (id, accountDid, activeDid) VALUES (5, NULL, '');",
        account_sql(1, DID_A, "a1"),
        account_sql(2, DID_B, "b1"),
        account_sql(3, DID_A, "a2-different"),
        account_sql(4, DID_C, "c1"),
    );
    legacy_file(dir.path(), "legacy.sqlite", true, &data)
}

fn open_err(path: &std::path::Path) -> idstore_repo::Error {
    match open(path) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e,
    }
}

fn active_of(conn: &mut impl Raw) -> Option<String> {
    text(
        conn,
        "SELECT activeDid AS value FROM active_identity WHERE id = 1",
    )
}

#[test]
fn new_database_is_created_private_configured_and_fully_migrated() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("new.sqlite");
    let mut conn = open(&path).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a new database is owner-only");
    }
    assert_eq!(
        text(
            &mut conn,
            "SELECT CAST(foreign_keys AS TEXT) AS value FROM pragma_foreign_keys"
        ),
        Some("1".into())
    );
    // Opening writes nothing, and the file keeps its own journal mode; every commit
    // is durable (`synchronous` EXTRA, 3).
    let journal = |conn: &mut Database| {
        (
            text(
                conn,
                "SELECT journal_mode AS value FROM pragma_journal_mode",
            ),
            text(
                conn,
                "SELECT CAST(synchronous AS TEXT) AS value FROM pragma_synchronous",
            ),
        )
    };
    assert_eq!(
        journal(&mut conn),
        (Some("delete".into()), Some("3".into()))
    );

    let report = migrate(&mut conn, all()).unwrap();
    assert_eq!(
        journal(&mut conn),
        (Some("delete".into()), Some("3".into())),
        "migrating changes neither"
    );
    assert_eq!(
        report.applied,
        vec![BASELINE_VERSION, ACTIVE_IDENTITY_VERSION, CLEANUP_VERSION]
    );
    assert!(!report.adopted_legacy);
    assert_eq!(report.active_did, None);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let st = status(&mut conn).unwrap();
    assert!(st.pending.is_empty() && st.unknown.is_empty() && !st.legacy);
    assert_eq!(
        text(
            &mut conn,
            "SELECT apiServer AS value FROM settings WHERE id = 1"
        ),
        Some("https://api.endorser.ch".into())
    );
    assert!(!columns(&mut conn, "settings").contains(&"activeDid".to_string()));

    let again = migrate(&mut conn, all()).unwrap();
    assert!(again.applied.is_empty(), "a second run has nothing to do");
}

#[test]
fn each_migration_is_reversed_exactly_by_its_down() {
    for step in [ACTIVE_IDENTITY_VERSION, CLEANUP_VERSION] {
        let dir = TempDir::new().unwrap();
        let path = rich_legacy(&dir, &format!("'{ORPHAN}'"));
        let mut conn = open(&path).unwrap();
        migrate(&mut conn, to(BASELINE_VERSION)).unwrap();
        let at_baseline = dump(&mut conn);
        let objects_at_baseline = schema_objects(&mut conn);
        let whole_at_baseline = whole_dump(&mut conn);
        let settings_cols = columns(&mut conn, "settings");

        // Up to the step, then back down one migration at a time.
        migrate(&mut conn, to(step)).unwrap();
        assert_ne!(dump(&mut conn), at_baseline, "{step} changed something");
        let steps = match step {
            CLEANUP_VERSION => 2,
            _ => 1,
        };
        let back = rollback(
            &mut conn,
            &RollbackOptions::new().target(RollbackTarget::Steps(steps)),
        )
        .unwrap();
        assert_eq!(back.reverted.len(), steps);
        assert_eq!(
            dump(&mut conn),
            at_baseline,
            "{step}: up then down restores every row"
        );
        assert_eq!(
            schema_objects(&mut conn),
            objects_at_baseline,
            "{step}: same tables, indexes, triggers"
        );
        assert_eq!(
            whole_dump(&mut conn),
            whole_at_baseline,
            "{step}: the same schema text, object by object"
        );
        assert_eq!(
            columns(&mut conn, "settings"),
            settings_cols,
            "{step}: settings column order"
        );
    }
}

#[test]
fn cleanup_down_alone_restores_the_transition_state() {
    let dir = TempDir::new().unwrap();
    let path = rich_legacy(&dir, "''");
    let mut conn = open(&path).unwrap();
    migrate(&mut conn, to(ACTIVE_IDENTITY_VERSION)).unwrap();
    let at_v2 = dump(&mut conn);
    let objects = schema_objects(&mut conn);
    migrate(&mut conn, all()).unwrap();
    rollback(
        &mut conn,
        &RollbackOptions::new().target(RollbackTarget::Version(ACTIVE_IDENTITY_VERSION.into())),
    )
    .unwrap();
    assert_eq!(dump(&mut conn), at_v2);
    assert_eq!(schema_objects(&mut conn), objects);
}

#[test]
fn whole_chain_up_down_up_is_row_for_row_identical() {
    for master_active in [
        format!("'{DID_A}'"),
        "''".to_string(),
        "NULL".to_string(),
        format!("'{ORPHAN}'"),
    ] {
        let dir = TempDir::new().unwrap();
        let path = rich_legacy(&dir, &master_active);
        let (original, original_whole) = {
            let mut c = raw(&path);
            (dump(&mut c), whole_dump(&mut c))
        };
        let mut conn = open(&path).unwrap();
        let first = migrate(&mut conn, all()).unwrap();
        assert!(first.adopted_legacy);
        let up1 = dump(&mut conn);
        let back = rollback(&mut conn, &back_to_baseline()).unwrap();
        assert_eq!(
            back.reverted,
            vec![CLEANUP_VERSION, ACTIVE_IDENTITY_VERSION]
        );
        assert_eq!(
            dump(&mut conn),
            original,
            "{master_active}: down restores the legacy content byte for byte"
        );
        assert_eq!(
            whole_dump(&mut conn),
            original_whole,
            "{master_active}: and the file's own schema text"
        );
        let second = migrate(&mut conn, all()).unwrap();
        assert_eq!(
            second.applied,
            vec![ACTIVE_IDENTITY_VERSION, CLEANUP_VERSION]
        );
        assert_eq!(
            dump(&mut conn),
            up1,
            "{master_active}: up again gives the same rows"
        );
        assert_eq!(first.active_did, second.active_did);
    }
}

#[test]
fn duplicate_accounts_are_quarantined_with_every_column_and_reported() {
    let dir = TempDir::new().unwrap();
    let path = rich_legacy(&dir, &format!("'{DID_A}'"));
    let before: Vec<String> = {
        let mut c = raw(&path);
        dump(&mut c)["accounts"].clone()
    };
    let mut conn = open(&path).unwrap();
    let report = migrate(&mut conn, all()).unwrap();

    let moved: Vec<_> = report
        .warnings
        .iter()
        .filter_map(|w| match w {
            MigrationWarning::QuarantinedAccount {
                account_id,
                did,
                kept_account_id,
                reason,
            } => Some((*account_id, did.clone(), *kept_account_id, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(moved.len(), 2);
    assert_eq!((moved[0].0, moved[0].1.as_str(), moved[0].2), (3, DID_A, 1));
    assert!(
        moved[0].3.contains("different key material"),
        "{}",
        moved[0].3
    );
    assert_eq!((moved[1].0, moved[1].1.as_str(), moved[1].2), (6, DID_B, 2));
    assert!(moved[1].3.contains("same key material"), "{}", moved[1].3);

    // Kept plus quarantined rows are exactly the original rows, every column.
    let cols = "json_array(quote(id), quote(dateCreated), quote(derivationPath), quote(did), \
                quote(identityEncrBase64), quote(mnemonicEncrBase64), quote(passkeyCredIdHex), \
                quote(publicKeyHex))";
    let mut together = rows(
        &mut conn,
        &format!(
            "SELECT {cols} AS value FROM accounts UNION ALL SELECT {cols} FROM accounts_quarantine"
        ),
    );
    together.sort();
    assert_eq!(together, before);
    let err = diesel::sql_query(account_sql(99, DID_A, "x"))
        .execute(conn.raw())
        .unwrap_err();
    assert!(err.to_string().contains("UNIQUE"), "{err}");
}

#[test]
fn pointer_cases_are_seeded_as_specified() {
    let cases: [(String, Option<&str>, bool); 4] = [
        (format!("'{DID_B}'"), Some(DID_B), false),
        ("''".into(), None, false),
        ("NULL".into(), None, false),
        (format!("'{ORPHAN}'"), None, true),
    ];
    for (value, expected, quarantined) in cases {
        let dir = TempDir::new().unwrap();
        let path = rich_legacy(&dir, &value);
        let mut conn = open(&path).unwrap();
        let report = migrate(&mut conn, all()).unwrap();
        assert_eq!(report.active_did.as_deref(), expected, "{value}");
        assert_eq!(active_of(&mut conn).as_deref(), expected, "{value}");
        let cleared = report
            .warnings
            .iter()
            .any(|w| matches!(w, MigrationWarning::ClearedPointer { value: v, .. } if v == ORPHAN));
        assert_eq!(cleared, quarantined, "{value}: {:?}", report.warnings);
        let kept = text(
            &mut conn,
            "SELECT activeDid AS value FROM active_did_quarantine",
        );
        assert_eq!(kept.as_deref(), quarantined.then_some(ORPHAN), "{value}");
        assert_ne!(
            text(
                &mut conn,
                "SELECT coalesce(activeDid, 'null') AS value FROM active_identity"
            ),
            Some(String::new()),
            "'' is never stored"
        );
    }
}

#[test]
fn a_file_without_accounts_round_trips_its_autoincrement_counters() {
    // Found by the property test: an INSERT … SELECT of no rows still writes the
    // table's sqlite_sequence row, so the rollback must restore the counter itself.
    let dir = TempDir::new().unwrap();
    let path = legacy_file(
        dir.path(),
        "empty.sqlite",
        true,
        "INSERT INTO settings (id, apiServer) VALUES (1, 'x');",
    );
    let mut conn = open(&path).unwrap();
    migrate(&mut conn, to(BASELINE_VERSION)).unwrap();
    let before = dump(&mut conn);
    assert!(
        !before["sqlite_sequence"]
            .iter()
            .any(|r| r.contains("'accounts'"))
    );
    migrate(&mut conn, all()).unwrap();
    rollback(&mut conn, &back_to_baseline()).unwrap();
    assert_eq!(dump(&mut conn), before);
}

#[test]
fn missing_master_row_is_seeded_and_reported_as_no_active_identity() {
    let dir = TempDir::new().unwrap();
    let data = format!(
        "{} INSERT INTO settings (id, accountDid, firstName) VALUES (2, '{DID_A}', 'A');",
        account_sql(1, DID_A, "a")
    );
    let path = legacy_file(dir.path(), "nomaster.sqlite", false, &data);
    let mut conn = open(&path).unwrap();
    let report = migrate(&mut conn, all()).unwrap();
    assert_eq!(report.active_did, None);
    assert_eq!(
        text(
            &mut conn,
            "SELECT apiServer AS value FROM settings WHERE id = 1"
        ),
        Some("https://api.endorser.ch".into())
    );
    assert_eq!(
        text(
            &mut conn,
            "SELECT firstName AS value FROM settings WHERE id = 2"
        ),
        Some("A".into())
    );
    assert!(
        report
            .warnings
            .contains(&MigrationWarning::AddedLegacyColumn {
                table: "settings".into(),
                column: "hasBackedUpSeed".into()
            })
    );
}

#[test]
fn foreign_keys_on_or_off_give_the_same_result() {
    let mut results = Vec::new();
    for fk in ["ON", "OFF"] {
        let dir = TempDir::new().unwrap();
        let path = rich_legacy(&dir, &format!("'{ORPHAN}'"));
        // As the diesel CLI runs them: no idstore runner, just the harness.
        let mut conn = raw(&path);
        exec(&mut conn, &format!("PRAGMA foreign_keys = {fk};"));
        conn.raw().run_pending_migrations(MIGRATIONS).unwrap();
        let up = dump(&mut conn);
        for step in MIGRATIONS_LIST().iter().skip(1).rev() {
            conn.revert_migration(&**step).unwrap();
        }
        let down = dump(&mut conn);
        results.push((up, down));
    }
    assert_eq!(results[0].0, results[1].0, "up");
    assert_eq!(results[0].1, results[1].1, "down");
}

#[allow(non_snake_case)]
fn MIGRATIONS_LIST() -> Vec<Box<dyn diesel::migration::Migration<diesel::sqlite::Sqlite>>> {
    let mut list =
        diesel::migration::MigrationSource::<diesel::sqlite::Sqlite>::migrations(&MIGRATIONS)
            .unwrap();
    list.sort_by_key(|m| m.name().version().to_string());
    list
}

#[test]
fn adopting_a_legacy_file_leaves_other_tables_untouched() {
    let dir = TempDir::new().unwrap();
    let data = format!(
        "{} INSERT INTO settings (id, activeDid, apiServer) VALUES (1, '{DID_A}', 'https://api.endorser.ch');",
        account_sql(1, DID_A, "a")
    );
    let path = legacy_file(dir.path(), "app.sqlite", false, &data);
    let original = {
        let mut c = raw(&path);
        dump(&mut c)
    };
    let mut conn = open(&path).unwrap();
    let st = status(&mut conn).unwrap();
    assert!(st.legacy && st.applied.is_empty() && st.pending.len() == 3);
    assert_eq!(st.active_did.as_deref(), Some(DID_A));

    let report = migrate(&mut conn, all()).unwrap();
    assert!(report.adopted_legacy);
    assert_eq!(
        report.applied,
        vec![BASELINE_VERSION, ACTIVE_IDENTITY_VERSION, CLEANUP_VERSION]
    );
    assert_eq!(report.active_did.as_deref(), Some(DID_A));
    assert_eq!(report.values_migrated, 1);
    let after = dump(&mut conn);
    for table in ["contacts", "secret", "logs", "temp"] {
        assert_eq!(after[table], original[table], "{table} untouched");
    }
    // The app's bookkeeping gains its 003, whose column idstore added, and the
    // names of idstore's steps but the baseline, as the app's service records them.
    let added: Vec<&String> = after["migrations"]
        .iter()
        .filter(|r| !original["migrations"].contains(r))
        .collect();
    assert_eq!(added.len(), 3, "{added:?}");
    for name in [
        "003_add_hasBackedUpSeed_to_settings",
        "idstore_2026-12-06-000001_active_identity",
        "idstore_2026-12-06-000002_drop_settings_active_did",
    ] {
        assert!(added.iter().any(|r| r.contains(name)), "{name}: {added:?}");
    }
    assert!(
        original["migrations"]
            .iter()
            .all(|r| after["migrations"].contains(r))
    );
    let st = status(&mut conn).unwrap();
    assert!(!st.legacy && st.pending.is_empty());
}

/// The app's own active_identity, as it shipped it: first `ON DELETE SET NULL`,
/// later rebuilt with `ON DELETE RESTRICT`, with accounts.did made unique.
fn app_active_identity_file(
    dir: &TempDir,
    on_delete: &str,
    app_pointer: &str,
    settings_pointer: &str,
) -> std::path::PathBuf {
    let data = format!(
        "{}{}
         CREATE UNIQUE INDEX idx_accounts_did_app_unique ON accounts(did);
         INSERT INTO settings (id, activeDid, apiServer) VALUES (1, {settings_pointer}, 'https://api.endorser.ch');
         CREATE TABLE active_identity (
             id INTEGER PRIMARY KEY CHECK (id = 1),
             activeDid TEXT,
             lastUpdated TEXT NOT NULL DEFAULT (datetime('now')),
             FOREIGN KEY (activeDid) REFERENCES accounts(did) ON DELETE {on_delete});
         CREATE INDEX idx_active_identity_activeDid ON active_identity(activeDid);
         INSERT INTO active_identity (id, activeDid, lastUpdated) VALUES (1, {app_pointer}, '2025-06-01 10:00:00');",
        account_sql(1, DID_A, "a"),
        account_sql(2, DID_B, "b"),
    );
    legacy_file(dir.path(), "app-ai.sqlite", true, &data)
}

#[test]
fn adopting_the_apps_own_active_identity_keeps_its_pointer_and_gives_idstores_schema() {
    let fresh_objects = {
        let dir = TempDir::new().unwrap();
        let mut c = open(&dir.path().join("fresh.sqlite")).unwrap();
        migrate(&mut c, all()).unwrap();
        (
            text(
                &mut c,
                "SELECT sql AS value FROM sqlite_master WHERE name = 'active_identity'",
            ),
            columns(&mut c, "active_identity"),
        )
    };
    for on_delete in ["SET NULL", "RESTRICT"] {
        for settings_pointer in ["NULL".to_string(), format!("'{DID_A}'")] {
            let dir = TempDir::new().unwrap();
            let path =
                app_active_identity_file(&dir, on_delete, &format!("'{DID_B}'"), &settings_pointer);
            let mut conn = open(&path).unwrap();
            let st = status(&mut conn).unwrap();
            assert!(st.legacy && st.app_active_identity);
            let report = migrate(&mut conn, all()).unwrap();
            assert_eq!(
                report.active_did.as_deref(),
                Some(DID_B),
                "{on_delete}/{settings_pointer}: the app's pointer wins"
            );
            assert!(
                report
                    .warnings
                    .contains(&MigrationWarning::AdoptedAppActiveIdentity {
                        value: Some(DID_B.into()),
                        used: true
                    })
            );
            assert_eq!(
                text(
                    &mut conn,
                    "SELECT lastUpdated AS value FROM active_identity"
                ),
                Some("2025-06-01 10:00:00".into()),
                "its lastUpdated is kept"
            );
            let got = (
                text(
                    &mut conn,
                    "SELECT sql AS value FROM sqlite_master WHERE name = 'active_identity'",
                ),
                columns(&mut conn, "active_identity"),
            );
            assert_eq!(got, fresh_objects, "exactly idstore's active_identity");
            let err = diesel::sql_query(format!("DELETE FROM accounts WHERE did = '{DID_B}'"))
                .execute(conn.raw())
                .unwrap_err();
            assert!(
                err.to_string().contains("cannot be deleted"),
                "guarded now: {err}"
            );
        }
    }
}

#[test]
fn an_app_pointer_naming_no_account_is_quarantined_and_settings_decide() {
    let dir = TempDir::new().unwrap();
    let path = app_active_identity_file(
        &dir,
        "SET NULL",
        &format!("'{ORPHAN}'"),
        &format!("'{DID_A}'"),
    );
    // Foreign keys were off in the app when the orphan was written.
    let mut conn = open(&path).unwrap();
    let report = migrate(&mut conn, all()).unwrap();
    assert_eq!(report.active_did.as_deref(), Some(DID_A));
    assert!(
        report
            .warnings
            .contains(&MigrationWarning::AdoptedAppActiveIdentity {
                value: Some(ORPHAN.into()),
                used: false
            })
    );
    assert_eq!(
        text(
            &mut conn,
            "SELECT activeDid AS value FROM active_did_quarantine"
        ),
        Some(ORPHAN.into())
    );
}

/// The baseline changes nothing of the app's own `active_identity`: a file may stop
/// there (as the app's service may stop after any step) and be adopted later.
#[test]
fn a_file_with_the_apps_active_identity_can_stop_at_the_baseline_and_be_adopted_later() {
    let dir = TempDir::new().unwrap();
    let path = app_active_identity_file(&dir, "RESTRICT", &format!("'{DID_B}'"), "NULL");
    let mut conn = open(&path).unwrap();
    migrate(&mut conn, to(BASELINE_VERSION)).unwrap();
    let schema = |conn: &mut idstore_repo::Database| {
        text(
            conn,
            "SELECT group_concat(sql, ';') AS value FROM (SELECT sql FROM sqlite_master WHERE tbl_name = 'active_identity' ORDER BY name)",
        )
    };
    assert!(
        schema(&mut conn).unwrap().contains("ON DELETE RESTRICT"),
        "the app's table is untouched"
    );
    let report = migrate(&mut conn, all()).unwrap();
    assert_eq!(report.active_did.as_deref(), Some(DID_B));
    assert!(!schema(&mut conn).unwrap().contains("ON DELETE RESTRICT"));
}

#[test]
fn an_injected_validation_failure_rolls_everything_back() {
    let dir = TempDir::new().unwrap();
    let path = rich_legacy(&dir, &format!("'{ORPHAN}'"));
    let original = dump(&mut raw(&path));
    let mut conn = open(&path).unwrap();
    let fail = |_: &mut SqliteConnection| Err("injected failure".into());
    let err = migrate(&mut conn, MigrateOptions::new().extra_check(&fail)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValidationFailed, "{err}");
    let report = err.report().expect("the rolled-back run's report");
    assert_eq!(report.errors, vec!["injected failure".to_string()]);
    assert_eq!(
        report.applied.len(),
        3,
        "the report says what was attempted"
    );
    assert_eq!(dump(&mut conn), original, "nothing changed");
    let st = status(&mut conn).unwrap();
    assert!(
        st.legacy && st.applied.is_empty(),
        "still a legacy file, no bookkeeping"
    );
}

#[test]
fn the_full_structure_check_validates_too() {
    let dir = TempDir::new().unwrap();
    let path = rich_legacy(&dir, &format!("'{DID_A}'"));
    let mut conn = open(&path).unwrap();
    let options = MigrateOptions::new().integrity(idstore_repo::migrations::Integrity::Full);
    let report = migrate(&mut conn, options.clone()).unwrap();
    assert_eq!(report.applied.len(), 3);
    assert_eq!(report.active_did.as_deref(), Some(DID_A));
    // The other validations still run: an injected failure still rolls back.
    rollback(&mut conn, &back_to_baseline()).unwrap();
    let before = dump(&mut conn);
    let fail = |_: &mut SqliteConnection| Err("injected".into());
    let options = options.extra_check(&fail);
    assert_eq!(
        migrate(&mut conn, options).unwrap_err().kind(),
        ErrorKind::ValidationFailed
    );
    assert_eq!(dump(&mut conn), before);
}

#[test]
fn a_dry_run_reports_everything_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let path = rich_legacy(&dir, &format!("'{DID_A}'"));
    let original = dump(&mut raw(&path));
    let mut conn = open(&path).unwrap();
    let dry = migrate(&mut conn, MigrateOptions::new().dry_run(true)).unwrap();
    assert!(dry.dry_run);
    assert_eq!(dump(&mut conn), original);
    let real = migrate(&mut conn, all()).unwrap();
    assert_eq!(
        (dry.applied, dry.warnings, dry.active_did),
        (real.applied, real.warnings, real.active_did)
    );
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, b"these are my notes, not a database\n").unwrap();
    let err = open_err(&path);
    assert_eq!(err.kind(), ErrorKind::NotADatabase, "{err}");
    assert!(err.to_string().contains("not an SQLite database"));
    assert_eq!(bytes(&path), b"these are my notes, not a database\n");
    assert!(!dir.path().join("notes.txt-wal").exists());

    // An empty file is no database, and no place to create one either: something
    // else made it.
    let empty = dir.path().join("empty.sqlite");
    std::fs::write(&empty, b"").unwrap();
    for options in [
        idstore_repo::OpenOptions::new(),
        idstore_repo::OpenOptions::new().create(false),
        idstore_repo::OpenOptions::new().read_only(true),
    ] {
        let err = options.open(&empty).unwrap_err();
        assert!(
            err.kind() == ErrorKind::NotADatabase && err.to_string().contains("empty file"),
            "{err}"
        );
    }
    assert_eq!(bytes(&empty), b"");

    assert_eq!(open_err(dir.path()).kind(), ErrorKind::IsDirectory);
    let nested = dir.path().join("missing/dir/db.sqlite");
    assert_eq!(open_err(&nested).kind(), ErrorKind::MissingFolder);
    assert!(!dir.path().join("missing").exists());
}

#[test]
fn a_database_from_a_newer_idstore_is_refused_untouched() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("newer.sqlite");
    {
        let mut conn = open(&path).unwrap();
        migrate(&mut conn, all()).unwrap();
        exec(
            &mut conn,
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('29990101000000');",
        );
    }
    let before = bytes(&path);
    let mut conn = open(&path).unwrap();
    let st = status(&mut conn).unwrap();
    assert_eq!(st.unknown, vec!["29990101000000".to_string()]);
    let err = migrate(&mut conn, all()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NewerDatabase, "{err}");
    assert!(err.to_string().contains("29990101000000"), "{err}");
    assert!(err.to_string().contains("newer idstore"));
    let err = rollback(&mut conn, &back_to_baseline()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NewerDatabase);
    drop(conn);
    assert_eq!(bytes(&path), before);
}

#[test]
fn rollback_stops_above_the_baseline_unless_asked_and_the_baseline_guards_user_data() {
    let dir = TempDir::new().unwrap();
    let path = rich_legacy(&dir, "NULL");
    let mut conn = open(&path).unwrap();
    migrate(&mut conn, all()).unwrap();
    let everything = RollbackOptions::new().target(RollbackTarget::Everything);
    assert_eq!(
        rollback(&mut conn, &everything).unwrap_err().kind(),
        ErrorKind::BaselineNotIncluded
    );
    let migrated = dump(&mut conn);
    let with_flag = everything.include_baseline(true);
    let err = rollback(&mut conn, &with_flag).unwrap_err();
    let chain: Vec<String> =
        std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
            .map(ToString::to_string)
            .collect();
    assert_eq!(err.kind(), ErrorKind::HoldsUserData, "{chain:?}");
    assert_eq!(err.token(), Some("holds_user_data"));
    assert!(
        chain[0].contains(
            "idstore:holds_user_data: reverting the baseline drops accounts and settings"
        ),
        "{chain:?}"
    );
    assert_eq!(
        dump(&mut conn),
        migrated,
        "the refused revert changed nothing"
    );

    // A database holding nothing but the seeded master row can be reverted entirely.
    let empty = dir.path().join("empty.sqlite");
    let mut conn = open(&empty).unwrap();
    migrate(&mut conn, all()).unwrap();
    let report = rollback(&mut conn, &with_flag).unwrap();
    assert_eq!(
        report.reverted,
        vec![CLEANUP_VERSION, ACTIVE_IDENTITY_VERSION, BASELINE_VERSION]
    );
    assert!(!dump(&mut conn).contains_key("accounts"));
}

#[test]
fn during_the_transition_legacy_writes_and_the_pointer_stay_in_step() {
    let dir = TempDir::new().unwrap();
    let path = rich_legacy(&dir, &format!("'{DID_A}'"));
    let mut conn = open(&path).unwrap();
    migrate(&mut conn, to(ACTIVE_IDENTITY_VERSION)).unwrap();
    let master = |c: &mut Database| text(c, "SELECT activeDid AS value FROM settings WHERE id = 1");
    let stamp = |c: &mut Database| text(c, "SELECT lastUpdated AS value FROM active_identity");
    exec(
        &mut conn,
        "UPDATE active_identity SET lastUpdated = '2000-01-01 00:00:00.000'",
    );

    // An older app build switches identity through settings.
    exec(
        &mut conn,
        &format!("UPDATE settings SET activeDid = '{DID_B}' WHERE id = 1"),
    );
    assert_eq!(active_of(&mut conn).as_deref(), Some(DID_B));
    assert_ne!(
        stamp(&mut conn).as_deref(),
        Some("2000-01-01 00:00:00.000"),
        "lastUpdated follows"
    );

    // A legacy write naming no account leaves the pointer, is kept, and is undone.
    exec(
        &mut conn,
        &format!("UPDATE settings SET activeDid = '{ORPHAN}' WHERE id = 1"),
    );
    assert_eq!(active_of(&mut conn).as_deref(), Some(DID_B));
    assert_eq!(master(&mut conn).as_deref(), Some(DID_B));
    assert_eq!(
        text(
            &mut conn,
            "SELECT activeDid AS value FROM active_did_quarantine"
        ),
        Some(ORPHAN.into())
    );

    // Clearing through settings clears the pointer.
    exec(&mut conn, "UPDATE settings SET activeDid = '' WHERE id = 1");
    assert_eq!(active_of(&mut conn), None);

    // The new API's writes reach the legacy column.
    exec(
        &mut conn,
        &format!("UPDATE active_identity SET activeDid = '{DID_C}' WHERE id = 1"),
    );
    assert_eq!(master(&mut conn).as_deref(), Some(DID_C));
    // A replaced pointer row does too.
    exec(
        &mut conn,
        &format!("INSERT OR REPLACE INTO active_identity (id, activeDid) VALUES (1, '{DID_A}');"),
    );
    assert_eq!(master(&mut conn).as_deref(), Some(DID_A));
    // Override rows never move the pointer.
    exec(
        &mut conn,
        &format!("UPDATE settings SET activeDid = '{DID_B}' WHERE id = 2"),
    );
    assert_eq!(active_of(&mut conn).as_deref(), Some(DID_A));
}

#[test]
fn the_foreign_key_restricts_deleting_the_active_account() {
    let dir = TempDir::new().unwrap();
    let path = rich_legacy(&dir, &format!("'{DID_C}'"));
    let mut conn = open(&path).unwrap();
    migrate(&mut conn, all()).unwrap();
    let err = diesel::sql_query(format!("DELETE FROM accounts WHERE did = '{DID_C}'"))
        .execute(conn.raw())
        .unwrap_err();
    assert!(err.to_string().contains("cannot be deleted"), "{err}");
    diesel::sql_query(format!("DELETE FROM accounts WHERE did = '{DID_B}'"))
        .execute(conn.raw())
        .unwrap();
    let err = diesel::sql_query("INSERT INTO active_identity (id, activeDid) VALUES (2, NULL)")
        .execute(conn.raw())
        .unwrap_err();
    assert!(
        err.to_string().starts_with("idstore:pointer_row: "),
        "{err}"
    );
}

#[test]
fn rollback_keeps_indexes_other_programs_put_on_settings() {
    let dir = TempDir::new().unwrap();
    let path = rich_legacy(&dir, "NULL");
    let mut conn = open(&path).unwrap();
    migrate(&mut conn, all()).unwrap();
    exec(
        &mut conn,
        "CREATE INDEX app_settings_first_name ON settings(firstName);",
    );
    rollback(&mut conn, &back_to_baseline()).unwrap();
    assert_eq!(
        text(
            &mut conn,
            "SELECT name AS value FROM sqlite_master WHERE name = 'app_settings_first_name'"
        ),
        Some("app_settings_first_name".into())
    );
}

#[test]
fn a_legacy_file_with_unknown_columns_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = legacy_file(
        dir.path(),
        "odd.sqlite",
        true,
        "ALTER TABLE accounts ADD COLUMN nickname TEXT;",
    );
    let original = dump(&mut raw(&path));
    let mut conn = open(&path).unwrap();
    let err = migrate(&mut conn, all()).unwrap_err();
    assert!(
        err.to_string()
            .contains("accounts has columns idstore does not know (nickname)"),
        "{err}"
    );
    assert_eq!(dump(&mut conn), original);
}

/// Without a backup to take first, the next step's preflight runs once, in the
/// step's own SQL: its refusal still comes with the inspection's words, the same
/// error as when the plan evaluates it (with a backup), and the file unchanged.
#[test]
fn a_refusal_left_to_the_step_says_what_the_plan_would_have_said() {
    let dir = TempDir::new().unwrap();
    let refusals = [
        (
            "ALTER TABLE accounts ADD COLUMN nickname TEXT;",
            "unknown_columns",
        ),
        (
            "CREATE TABLE accounts_quarantine (x TEXT);",
            "name_collision",
        ),
        (
            "CREATE TRIGGER app_touch AFTER UPDATE ON settings BEGIN SELECT 1; END;",
            "foreign_objects",
        ),
    ];
    for (i, (sql, token)) in refusals.into_iter().enumerate() {
        let path = legacy_file(dir.path(), &format!("odd-{i}.sqlite"), true, sql);
        let original = dump(&mut raw(&path));
        let mut db = open(&path).unwrap();
        let left = migrate(&mut db, all()).unwrap_err();
        assert_eq!(left.token(), Some(token), "{left}");
        let backup = dir.path().join(format!("odd-{i}.backup"));
        let planned = migrate(&mut db, all().backup_to(&backup)).unwrap_err();
        assert_eq!(
            (left.kind(), left.to_string()),
            (planned.kind(), planned.to_string())
        );
        assert!(
            left.to_string().contains(" ("),
            "the inspection's detail follows the step's words: {left}"
        );
        assert!(!backup.exists(), "a refused migration takes no backup");
        assert_eq!(dump(&mut db), original);
    }
}

#[test]
fn status_reads_without_writing() {
    let dir = TempDir::new().unwrap();
    let path = rich_legacy(&dir, &format!("'{DID_A}'"));
    let before = bytes(&path);
    let mut conn = idstore_repo::OpenOptions::new()
        .read_only(true)
        .open(&path)
        .unwrap();
    let st = status(&mut conn).unwrap();
    assert!(st.legacy);
    assert_eq!(st.accounts, 5);
    assert_eq!(st.active_did.as_deref(), Some(DID_A));
    assert!(
        migrate(&mut conn, all()).is_err(),
        "a read-only connection cannot migrate"
    );
    drop(conn);
    assert_eq!(bytes(&path), before);
}

/// The writes a foreign program could make to the pointer, each with what the guard
/// must answer (an error naming the rule), from `DID_A` active with `DID_B` another account.
fn hostile_pointer_writes() -> Vec<(String, &'static str)> {
    vec![
        (
            format!("DELETE FROM accounts WHERE did = '{DID_A}'"),
            "idstore:active_account: the active identity's account cannot be deleted",
        ),
        (
            format!("UPDATE accounts SET did = '{ORPHAN}' WHERE did = '{DID_A}'"),
            "idstore:active_account: the active identity's account cannot change its did",
        ),
        (
            format!(
                "INSERT OR REPLACE INTO accounts (id, dateCreated, did, publicKeyHex) VALUES (1, '2024', '{DID_C}', '02')"
            ),
            "idstore:active_account: the active identity's account cannot be replaced",
        ),
        (
            format!("UPDATE active_identity SET activeDid = '{ORPHAN}' WHERE id = 1"),
            "idstore:unknown_account: active_identity.activeDid must name an account",
        ),
        // The new app build's own statement.
        (
            format!(
                "UPDATE active_identity SET activeDid = '{ORPHAN}', lastUpdated = datetime('now') WHERE id = 1"
            ),
            "idstore:unknown_account:",
        ),
        (
            format!(
                "INSERT OR REPLACE INTO active_identity (id, activeDid) VALUES (1, '{ORPHAN}')"
            ),
            "idstore:unknown_account:",
        ),
        (
            format!(
                "INSERT INTO active_identity (id, activeDid) VALUES (1, '{ORPHAN}') ON CONFLICT (id) DO UPDATE SET activeDid = excluded.activeDid"
            ),
            "idstore:unknown_account:",
        ),
        // The single row is permanent, however it is asked to go.
        (
            "DELETE FROM active_identity".to_owned(),
            "idstore:pointer_row: the active_identity row cannot be deleted",
        ),
        (
            format!(
                "DELETE FROM active_identity; INSERT INTO active_identity (id, activeDid) VALUES (1, '{ORPHAN}')"
            ),
            "idstore:pointer_row:",
        ),
        (
            "INSERT INTO active_identity (id, activeDid) VALUES (2, NULL)".to_owned(),
            "idstore:pointer_row: active_identity has exactly one row, id 1",
        ),
        (
            "UPDATE active_identity SET id = 2".to_owned(),
            "idstore:pointer_row:",
        ),
    ]
}

/// Every state the migrations leave a file in, reached by idstore or by the diesel
/// CLI's own harness: no writer, foreign keys on or off, leaves the pointer naming
/// no account. Each hostile write is refused with the guard's message and changes
/// nothing; an old build's legacy write of an unknown DID is absorbed.
#[test]
fn the_pointer_guard_holds_for_every_writer_with_foreign_keys_on_or_off() {
    let mut cases = 0;
    for stop in [ACTIVE_IDENTITY_VERSION, CLEANUP_VERSION] {
        for by_diesel in [false, true] {
            for fk in ["OFF", "ON"] {
                let dir = TempDir::new().unwrap();
                let path = if by_diesel {
                    let path = dir.path().join("diesel.sqlite");
                    let mut conn = raw(&path);
                    let steps = if stop == ACTIVE_IDENTITY_VERSION {
                        2
                    } else {
                        3
                    };
                    for _ in 0..steps {
                        conn.run_next_migration(MIGRATIONS).unwrap();
                    }
                    exec(
                        &mut conn,
                        &format!(
                            "{}{}",
                            account_sql(1, DID_A, "a"),
                            account_sql(2, DID_B, "b")
                        ),
                    );
                    exec(
                        &mut conn,
                        &format!("UPDATE active_identity SET activeDid = '{DID_A}' WHERE id = 1"),
                    );
                    path
                } else {
                    let path = rich_legacy(&dir, &format!("'{DID_A}'"));
                    migrate(&mut open(&path).unwrap(), to(stop)).unwrap();
                    path
                };
                for (sql, says) in hostile_pointer_writes() {
                    let mut conn = raw(&path);
                    exec(&mut conn, &format!("PRAGMA foreign_keys = {fk};"));
                    let before = dump(&mut conn);
                    let err = conn
                        .batch_execute(&format!("BEGIN; {sql}; COMMIT;"))
                        .expect_err(&sql);
                    let _ = conn.raw().batch_execute("ROLLBACK;");
                    assert!(
                        err.to_string().contains(says),
                        "{stop} diesel={by_diesel} fk={fk}: {sql}: {err}"
                    );
                    assert_eq!(dump(&mut conn), before, "{sql} changed something");
                    cases += 1;
                }
                let mut conn = raw(&path);
                exec(&mut conn, &format!("PRAGMA foreign_keys = {fk};"));
                // Deleting another account, and moving the pointer first, still work.
                exec(
                    &mut conn,
                    &format!("DELETE FROM accounts WHERE did = '{DID_B}'"),
                );
                exec(
                    &mut conn,
                    &format!(
                        "UPDATE active_identity SET activeDid = NULL WHERE id = 1; DELETE FROM accounts WHERE did = '{DID_A}';"
                    ),
                );
                assert_eq!(active_of(&mut conn), None);
                if stop == ACTIVE_IDENTITY_VERSION {
                    // An old build writing settings.activeDid: an unknown DID is kept aside.
                    exec(
                        &mut conn,
                        &account_sql(7, DID_C, "c").replace("INSERT INTO", "INSERT OR IGNORE INTO"),
                    );
                    exec(
                        &mut conn,
                        &format!("UPDATE settings SET activeDid = '{DID_C}' WHERE id = 1"),
                    );
                    exec(
                        &mut conn,
                        &format!("UPDATE settings SET activeDid = '{ORPHAN}' WHERE id = 1"),
                    );
                    assert_eq!(active_of(&mut conn).as_deref(), Some(DID_C));
                    assert_eq!(
                        text(
                            &mut conn,
                            "SELECT activeDid AS value FROM settings WHERE id = 1"
                        )
                        .as_deref(),
                        Some(DID_C)
                    );
                }
                let mut conn = open(&path).unwrap();
                let report = conn.check().unwrap();
                assert!(
                    !report.problems.iter().any(|p| matches!(
                        p.kind,
                        ProblemKind::DanglingPointer | ProblemKind::ForeignKey
                    )),
                    "{stop} diesel={by_diesel} fk={fk}: {:?}",
                    report.problems
                );
            }
        }
    }
    eprintln!("figures: pointer guard: {cases} hostile writes refused, 0 dangling");
}

/// Up and all the way back gives the file's own schema text: the `settings` table as
/// the app wrote it (no `NOT NULL` on its key, the column it appended last), not
/// idstore's DDL, every index and trigger, and every row.
#[test]
fn rollback_restores_the_files_own_schema_text_not_only_its_rows() {
    for master_active in [
        format!("'{DID_A}'"),
        format!("'{ORPHAN}'"),
        "NULL".to_string(),
    ] {
        let dir = TempDir::new().unwrap();
        let path = rich_legacy(&dir, &master_active);
        exec(
            &mut raw(&path),
            "CREATE INDEX app_settings_first_name ON settings(firstName);
             CREATE TRIGGER app_settings_touch AFTER UPDATE OF firstName ON settings
             BEGIN UPDATE settings SET lastName = lastName WHERE id = NEW.id; END;",
        );
        let original = whole_dump(&mut raw(&path));
        assert!(
            original
                .0
                .iter()
                .any(|s| s.contains("CREATE TABLE settings (")),
            "the app's own text: {:?}",
            original.0
        );
        let mut conn = open(&path).unwrap();
        migrate(&mut conn, all()).unwrap();
        rollback(&mut conn, &back_to_baseline()).unwrap();
        assert_eq!(
            whole_dump(&mut conn),
            original,
            "{master_active}: the file's own schema text and rows"
        );
        // And up again gives the same migrated file.
        migrate(&mut conn, all()).unwrap();
        assert!(
            !whole_dump(&mut conn)
                .0
                .iter()
                .any(|s| s.contains("idstore_settings_rebuild")),
        );
    }
}

/// An app build that made `did` unique under idstore's index name: adopted, and put
/// back on rollback with the app's own text.
#[test]
fn an_equivalent_object_under_idstores_name_is_adopted_and_given_back() {
    let dir = TempDir::new().unwrap();
    let data = format!(
        "{}{}
         CREATE UNIQUE INDEX idx_accounts_did_unique ON accounts (did);
         INSERT INTO settings (id, activeDid, apiServer) VALUES (1, '{DID_B}', 'https://api.endorser.ch');",
        account_sql(1, DID_A, "a"),
        account_sql(2, DID_B, "b"),
    );
    let path = legacy_file(dir.path(), "unique.sqlite", true, &data);
    let original = whole_dump(&mut raw(&path));
    let mut conn = open(&path).unwrap();
    let report = migrate(&mut conn, all()).unwrap();
    assert_eq!(report.active_did.as_deref(), Some(DID_B));
    assert!(conn.check().unwrap().ok());
    // The diesel CLI cannot run the app's DDL back: its revert of the step refuses,
    // changing nothing.
    rollback(
        &mut conn,
        &RollbackOptions::new().target(RollbackTarget::Steps(1)),
    )
    .unwrap();
    let before = dump(&mut conn);
    let err = conn.raw().revert_last_migration(MIGRATIONS).unwrap_err();
    assert!(
        err.to_string().contains("idstore:needs_idstore_rollback:"),
        "{err}"
    );
    assert_eq!(dump(&mut conn), before);
    rollback(&mut conn, &back_to_baseline()).unwrap();
    assert_eq!(
        whole_dump(&mut conn),
        original,
        "the app's index, with its text"
    );
}

/// An object under a name idstore creates that is not equivalent is refused before
/// anything is written, and named.
#[test]
fn a_different_object_under_idstores_name_is_refused_and_named() {
    for (sql, name) in [
        (
            "CREATE INDEX idx_accounts_did_unique ON accounts(did);",
            "index named idx_accounts_did_unique",
        ),
        (
            "CREATE UNIQUE INDEX idx_accounts_did_unique ON accounts(did, publicKeyHex);",
            "index named idx_accounts_did_unique",
        ),
        (
            "CREATE TABLE accounts_quarantine (x TEXT);",
            "table named accounts_quarantine",
        ),
        (
            "CREATE TRIGGER accounts_guard_active_delete AFTER INSERT ON accounts BEGIN SELECT 1; END;",
            "trigger named accounts_guard_active_delete",
        ),
        (
            "CREATE VIEW quarantine_decisions AS SELECT 1;",
            "view named quarantine_decisions",
        ),
    ] {
        let dir = TempDir::new().unwrap();
        let data = format!("{}{sql}", account_sql(1, DID_A, "a"));
        let path = legacy_file(dir.path(), "collide.sqlite", true, &data);
        let bytes_before = bytes(&path);
        let mut conn = open(&path).unwrap();
        let before = dump(&mut conn);
        let err = conn.plan_migration(None).unwrap_err();
        assert!(
            err.kind() == ErrorKind::NameCollision && err.to_string().contains(name),
            "{sql}: {err}"
        );
        let err = migrate(&mut conn, all()).unwrap_err();
        assert!(err.to_string().contains(name), "{sql}: {err}");
        assert_eq!(dump(&mut conn), before, "{sql}: nothing written");
        drop(conn);
        assert!(
            bytes(&path) == bytes_before,
            "{sql}: the file's bytes changed"
        );
    }
}

/// Adopting the app's own `active_identity` and rolling back puts it back: its DDL,
/// its index, and its row, naming the identity active at rollback time.
#[test]
fn rollback_gives_the_apps_own_active_identity_back() {
    let dir = TempDir::new().unwrap();
    let path = app_active_identity_file(
        &dir,
        "RESTRICT",
        &format!("'{DID_B}'"),
        &format!("'{DID_B}'"),
    );
    let original = whole_dump(&mut raw(&path));
    let mut conn = open(&path).unwrap();
    migrate(&mut conn, all()).unwrap();
    rollback(&mut conn, &back_to_baseline()).unwrap();
    assert_eq!(whole_dump(&mut conn), original, "exactly the app's file");

    // When the identity changed meanwhile, the app's table names the new one.
    migrate(&mut conn, all()).unwrap();
    conn.store()
        .unwrap()
        .set_active_did(Some(&idstore_domain::Did::parse(DID_A).unwrap()))
        .unwrap();
    rollback(&mut conn, &back_to_baseline()).unwrap();
    assert_eq!(
        text(
            &mut conn,
            "SELECT activeDid AS value FROM active_identity WHERE id = 1"
        )
        .as_deref(),
        Some(DID_A)
    );
    assert_eq!(
        text(
            &mut conn,
            "SELECT sql AS value FROM sqlite_master WHERE name = 'active_identity'"
        ),
        text(
            &mut raw(&path),
            "SELECT sql AS value FROM sqlite_master WHERE name = 'active_identity'"
        ),
    );
    let (schema, _) = whole_dump(&mut conn);
    assert_eq!(schema, original.0, "the app's schema text");
}

#[test]
fn a_damaged_input_is_refused_before_anything_is_written() {
    let dir = TempDir::new().unwrap();
    let path = rich_legacy(&dir, &format!("'{DID_A}'"));
    // A NULL in a column declared NOT NULL, written behind SQLite's back: damaged,
    // as quick_check sees it, while the declarations are the app's own.
    raw(&path)
        .batch_execute(
            "PRAGMA writable_schema = ON;
             UPDATE sqlite_master SET sql = replace(sql, 'publicKeyHex TEXT NOT NULL', 'publicKeyHex TEXT')
              WHERE name = 'accounts';
             PRAGMA writable_schema = RESET;
             INSERT INTO accounts (id, dateCreated, did, publicKeyHex) VALUES (90, '2024', 'did:example:damaged', NULL);
             PRAGMA writable_schema = ON;
             UPDATE sqlite_master SET sql = replace(sql, 'publicKeyHex TEXT', 'publicKeyHex TEXT NOT NULL')
              WHERE name = 'accounts';
             PRAGMA writable_schema = RESET;",
        )
        .unwrap();
    let mut conn = open(&path).unwrap();
    let before = dump(&mut conn);
    let err = migrate(&mut conn, all()).unwrap_err();
    assert!(
        err.kind() == ErrorKind::DamagedInput && err.to_string().contains("publicKeyHex"),
        "{err}"
    );
    assert_eq!(err.token(), Some("damaged_input"));
    assert_eq!(err.kind().as_str(), "damaged_input");
    assert_eq!(dump(&mut conn), before, "nothing written");
    assert!(status(&mut conn).unwrap().legacy, "still the legacy file");
}

/// The app's table named B while `settings.activeDid` still named A (a build that
/// wrote only the new table): migrate adopts B, and rolling back gives the file its
/// every byte of content back, A included. Once the identity has changed, rollback
/// writes the new one instead.
#[test]
fn rollback_gives_back_the_legacy_value_the_apps_table_overrode() {
    for settings_pointer in [format!("'{DID_A}'"), "NULL".to_string(), "''".to_string()] {
        let dir = TempDir::new().unwrap();
        let path =
            app_active_identity_file(&dir, "RESTRICT", &format!("'{DID_B}'"), &settings_pointer);
        let original = whole_dump(&mut raw(&path));
        let mut conn = open(&path).unwrap();
        let report = migrate(&mut conn, all()).unwrap();
        assert_eq!(
            report.active_did.as_deref(),
            Some(DID_B),
            "the app's pointer wins"
        );
        rollback(&mut conn, &back_to_baseline()).unwrap();
        assert_eq!(
            whole_dump(&mut conn),
            original,
            "{settings_pointer}: exactly the app's file, its legacy value included"
        );
    }
    let dir = TempDir::new().unwrap();
    let path = app_active_identity_file(
        &dir,
        "RESTRICT",
        &format!("'{DID_B}'"),
        &format!("'{DID_A}'"),
    );
    let mut conn = open(&path).unwrap();
    migrate(&mut conn, all()).unwrap();
    conn.store()
        .unwrap()
        .set_active_did(Some(&idstore_domain::Did::parse(DID_A).unwrap()))
        .unwrap();
    conn.store().unwrap().set_active_did(None).unwrap();
    rollback(&mut conn, &back_to_baseline()).unwrap();
    assert_eq!(
        text(
            &mut conn,
            "SELECT activeDid AS value FROM settings WHERE id = 1"
        ),
        None,
        "the identity changed since: the new one (none) is written"
    );
    assert_eq!(
        text(
            &mut conn,
            "SELECT activeDid AS value FROM active_identity WHERE id = 1"
        ),
        None
    );
}

/// Stored definitions are data: text appended to one (or a record of an object
/// idstore never keeps) makes the rollback refuse before it writes anything, and no
/// statement of the file's runs. Rows kept as `INSERT` text by an older idstore
/// come back as the literals they are.
#[test]
fn rollback_runs_no_statement_stored_in_the_file() {
    let elsewhere = TempDir::new().unwrap();
    let target = elsewhere.path().join("x.db");
    let injected = format!(
        "; ATTACH DATABASE '{}' AS p; CREATE TABLE p.t(a); INSERT INTO p.t VALUES (1);",
        target.display()
    );
    let tamper = [
        format!("UPDATE idstore_original_schema SET sql = sql || '{}' WHERE reason = 'adopted' AND type = 'table'", injected.replace('\'', "''")),
        format!("UPDATE idstore_original_schema SET sql = sql || '{}' WHERE reason = 'rebuilt' AND type = 'table'", injected.replace('\'', "''")),
        "UPDATE idstore_original_schema SET sql = 'CREATE TABLE active_identity AS SELECT * FROM accounts' WHERE reason = 'adopted' AND type = 'table'".to_owned(),
        "UPDATE idstore_original_schema SET name = 'evil', sql = 'CREATE TABLE evil (x)' WHERE reason = 'adopted' AND type = 'table'".to_owned(),
        "UPDATE idstore_original_schema SET rowsSql = 'INSERT INTO \"active_identity\" (\"id\") VALUES (1); DELETE FROM accounts;' WHERE reason = 'adopted' AND type = 'table'".to_owned(),
        format!("UPDATE sqlite_master SET sql = sql || '{}' WHERE name = 'app_settings_touch'", injected.replace('\'', "''")),
    ];
    for sql in &tamper {
        let dir = TempDir::new().unwrap();
        let path = app_active_identity_file(&dir, "RESTRICT", &format!("'{DID_B}'"), "NULL");
        exec(
            &mut raw(&path),
            "CREATE TRIGGER app_settings_touch AFTER UPDATE OF firstName ON settings
             BEGIN UPDATE settings SET lastName = lastName WHERE id = NEW.id; END;",
        );
        migrate(&mut open(&path).unwrap(), all()).unwrap();
        let mut tool = raw(&path);
        exec(&mut tool, "PRAGMA writable_schema = ON;");
        exec(&mut tool, sql);
        exec(&mut tool, "PRAGMA writable_schema = RESET;");
        drop(tool);
        let before = bytes(&path);
        let mut conn = open(&path).unwrap();
        let err = rollback(&mut conn, &back_to_baseline()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UntrustedSchema, "{sql}: {err}");
        drop(conn);
        assert!(bytes(&path) == before, "{sql}: the file changed");
        assert!(!target.exists(), "{sql}: a statement of the file's ran");
    }

    // A file adopted by an older idstore, which kept the rows as INSERT text (and
    // none as rows: a preview build's file brought to the current steps).
    let dir = TempDir::new().unwrap();
    let path = app_active_identity_file(
        &dir,
        "RESTRICT",
        &format!("'{DID_B}'"),
        &format!("'{DID_B}'"),
    );
    let original = whole_dump(&mut raw(&path));
    let mut conn = open(&path).unwrap();
    migrate(&mut conn, all()).unwrap();
    exec(
        &mut conn,
        &format!(
            "DELETE FROM idstore_adopted_active_identity; DELETE FROM idstore_adoption;
             UPDATE idstore_original_schema
                SET rowsSql = 'INSERT INTO \"active_identity\" (\"id\", \"activeDid\", \"lastUpdated\") VALUES (1, ''{DID_B}'', ''2025-06-01 10:00:00'');'
              WHERE reason = 'adopted' AND type = 'table';"
        ),
    );
    rollback(&mut conn, &back_to_baseline()).unwrap();
    assert_eq!(
        whole_dump(&mut conn),
        original,
        "the rows, read as literals"
    );
}

/// A trigger another program put in the file runs inside no migration: one that
/// would fire on the run's writes (here, one that overwrites a mnemonic when a
/// duplicate account moves to the quarantine) makes migrate refuse, naming it,
/// before anything is written; `status` and `check` list it. One that cannot fire
/// on the run's writes is left alone, and so are views.
#[test]
fn foreign_triggers_that_would_fire_inside_a_run_are_refused_and_named() {
    let evil = "CREATE TRIGGER evil AFTER DELETE ON accounts BEGIN
                  UPDATE accounts SET mnemonicEncrBase64 = 'ATTACKER' WHERE did = old.did;
                END;";
    let cascading =
        "CREATE TABLE notes (account INTEGER REFERENCES accounts(id) ON DELETE CASCADE, note TEXT);
                     INSERT INTO notes VALUES (3, 'kept with the duplicate');";
    for (what, sql, named) in [
        ("a trigger", evil, "evil"),
        ("a cascading foreign key", cascading, "notes"),
        (
            "an idstore trigger name with another body",
            "CREATE TRIGGER accounts_guard_active_delete AFTER DELETE ON accounts BEGIN DELETE FROM settings; END;",
            "accounts_guard_active_delete",
        ),
    ] {
        let dir = TempDir::new().unwrap();
        let path = rich_legacy(&dir, &format!("'{DID_A}'"));
        exec(&mut raw(&path), sql);
        let before = bytes(&path);
        let mut conn = open(&path).unwrap();
        let listed = conn.status().unwrap().foreign_objects;
        assert!(
            listed.iter().any(|o| o.contains(named)),
            "{what}: {listed:?}"
        );
        let problems = conn.check().unwrap().problems;
        assert!(
            problems
                .iter()
                .any(|p| p.kind == ProblemKind::ForeignObject && p.detail.contains(named)),
            "{what}: {problems:?}"
        );
        let err = migrate(&mut conn, all()).unwrap_err();
        // (Under one of idstore's names, the collision is what is refused first.)
        assert!(
            matches!(
                err.kind(),
                ErrorKind::ForeignObjects | ErrorKind::NameCollision
            ),
            "{what}: {err}"
        );
        assert!(err.to_string().contains(named), "{what}: {err}");
        drop(conn);
        assert!(bytes(&path) == before, "{what}: the file changed");
    }

    // Harmless: a trigger on a column no run writes, and a view.
    let dir = TempDir::new().unwrap();
    let path = rich_legacy(&dir, &format!("'{DID_A}'"));
    exec(
        &mut raw(&path),
        "CREATE TRIGGER app_touch AFTER UPDATE OF firstName ON settings BEGIN SELECT 1; END;
         CREATE VIEW named_accounts AS SELECT did FROM accounts;",
    );
    let mut conn = open(&path).unwrap();
    migrate(&mut conn, all()).unwrap();
    let listed = conn.status().unwrap().foreign_objects;
    assert_eq!(listed.len(), 2, "{listed:?}");
    rollback(&mut conn, &back_to_baseline()).unwrap();
}

/// A backup destination that is taken is refused before anything is written: the
/// other file is left alone, and the database keeps every byte (its journal mode,
/// bytes 18–19 of the header, and its change counter included).
#[test]
fn a_backup_destination_that_is_taken_is_refused_with_both_files_unchanged() {
    let dir = TempDir::new().unwrap();
    let path = rich_legacy(&dir, &format!("'{DID_A}'"));
    let taken = dir.path().join("taken.sqlite");
    std::fs::write(&taken, b"someone else's file").unwrap();
    let before = bytes(&path);
    let mut conn = open(&path).unwrap();
    let err = migrate(&mut conn, all().backup_to(&taken)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exists, "{err}");
    assert!(err.to_string().contains("taken.sqlite"), "{err}");
    drop(conn);
    assert!(bytes(&path) == before, "the database changed");
    assert_eq!(bytes(&taken), b"someone else's file");
}

/// The app's migration service and idstore's steps coexist: on a file from before
/// the app's `003_add_hasBackedUpSeed_to_settings`, idstore adds that column itself
/// and records the step as applied in the app's `migrations` table, so the service
/// (which runs every step not recorded there) does not run it again and fail with
/// "duplicate column name". A file that already has the column, and a `migrations`
/// table of another shape, are left alone.
#[test]
fn the_apps_own_step_003_is_not_run_again_on_a_migrated_file() {
    const APP_STEPS: [(&str, &str); 3] = [
        ("001_initial", "SELECT 1"),
        ("002_contacts", "SELECT 1"),
        (
            "003_add_hasBackedUpSeed_to_settings",
            "ALTER TABLE settings ADD COLUMN hasBackedUpSeed BOOLEAN DEFAULT FALSE",
        ),
    ];
    /// The app's migration service: each step not recorded yet, then its record.
    fn app_service(conn: &mut SqliteConnection) -> Result<Vec<&'static str>, String> {
        let mut ran = Vec::new();
        for (name, sql) in APP_STEPS {
            let done = text(
                conn,
                &format!("SELECT name AS value FROM migrations WHERE name = '{name}'"),
            );
            if done.is_none() {
                conn.batch_execute(sql)
                    .map_err(|e| format!("{name}: {e}"))?;
                conn.batch_execute(&format!(
                    "INSERT INTO migrations (name, applied_at) VALUES ('{name}', datetime('now'))"
                ))
                .map_err(|e| e.to_string())?;
                ran.push(name);
            }
        }
        Ok(ran)
    }
    for has_column in [false, true] {
        let dir = TempDir::new().unwrap();
        let path = legacy_file(
            dir.path(),
            "app.sqlite",
            has_column,
            &account_sql(1, DID_A, "a"),
        );
        if has_column {
            // The app ran its 003 before idstore came.
            exec(
                &mut raw(&path),
                "INSERT INTO migrations VALUES ('003_add_hasBackedUpSeed_to_settings', '2024-05-01');",
            );
        }
        let report = migrate(&mut open(&path).unwrap(), all()).unwrap();
        let recorded = report
            .warnings
            .iter()
            .any(|w| w.kind() == "recorded_app_step");
        assert_eq!(recorded, !has_column, "has the column: {has_column}");
        let mut app = raw(&path);
        assert_eq!(
            app_service(&mut app),
            Ok(Vec::new()),
            "the app finds every step it shipped applied"
        );
        assert_eq!(
            text(
                &mut app,
                "SELECT count(*) AS value FROM migrations WHERE name LIKE '003%'"
            ),
            Some("1".into())
        );
        drop(app);
        // Rolled back to the legacy file, the column stays (it is the app's), and so
        // does its record: the app's service still has nothing to run.
        rollback(&mut open(&path).unwrap(), &back_to_baseline()).unwrap();
        assert_eq!(app_service(&mut raw(&path)), Ok(Vec::new()));
    }
    // A `migrations` table of another shape is not the app's bookkeeping.
    let dir = TempDir::new().unwrap();
    let path = legacy_file(
        dir.path(),
        "other.sqlite",
        false,
        &account_sql(1, DID_A, "a"),
    );
    exec(
        &mut raw(&path),
        "DROP TABLE migrations; CREATE TABLE migrations (id INTEGER PRIMARY KEY, step TEXT);",
    );
    let report = migrate(&mut open(&path).unwrap(), all()).unwrap();
    assert!(
        !report
            .warnings
            .iter()
            .any(|w| w.kind() == "recorded_app_step")
    );
    assert_eq!(
        text(&mut raw(&path), "SELECT count(*) AS value FROM migrations"),
        Some("0".into())
    );
}

/// A plan's status is the status: it names what an interrupted conversion left
/// beside the file as `status` does (both are completed in one place).
#[test]
fn a_plans_status_names_leftover_copies_as_status_does() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("app.sqlite");
    migrate(&mut open(&path).unwrap(), all()).unwrap();
    // Another program holds the write lock, so the open cannot tidy the copy away.
    let mut other = raw(&path);
    other.batch_execute("BEGIN IMMEDIATE;").unwrap();
    std::fs::write(
        dir.path().join(".app.sqlite.idstore-convert"),
        b"plain copy",
    )
    .unwrap();
    let mut db = idstore_repo::OpenOptions::new()
        .read_only(true)
        .open(&path)
        .unwrap();
    let status = db.status().unwrap();
    assert_eq!(status.leftover_copies.len(), 1, "{status:?}");
    let plan = db.plan_migration(None).unwrap();
    assert_eq!(plan.status().leftover_copies, status.leftover_copies);
    assert_eq!(plan.status().foreign_objects, status.foreign_objects);
    other.batch_execute("ROLLBACK;").unwrap();
}

/// A file a preview build of idstore migrated (its steps of 2026-11-25, replaced
/// before any release) is recognized, not served until migrated, and brought to the
/// current steps by `migrate` with every row kept: the same file, row for row and
/// object for object, as migrating the original now gives. Rolled back from there,
/// it is the original again; rolled back directly, too.
#[test]
fn a_preview_builds_file_is_brought_to_the_current_steps_with_every_row() {
    for (preview_to, current) in [
        ("20261125000001", ACTIVE_IDENTITY_VERSION),
        ("202611250000011", ACTIVE_IDENTITY_VERSION),
        ("20261125000002", CLEANUP_VERSION),
    ] {
        let dir = TempDir::new().unwrap();
        let original_path = rich_legacy(&dir, &format!("'{ORPHAN}'"));
        let original = whole_dump(&mut raw(&original_path));
        let fresh = dir.path().join("fresh.sqlite");
        std::fs::copy(&original_path, &fresh).unwrap();
        migrate(&mut open(&fresh).unwrap(), to(current)).unwrap();
        let preview = dir.path().join("preview.sqlite");
        std::fs::copy(&original_path, &preview).unwrap();
        preview_migrate(&preview, preview_to);

        let mut conn = open(&preview).unwrap();
        let st = status(&mut conn).unwrap();
        assert!(
            !st.preview.is_empty() && st.unknown.is_empty(),
            "{preview_to}: {st:?}"
        );
        assert!(
            !st.servable(),
            "{preview_to}: a preview build's file waits for migrate"
        );
        assert_eq!(
            conn.store().unwrap_err().kind(),
            ErrorKind::NeedsMigration,
            "{preview_to}"
        );
        let plan = conn.plan_migration(Some(&current.into())).unwrap();
        assert!(plan.upgrades_preview(), "{preview_to}");
        let report = migrate(&mut conn, to(current)).unwrap();
        assert!(
            report
                .warnings
                .iter()
                .any(|w| matches!(w, MigrationWarning::UpgradedPreview { .. })),
            "{preview_to}: {report:?}"
        );
        assert_eq!(
            whole_dump(&mut conn),
            whole_dump(&mut raw(&fresh)),
            "{preview_to}: as migrating the original now gives"
        );
        assert_eq!(
            conn.check().unwrap().problems,
            open(&fresh).unwrap().check().unwrap().problems,
            "{preview_to}: check finds what it finds in the freshly migrated file"
        );
        rollback(&mut conn, &back_to_baseline()).unwrap();
        assert_eq!(
            whole_dump(&mut conn),
            original,
            "{preview_to}: back to the original"
        );

        // Rolled back directly from the preview build's steps.
        let direct = dir.path().join("direct.sqlite");
        std::fs::copy(&original_path, &direct).unwrap();
        preview_migrate(&direct, preview_to);
        let mut conn = open(&direct).unwrap();
        let back = rollback(&mut conn, &back_to_baseline()).unwrap();
        assert!(!back.upgraded_preview.is_empty(), "{preview_to}");
        assert_eq!(
            whole_dump(&mut conn),
            original,
            "{preview_to}: rolled back directly"
        );
    }
}

/// A legacy `accounts` without AUTOINCREMENT lets a new account take the id of a
/// row the migration keeps aside, and the rollback could not put that row back: such
/// a file is refused at migrate when it has duplicates to keep aside (by the step's
/// own preflight, with its token), and served as usual when it has none.
#[test]
fn accounts_without_autoincrement_and_duplicates_are_refused_at_migrate() {
    let dir = TempDir::new().unwrap();
    let without_autoincrement = |name: &str, rows: &str| {
        let path = legacy_file(dir.path(), name, true, rows);
        exec(
            &mut raw(&path),
            "PRAGMA writable_schema = ON;
             UPDATE sqlite_master SET sql = replace(sql, 'PRIMARY KEY AUTOINCREMENT', 'PRIMARY KEY')
              WHERE name = 'accounts';
             PRAGMA writable_schema = RESET;",
        );
        path
    };
    let dup = without_autoincrement(
        "dup.sqlite",
        &format!(
            "{}{}",
            account_sql(1, DID_A, "a"),
            account_sql(2, DID_A, "b")
        ),
    );
    let before = bytes(&dup);
    let mut conn = open(&dup).unwrap();
    let err = migrate(&mut conn, all()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LegacyShape, "{err}");
    assert_eq!(err.token(), Some("no_autoincrement"), "{err}");
    drop(conn);
    assert!(bytes(&dup) == before, "nothing written");

    let single = without_autoincrement(
        "single.sqlite",
        &format!(
            "{}{}",
            account_sql(1, DID_A, "a"),
            account_sql(2, DID_B, "b")
        ),
    );
    let mut conn = open(&single).unwrap();
    migrate(&mut conn, all()).unwrap();
    rollback(&mut conn, &back_to_baseline()).unwrap();
}

/// Damage in a table idstore never touches (an index of the app's `logs` whose
/// entries no longer match its rows) is not the migration's: migrate validates what
/// it wrote, and rollback validates what it wrote too, so the file that migrated
/// can be rolled back.
#[test]
fn rollback_holds_wherever_migrate_held_damage_elsewhere_is_not_its_own() {
    let dir = TempDir::new().unwrap();
    let path = rich_legacy(&dir, &format!("'{DID_A}'"));
    exec(
        &mut raw(&path),
        "INSERT INTO logs VALUES ('2024-03-02T00:00:00.000Z', 'second');
         CREATE INDEX idx_logs_message ON logs(message);
         PRAGMA writable_schema = ON;
         UPDATE sqlite_master SET sql = 'CREATE INDEX idx_logs_message ON logs(date)'
          WHERE name = 'idx_logs_message';
         PRAGMA writable_schema = RESET;",
    );
    let damaged = text(
        &mut raw(&path),
        "SELECT group_concat(integrity_check) AS value FROM pragma_integrity_check",
    );
    assert_ne!(damaged.as_deref(), Some("ok"), "the index is damaged");
    let mut conn = open(&path).unwrap();
    migrate(&mut conn, all()).unwrap();
    rollback(&mut conn, &back_to_baseline()).unwrap();
    migrate(&mut conn, all()).unwrap();
    rollback(
        &mut conn,
        &RollbackOptions::new().target(RollbackTarget::Steps(1)),
    )
    .unwrap();
}
