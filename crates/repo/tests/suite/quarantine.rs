//! Quarantine decisions on real files: list, show, restore and discard for duplicates
//! with the same and with different key material and for stray pointer values, the
//! decision log, and rollback after decisions.

use std::path::{Path, PathBuf};

use crate::common::*;
use diesel::prelude::*;
use diesel_migrations::MigrationHarness;
use idstore_domain::Did;
use idstore_domain::quarantine::{QuarantineKind, QuarantineRef};
use idstore_repo::health::ProblemKind;
use idstore_repo::migrations::RollbackOptions;
use idstore_repo::quarantine::{DecisionKind, Discard, QuarantinedDetail};
use idstore_repo::{ErrorKind, WhenLast};
use tempfile::TempDir;

fn item(s: &str) -> QuarantineRef {
    s.parse().unwrap()
}

/// A migrated file whose DID A is stored twice: with other key material (row 3) when
/// `same_keys` is false, else as an exact copy. The master pointer names `active`
/// (SQL literal), and B is an ordinary second account.
fn migrated(dir: &TempDir, same_keys: bool, active: &str) -> PathBuf {
    let second = if same_keys {
        "INSERT INTO accounts SELECT 3, dateCreated, derivationPath, did, identityEncrBase64, \
         mnemonicEncrBase64, passkeyCredIdHex, publicKeyHex FROM accounts WHERE id = 1;"
            .to_owned()
    } else {
        account_sql(3, DID_A, "a2-different")
    };
    let data = format!(
        "{}{}{second}
         INSERT INTO settings (id, activeDid, apiServer) VALUES (1, {active}, 'https://api.endorser.ch');
         INSERT INTO settings (id, accountDid, firstName) VALUES (2, '{DID_A}', 'Override A');",
        account_sql(1, DID_A, "a1"),
        account_sql(2, DID_B, "b1"),
    );
    let path = legacy_file(dir.path(), "q.sqlite", true, &data);
    migrate(
        &mut open(&path).unwrap(),
        idstore_repo::MigrateOptions::new(),
    )
    .unwrap();
    path
}

/// Every account row, kept or quarantined, without the quarantine's own columns:
/// a decision may move rows between the two tables, never lose or change one.
fn account_rows(conn: &mut impl Raw) -> Vec<String> {
    let mut all = rows(
        conn,
        "SELECT id || '|' || dateCreated || '|' || coalesce(derivationPath, '-') || '|' || did
                || '|' || coalesce(identityEncrBase64, '-') || '|' || coalesce(mnemonicEncrBase64, '-')
                || '|' || coalesce(passkeyCredIdHex, '-') || '|' || publicKeyHex AS value
           FROM accounts
         UNION ALL
         SELECT id || '|' || dateCreated || '|' || coalesce(derivationPath, '-') || '|' || did
                || '|' || coalesce(identityEncrBase64, '-') || '|' || coalesce(mnemonicEncrBase64, '-')
                || '|' || coalesce(passkeyCredIdHex, '-') || '|' || publicKeyHex AS value
           FROM accounts_quarantine",
    );
    all.sort();
    all
}

fn active(conn: &mut impl Raw) -> Option<String> {
    text(
        conn,
        "SELECT activeDid AS value FROM active_identity WHERE id = 1",
    )
}

#[test]
fn list_names_differing_fields_without_secret_values() {
    let dir = TempDir::new().unwrap();
    let path = migrated(&dir, false, &format!("'{DID_A}'"));
    let mut conn = open(&path).unwrap();
    let items = conn.store().unwrap().quarantined_items().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    let it = &items[0];
    assert_eq!(it.item, item("account:3"));
    assert_eq!(it.value, DID_A);
    assert!(it.waiting);
    assert_eq!(it.kept_account_id, Some(1));
    assert_eq!(
        it.differs_from_kept,
        vec![
            "dateCreated",
            "derivationPath",
            "identityEncrBase64",
            "mnemonicEncrBase64",
            "publicKeyHex"
        ]
    );
    let shown = format!("{items:?}") + &serde_json::to_string(&items).unwrap();
    for secret in ["aWQta2-different", "bW5la2-different", "aWQta1", "bW5la1"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }

    // An exact copy differs in nothing.
    let dir2 = TempDir::new().unwrap();
    let path2 = migrated(&dir2, true, "NULL");
    let items = open(&path2)
        .unwrap()
        .store()
        .unwrap()
        .quarantined_items()
        .unwrap();
    assert_eq!(items[0].differs_from_kept, Vec::<&str>::new());
}

#[test]
fn show_holds_secrets_only_as_redacted_values() {
    let dir = TempDir::new().unwrap();
    let path = migrated(&dir, false, "NULL");
    let mut conn = open(&path).unwrap();
    let detail = conn
        .store()
        .unwrap()
        .quarantined_item(item("account:3"))
        .unwrap();
    let QuarantinedDetail::Account { row, summary } = &detail else {
        panic!("{detail:?}")
    };
    assert_eq!(row.id, 3);
    assert_eq!(
        row.identity_encr_base64.as_ref().unwrap().expose(),
        "aWQta2-different"
    );
    assert!(summary.waiting);
    assert!(!format!("{detail:?}").contains("aWQta2-different"));
}

#[test]
fn restoring_an_account_swaps_it_in_keeping_every_row_and_the_pointer() {
    for same_keys in [false, true] {
        let dir = TempDir::new().unwrap();
        let path = migrated(&dir, same_keys, &format!("'{DID_A}'"));
        let mut conn = open(&path).unwrap();
        let before = account_rows(&mut conn);
        let decision = conn
            .store()
            .unwrap()
            .restore_quarantined(item("account:3"))
            .unwrap();
        assert_eq!(decision.decision, DecisionKind::Restore);
        assert_eq!(decision.kept_aside, Some(item("account:1")));
        assert_eq!(account_rows(&mut conn), before, "no row lost or changed");
        assert_eq!(
            text(
                &mut conn,
                &format!("SELECT id AS value FROM accounts WHERE did = '{DID_A}'")
            ),
            Some("3".into()),
            "the restored row is the account, with its own id"
        );
        assert_eq!(
            text(
                &mut conn,
                "SELECT group_concat(id) AS value FROM accounts_quarantine"
            ),
            Some("1".into())
        );
        assert_eq!(active(&mut conn).as_deref(), Some(DID_A), "pointer kept");
        let report = conn.check().unwrap();
        assert!(report.ok(), "{:?}", report.problems);
        let mut store = conn.store().unwrap();
        let items = store.quarantined_items().unwrap();
        assert_eq!(items.len(), 1);
        assert!(!items[0].waiting, "the replaced account was decided on");
        assert_eq!(items[0].kept_account_id, Some(3));
        let key = store
            .account_with_secrets(&Did::parse(DID_A).unwrap())
            .unwrap();
        assert_eq!(key.id, 3);
        // The override row still belongs to the DID, and reads through.
        let view = store
            .settings(idstore_repo::SettingsScope::Merged(None))
            .unwrap();
        assert_eq!(view.settings.first_name.as_deref(), Some("Override A"));

        // Swapping back is a decision too, and leaves the first state's rows.
        store.restore_quarantined(item("account:1")).unwrap();
        assert_eq!(account_rows(&mut conn), before);
        assert_eq!(
            text(
                &mut conn,
                &format!("SELECT id AS value FROM accounts WHERE did = '{DID_A}'")
            ),
            Some("1".into())
        );
        let log = conn.store().unwrap().quarantine_decisions().unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[1].item, item("account:1"));
        assert_eq!(log[1].kept_aside, Some(item("account:3")));
    }
}

#[test]
fn restoring_an_account_whose_kept_account_was_deleted_reinstates_it() {
    let dir = TempDir::new().unwrap();
    let path = migrated(&dir, false, &format!("'{DID_B}'"));
    let mut conn = open(&path).unwrap();
    conn.store()
        .unwrap()
        .delete_account(&Did::parse(DID_A).unwrap(), WhenLast::Refuse)
        .unwrap();
    let d = conn
        .store()
        .unwrap()
        .restore_quarantined(item("account:3"))
        .unwrap();
    assert_eq!(d.kept_aside, None);
    assert_eq!(
        text(
            &mut conn,
            &format!("SELECT id AS value FROM accounts WHERE did = '{DID_A}'")
        ),
        Some("3".into())
    );
    assert!(
        conn.store()
            .unwrap()
            .quarantined_items()
            .unwrap()
            .is_empty()
    );
}

/// A migrated file whose legacy pointer named no account: `pointer:1` holds it.
fn stray_pointer(dir: &TempDir) -> PathBuf {
    migrated(dir, false, &format!("'{ORPHAN}'"))
}

#[test]
fn a_stray_pointer_is_restored_only_once_it_names_an_account() {
    let dir = TempDir::new().unwrap();
    let path = stray_pointer(&dir);
    let mut conn = open(&path).unwrap();
    conn.store()
        .unwrap()
        .set_active_did(Some(&Did::parse(DID_B).unwrap()))
        .unwrap();
    let items = conn.store().unwrap().quarantined_items().unwrap();
    let pointer = items
        .iter()
        .find(|i| i.item.kind == QuarantineKind::Pointer)
        .unwrap();
    assert_eq!(pointer.item, item("pointer:1"));
    assert_eq!(pointer.value, ORPHAN);
    assert!(!pointer.names_account);

    let before = dump(&mut conn);
    let err = conn
        .store()
        .unwrap()
        .restore_quarantined(item("pointer:1"))
        .unwrap_err();
    assert!(err.kind() == ErrorKind::UnknownAccount, "{err}");
    assert!(err.to_string().contains("names no account"), "{err}");
    assert_eq!(dump(&mut conn), before, "a refusal changes nothing");

    exec(&mut conn, &account_sql(9, ORPHAN, "orphan"));
    let d = conn
        .store()
        .unwrap()
        .restore_quarantined(item("pointer:1"))
        .unwrap();
    assert_eq!(d.previous_active_did.as_deref(), Some(DID_B));
    assert_eq!(active(&mut conn).as_deref(), Some(ORPHAN));
    assert!(
        !conn
            .store()
            .unwrap()
            .quarantined_items()
            .unwrap()
            .iter()
            .any(|i| i.item.kind == QuarantineKind::Pointer)
    );
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn discard_with_export_writes_an_owner_only_file_first_and_never_overwrites() {
    let dir = TempDir::new().unwrap();
    let path = migrated(&dir, false, "NULL");
    let mut conn = open(&path).unwrap();
    let export = dir.path().join("account-3.json");

    // An existing file is refused, and left as it was.
    std::fs::write(&export, "mine").unwrap();
    let before = dump(&mut conn);
    let err = conn
        .store()
        .unwrap()
        .discard_quarantined(item("account:3"), Discard::Export(&export))
        .unwrap_err();
    assert!(err.kind() == ErrorKind::Exists, "{err}");
    assert_eq!(std::fs::read_to_string(&export).unwrap(), "mine");
    assert_eq!(dump(&mut conn), before);
    std::fs::remove_file(&export).unwrap();

    // An export that cannot be written deletes nothing and leaves no file.
    let nowhere = dir.path().join("missing-folder").join("x.json");
    let err = conn
        .store()
        .unwrap()
        .discard_quarantined(item("account:3"), Discard::Export(&nowhere))
        .unwrap_err();
    assert!(err.to_string().contains("was not deleted"), "{err}");
    assert_eq!(dump(&mut conn), before);

    let d = conn
        .store()
        .unwrap()
        .discard_quarantined(item("account:3"), Discard::Export(&export))
        .unwrap();
    assert_eq!(d.decision, DecisionKind::DiscardExport);
    assert_eq!(d.export_path.as_deref(), Some(export.as_path()));
    assert_eq!(mode(&export), 0o600);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    assert_eq!(doc["item"], "account:3");
    assert_eq!(doc["row"]["identityEncrBase64"], "aWQta2-different");
    assert_eq!(doc["row"]["mnemonicEncrBase64"], "bW5la2-different");
    assert_eq!(doc["row"]["did"], DID_A);
    assert_eq!(doc["row"]["keptAccountId"], 1);
    assert!(
        conn.store()
            .unwrap()
            .quarantined_items()
            .unwrap()
            .is_empty()
    );
    assert!(conn.check().unwrap().ok());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn forgetting_an_account_needs_force_and_a_pointer_does_not() {
    let dir = TempDir::new().unwrap();
    let path = stray_pointer(&dir);
    let mut conn = open(&path).unwrap();
    let before = dump(&mut conn);
    let err = conn
        .store()
        .unwrap()
        .discard_quarantined(item("account:3"), Discard::Forget { force: false })
        .unwrap_err();
    assert!(err.kind() == ErrorKind::NeedsForce, "{err}");
    assert_eq!(dump(&mut conn), before);

    let mut store = conn.store().unwrap();
    let d = store
        .discard_quarantined(item("pointer:1"), Discard::Forget { force: false })
        .unwrap();
    assert_eq!(d.decision, DecisionKind::DiscardForget);
    assert_eq!(d.value, ORPHAN);
    store
        .discard_quarantined(item("account:3"), Discard::Forget { force: true })
        .unwrap();
    assert!(store.quarantined_items().unwrap().is_empty());
    assert!(conn.check().unwrap().ok());
    let mut store = conn.store().unwrap();
    assert_eq!(store.quarantine_decisions().unwrap().len(), 2);
    let err = store
        .discard_quarantined(item("account:3"), Discard::Forget { force: true })
        .unwrap_err();
    assert!(err.kind() == ErrorKind::NotQuarantined, "{err}");
}

#[test]
fn check_reports_waiting_decisions_with_the_item_to_decide_on() {
    let dir = TempDir::new().unwrap();
    let path = stray_pointer(&dir);
    let mut conn = open(&path).unwrap();
    let report = conn.check().unwrap();
    let decisions: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.is_decision())
        .map(|p| (p.kind, p.item.unwrap().to_string()))
        .collect();
    assert_eq!(
        decisions,
        vec![
            (ProblemKind::QuarantinedAccount, "account:3".to_owned()),
            (ProblemKind::QuarantinedPointer, "pointer:1".to_owned())
        ]
    );
    // Repair cannot decide for a person: both are left.
    let repaired = conn.repair().unwrap();
    assert!(repaired.fixed.is_empty());
    assert_eq!(repaired.left.iter().filter(|p| p.is_decision()).count(), 2);
}

#[test]
fn quarantine_refs_parse_and_print() {
    assert_eq!(item("account:4").to_string(), "account:4");
    assert_eq!(
        item("pointer:12"),
        QuarantineRef {
            kind: QuarantineKind::Pointer,
            id: 12
        }
    );
    for bad in ["account", "acct:4", "account:x", ":4", "pointer:"] {
        let err = bad.parse::<QuarantineRef>().unwrap_err();
        assert!(err.to_string().contains("KIND:ID"), "{bad}: {err}");
    }
}

#[test]
fn rollback_refuses_to_silently_undo_a_restore_and_keeps_discards() {
    let dir = TempDir::new().unwrap();
    let path = migrated(&dir, false, &format!("'{DID_A}'"));
    let legacy_rows = {
        // What the legacy file held, for the comparison after rolling back.
        let mut conn = open(&path).unwrap();
        let copy = dir.path().join("copy.sqlite");
        conn.backup_to(&copy).unwrap();
        let mut c = open(&copy).unwrap();
        rollback(&mut c, &RollbackOptions::default()).unwrap();
        dump(&mut c)
    };
    let mut conn = open(&path).unwrap();
    conn.store()
        .unwrap()
        .restore_quarantined(item("account:3"))
        .unwrap();
    let before = dump(&mut conn);
    let err = rollback(&mut conn, &RollbackOptions::default()).unwrap_err();
    assert!(
        err.kind() == ErrorKind::DecisionsWouldBeUndone && err.to_string().contains("account:3"),
        "{err}"
    );
    assert_eq!(dump(&mut conn), before, "refused before writing");

    // The down.sql refuses on its own, as it does under the diesel CLI and in the
    // app's migration service (the cleanup above it reverts: it restores only
    // settings.activeDid).
    rollback(
        &mut conn,
        &RollbackOptions::new().target(idstore_repo::migrations::RollbackTarget::Steps(1)),
    )
    .unwrap();
    let before = dump(&mut conn);
    let down = MigrationHarness::revert_last_migration(conn.raw(), MIGRATIONS);
    assert!(down.is_err(), "the down migration's guard refused");
    assert!(
        down.unwrap_err()
            .to_string()
            .contains("idstore:decisions_would_be_undone:"),
    );
    assert_eq!(dump(&mut conn), before);

    // On request the record goes, and the rows are exactly the legacy file's again.
    let back = rollback(&mut conn, &RollbackOptions::new().forget_decisions(true)).unwrap();
    assert_eq!(back.forgotten_decisions, vec![item("account:3")]);
    assert_eq!(dump(&mut conn), legacy_rows);

    // A discard stays done across a rollback: the row is gone, by the user's choice.
    let dir = TempDir::new().unwrap();
    let path = migrated(&dir, false, "NULL");
    let mut conn = open(&path).unwrap();
    conn.store()
        .unwrap()
        .discard_quarantined(item("account:3"), Discard::Forget { force: true })
        .unwrap();
    let back = rollback(&mut conn, &RollbackOptions::default()).unwrap();
    assert!(back.reverted.iter().any(|v| v == ACTIVE_IDENTITY_VERSION));
    assert!(back.forgotten_decisions.is_empty());
    assert_eq!(
        rows(&mut conn, "SELECT id AS value FROM accounts ORDER BY id"),
        vec!["1", "2"]
    );
    // And the chain goes up again with nothing waiting.
    migrate(&mut conn, Default::default()).unwrap();
    assert!(conn.check().unwrap().ok());
}

#[test]
fn a_file_from_before_the_guard_and_the_log_is_reported_and_repaired() {
    let dir = TempDir::new().unwrap();
    let path = migrated(&dir, false, &format!("'{DID_A}'"));
    let mut conn = open(&path).unwrap();
    // What an idstore from before the pointer guard and the decision log left.
    exec(
        &mut conn,
        "DROP TABLE quarantine_decisions;
         DROP TRIGGER active_identity_guard_insert; DROP TRIGGER active_identity_guard_update;
         DROP TRIGGER accounts_guard_active_delete; DROP TRIGGER accounts_guard_active_did_update;",
    );
    let kinds: Vec<ProblemKind> = conn
        .check()
        .unwrap()
        .problems
        .iter()
        .map(|p| p.kind)
        .collect();
    assert!(
        kinds.contains(&ProblemKind::MissingPointerGuard),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&ProblemKind::MissingDecisionLog),
        "{kinds:?}"
    );
    let mut store = conn.store().unwrap();
    assert!(
        store.quarantined_items().unwrap()[0].waiting,
        "listing still works"
    );
    let err = store.restore_quarantined(item("account:3")).unwrap_err();
    assert!(err.kind() == ErrorKind::NeedsRepair, "{err}");
    let fixed: Vec<ProblemKind> = conn
        .repair()
        .unwrap()
        .fixed
        .iter()
        .map(|p| p.kind)
        .collect();
    assert_eq!(
        fixed,
        [
            ProblemKind::MissingPointerGuard,
            ProblemKind::MissingDecisionLog
        ]
    );
    conn.store()
        .unwrap()
        .restore_quarantined(item("account:3"))
        .unwrap();
    assert!(conn.check().unwrap().ok());
    // The re-created guard is the migration's own: it refuses as it does there.
    let err = diesel::sql_query(format!("DELETE FROM accounts WHERE did = '{DID_A}'"))
        .execute(conn.raw())
        .unwrap_err();
    assert!(err.to_string().contains("cannot be deleted"), "{err}");
}

/// A discard with an export inside a unit of work that then rolls back: the row is
/// back, so the export (a copy of key material) is removed with it. A unit that
/// commits keeps it.
#[test]
fn an_export_of_a_unit_that_rolls_back_is_removed() {
    let dir = TempDir::new().unwrap();
    let path = migrated(&dir, false, "NULL");
    let mut conn = open(&path).unwrap();
    let export = dir.path().join("account-3.json");
    let before = dump(&mut conn);
    let err = conn
        .transaction(|store| {
            store.discard_quarantined(item("account:3"), Discard::Export(&export))?;
            assert!(export.exists(), "written before the row goes");
            store.set_active_did(Some(&Did::parse(UNKNOWN)?))
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownAccount);
    assert!(!export.exists(), "the export went with the unit");
    assert_eq!(dump(&mut conn), before);
    conn.transaction(|store| {
        store.discard_quarantined(item("account:3"), Discard::Export(&export))
    })
    .unwrap();
    assert!(export.exists());
}
