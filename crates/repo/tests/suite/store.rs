//! The repository API against real temp-file databases: reads, writes, accounts,
//! health, and concurrent writers in threads and processes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::*;
use diesel::connection::InstrumentationEvent;
use diesel::prelude::*;
use idstore_domain::{Change, Did, NewAccount, Secret, Settings, SettingsChange, SettingsField};
use idstore_repo::health::ProblemKind;
use idstore_repo::{
    Database, ErrorKind, MigrateOptions, OpenOptions, SettingsScope, Store, WhenLast,
};
use tempfile::TempDir;

fn did(s: &str) -> Did {
    Did::parse(s).unwrap()
}

fn new_account(d: &str, date: &str) -> NewAccount {
    NewAccount::new(did(d), "02abcdef", date)
        .derivation_path("m/0")
        .identity(Secret::new(format!("IDENTITY-SECRET-{d}")))
        .mnemonic(Secret::new(format!("MNEMONIC-SECRET-{d}")))
}

fn master(store: &mut Store<'_>) -> Settings {
    store.settings(SettingsScope::Master).unwrap().settings
}

/// An identity's override row, when it has one.
fn override_of(store: &mut Store<'_>, d: &Did) -> Option<Settings> {
    let view = store.settings(SettingsScope::Override(d)).unwrap();
    view.has_override.then_some(view.settings)
}

/// A migrated database with accounts A, B, C created on consecutive days.
fn db_with_accounts(dir: &TempDir) -> PathBuf {
    let path = dir.path().join("store.sqlite");
    let mut conn = open(&path).unwrap();
    migrate(&mut conn, MigrateOptions::new()).unwrap();
    let mut store = conn.store().unwrap();
    store
        .add_account(&new_account(DID_A, "2024-03-01T12:00:00.000Z"))
        .unwrap();
    store
        .add_account(&new_account(DID_B, "2024-03-02T12:00:00.000Z"))
        .unwrap();
    store
        .add_account(&new_account(DID_C, "2024-03-03T12:00:00.000Z"))
        .unwrap();
    path
}

fn set(change: &mut SettingsChange, field: SettingsField, value: &str) {
    change.set_from_str(field, value).unwrap();
}

fn pointer(conn: &mut impl Raw) -> Option<String> {
    text(
        conn,
        "SELECT activeDid AS value FROM active_identity WHERE id = 1",
    )
}

#[test]
fn account_settings_merges_overrides_and_null_falls_through() {
    let dir = TempDir::new().unwrap();
    let mut db = Database::open(&db_with_accounts(&dir)).unwrap();
    let mut store = db.store().unwrap();
    let mut master = SettingsChange::default();
    set(&mut master, SettingsField::FirstName, "Master");
    set(&mut master, SettingsField::IsRegistered, "false");
    set(&mut master, SettingsField::PasskeyExpirationMinutes, "15");
    store.save_settings(&master).unwrap();
    let mut over = SettingsChange::default();
    set(&mut over, SettingsField::FirstName, "Alice");
    set(&mut over, SettingsField::IsRegistered, "true");
    store.save_account_settings(&did(DID_A), &over).unwrap();
    // NULL in the override: falls through to the master value.
    let mut clear = SettingsChange::default();
    clear.clear(SettingsField::IsRegistered);
    store.save_account_settings(&did(DID_A), &clear).unwrap();

    let none_active = store.settings(SettingsScope::Merged(None)).unwrap();
    assert_eq!(none_active.active_did, None);
    assert_eq!(none_active.settings.first_name.as_deref(), Some("Master"));
    assert!(!none_active.has_override);

    store.set_active_did(Some(&did(DID_A))).unwrap();
    let a = store.settings(SettingsScope::Merged(None)).unwrap();
    assert_eq!(a.active_did, Some(did(DID_A)));
    assert_eq!(a.account_did, Some(did(DID_A)));
    assert!(a.has_override);
    assert_eq!(
        a.settings.first_name.as_deref(),
        Some("Alice"),
        "a set override wins"
    );
    assert_eq!(
        a.settings.is_registered,
        Some(false),
        "NULL falls through to master"
    );
    assert_eq!(a.settings.passkey_expiration_minutes, Some(15));
    assert_eq!(
        a.settings.api_server.as_deref(),
        Some("https://api.endorser.ch")
    );

    let b = store
        .settings(SettingsScope::Merged(Some(&did(DID_B))))
        .unwrap();
    assert_eq!(b.account_did, Some(did(DID_B)));
    assert_eq!(b.active_did, Some(did(DID_A)));
    assert_eq!(
        b.settings.first_name.as_deref(),
        Some("Master"),
        "B has no override row"
    );
}

#[test]
fn account_settings_is_one_statement() {
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    let mut conn = open(&path).unwrap();
    conn.store()
        .unwrap()
        .set_active_did(Some(&did(DID_A)))
        .unwrap();
    let queries = Arc::new(AtomicUsize::new(0));
    let seen = queries.clone();
    conn.raw()
        .set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if matches!(event, InstrumentationEvent::StartQuery { .. }) {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        });
    let mut store = conn.store().unwrap();
    queries.store(0, Ordering::SeqCst); // (the store's own check that the file is served)
    store.settings(SettingsScope::Merged(None)).unwrap();
    assert_eq!(queries.swap(0, Ordering::SeqCst), 1);
    store
        .settings(SettingsScope::Merged(Some(&did(DID_B))))
        .unwrap();
    assert_eq!(queries.swap(0, Ordering::SeqCst), 1);
    // The counter really counts: the plan's sequence (the master row, the pointer,
    // the override row) is three statements.
    store.active_identity().unwrap();
    assert_eq!(queries.swap(0, Ordering::SeqCst), 1);
    store
        .read_only(|c| {
            for sql in [
                "SELECT 1 FROM settings WHERE id = 1",
                "SELECT 1 FROM active_identity WHERE id = 1",
                "SELECT 1 FROM settings WHERE accountDid = 'x'",
            ] {
                diesel::sql_query(sql).execute(c)?;
            }
            Ok(())
        })
        .unwrap();
    assert!(queries.load(Ordering::SeqCst) >= 3);
}

#[test]
fn switching_to_an_unknown_or_malformed_did_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    let mut conn = open(&path).unwrap();
    let mut store = conn.store().unwrap();
    store.set_active_did(Some(&did(DID_B))).unwrap();
    let before = store.active_identity().unwrap();
    assert!(before.last_updated.is_some());
    let err = store.set_active_did(Some(&did(ORPHAN))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownAccount, "{err}");
    assert!(err.to_string().contains(ORPHAN), "{err}");
    assert!(err.to_string().contains("no account has DID"));
    for bad in [
        "",
        "did:none:HIDDEN",
        "did:ethr:0x12",
        "did:ethr:0xAbC'; DELETE FROM accounts;--",
    ] {
        assert!(Did::parse(bad).is_err(), "{bad:?} cannot even be passed in");
    }
    assert_eq!(
        store.active_identity().unwrap(),
        before,
        "pointer and lastUpdated unchanged"
    );
    let mut change = SettingsChange::default();
    set(&mut change, SettingsField::FirstName, "should not be saved");
    change.active_did = Change::Set(did(ORPHAN));
    assert_eq!(
        store.save_settings(&change).map_err(|e| e.kind()).err(),
        Some(ErrorKind::UnknownAccount)
    );
    assert_eq!(master(&mut store).first_name, None, "nothing half-applied");
    assert_eq!(store.active_identity().unwrap(), before);
}

#[test]
fn set_active_did_updates_last_updated_clears_and_heals_a_missing_row() {
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    let mut conn = open(&path).unwrap();
    exec(
        &mut conn,
        "UPDATE active_identity SET lastUpdated = '2000-01-01 00:00:00'",
    );
    let mut store = conn.store().unwrap();
    store.set_active_did(Some(&did(DID_C))).unwrap();
    let now = store.active_identity().unwrap();
    assert_eq!(now.active_did, Some(did(DID_C)));
    assert!(now.last_updated.unwrap().timestamp() > 1_700_000_000);
    store.set_active_did(None).unwrap();
    assert_eq!(store.active_identity().unwrap().active_did, None);
    assert_eq!(
        store.read_only(|c| Ok(pointer(c))).unwrap(),
        None,
        "cleared to NULL, never ''"
    );

    // A tool that drops the guard can take the row away: the store still serves,
    // `check` says so, and the next write heals it.
    exec(
        &mut conn,
        "DROP TRIGGER active_identity_keep_row; DELETE FROM active_identity;",
    );
    assert_eq!(
        conn.store()
            .unwrap()
            .active_identity()
            .unwrap()
            .last_updated,
        None
    );
    assert!(
        conn.check()
            .unwrap()
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::MissingPointerRow)
    );
    let mut store = conn.store().unwrap();
    store.set_active_did(Some(&did(DID_A))).unwrap();
    assert_eq!(
        store.active_identity().unwrap().active_did,
        Some(did(DID_A)),
        "the upsert healed the row"
    );
    assert!(
        conn.check()
            .unwrap()
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::MissingPointerGuard),
        "the dropped trigger is named"
    );
    conn.repair().unwrap();
    assert!(conn.check().unwrap().ok());
}

#[test]
fn save_settings_is_typed_creates_a_missing_master_row_and_moves_the_pointer() {
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    let mut conn = open(&path).unwrap();
    exec(&mut conn, "DELETE FROM settings WHERE id = 1");
    let mut store = conn.store().unwrap();
    assert_eq!(
        master(&mut store),
        Settings::default(),
        "missing master row reads as defaults"
    );
    let mut change = SettingsChange::default();
    set(
        &mut change,
        SettingsField::FirstName,
        "Robert'); DROP TABLE settings;--",
    );
    set(
        &mut change,
        SettingsField::SearchBoxes,
        r#"[{"name":"home","bbox":{"eastLong":1,"maxLat":2,"minLat":0,"westLong":-1}}]"#,
    );
    change.active_did = Change::Set(did(DID_B));
    store.save_settings(&change).unwrap();
    let saved = master(&mut store);
    assert_eq!(
        saved.first_name.as_deref(),
        Some("Robert'); DROP TABLE settings;--"),
        "stored as data"
    );
    assert_eq!(
        saved.api_server.as_deref(),
        Some("https://api.endorser.ch"),
        "re-created as seeded"
    );
    assert_eq!(saved.search_boxes.as_ref().map(Vec::len), Some(1));
    assert_eq!(
        store.active_identity().unwrap().active_did,
        Some(did(DID_B))
    );
    let json = store
        .read_only(|c| {
            Ok(text(
                c,
                "SELECT searchBoxes AS value FROM settings WHERE id = 1",
            ))
        })
        .unwrap()
        .unwrap();
    assert!(
        json.starts_with(r#"[{"name":"home","bbox":{"eastLong""#),
        "{json}"
    );

    let mut clear = SettingsChange::default();
    clear.clear(SettingsField::FirstName);
    clear.active_did = Change::Clear;
    store.save_settings(&clear).unwrap();
    assert_eq!(master(&mut store).first_name, None);
    assert_eq!(store.active_identity().unwrap().active_did, None);
}

#[test]
fn oversized_values_are_refused_and_nothing_is_written() {
    let dir = TempDir::new().unwrap();
    let mut db = Database::open(&db_with_accounts(&dir)).unwrap();
    let mut store = db.store().unwrap();
    let mut change = SettingsChange::default();
    set(&mut change, SettingsField::LastName, "kept?");
    change.first_name = Change::Set("x".repeat(1 << 20));
    let err = store.save_settings(&change).unwrap_err();
    assert!(err.to_string().contains("firstName"), "{err}");
    assert_eq!(master(&mut store).last_name, None);
    assert!(store.save_account_settings(&did(DID_A), &change).is_err());
    assert_eq!(override_of(&mut store, &did(DID_A)), None);
}

#[test]
fn save_account_settings_creates_the_override_row_and_refuses_what_does_not_belong() {
    let dir = TempDir::new().unwrap();
    let mut db = Database::open(&db_with_accounts(&dir)).unwrap();
    let mut store = db.store().unwrap();
    let mut change = SettingsChange::default();
    set(&mut change, SettingsField::ShowGeneralAdvanced, "1");
    store.save_account_settings(&did(DID_C), &change).unwrap();
    store.save_account_settings(&did(DID_C), &change).unwrap();
    let rows = db
        .store()
        .unwrap()
        .read_only(|c| {
            Ok(text(
                c,
                &format!(
                    "SELECT CAST(count(*) AS TEXT) AS value FROM settings WHERE accountDid = '{DID_C}'"
                ),
            ))
        })
        .unwrap();
    assert_eq!(rows.as_deref(), Some("1"), "one override row, reused");
    let mut store = db.store().unwrap();
    assert_eq!(
        override_of(&mut store, &did(DID_C))
            .unwrap()
            .show_general_advanced,
        Some(true)
    );
    assert_eq!(
        store
            .save_account_settings(&did(ORPHAN), &change)
            .map_err(|e| e.kind())
            .err(),
        Some(ErrorKind::UnknownAccount)
    );
    let mut with_pointer = change.clone();
    with_pointer.active_did = Change::Set(did(DID_A));
    assert_eq!(
        store
            .save_account_settings(&did(DID_C), &with_pointer)
            .map_err(|e| e.kind())
            .err(),
        Some(ErrorKind::InvalidSetting)
    );
    assert_eq!(store.active_identity().unwrap().active_did, None);
}

#[test]
fn merged_settings_layer_the_override_over_the_master() {
    let dir = TempDir::new().unwrap();
    let mut db = Database::open(&db_with_accounts(&dir)).unwrap();
    let mut store = db.store().unwrap();
    let mut m = SettingsChange::default();
    set(&mut m, SettingsField::FirstName, "Master");
    store.save_settings(&m).unwrap();
    let mut o = SettingsChange::default();
    set(&mut o, SettingsField::LastName, "Override");
    store.save_account_settings(&did(DID_A), &o).unwrap();
    // A caller's own defaults go under the view: each set value wins.
    let fallback = {
        let mut s = Settings::default();
        s.first_name = Some("Fallback".into());
        s.vapid = Some("fallback-vapid".into());
        s
    };
    let view = store
        .settings(SettingsScope::Merged(Some(&did(DID_A))))
        .unwrap();
    assert!(view.has_override);
    let merged = fallback.merged_with(&view.settings);
    assert_eq!(merged.first_name.as_deref(), Some("Master"));
    assert_eq!(merged.last_name.as_deref(), Some("Override"));
    assert_eq!(merged.vapid.as_deref(), Some("fallback-vapid"));
    let master_only = store.settings(SettingsScope::Merged(None)).unwrap();
    assert!(!master_only.has_override && master_only.account_did.is_none());
    assert_eq!(master_only.settings.last_name, None);
    let override_only = store
        .settings(SettingsScope::Override(&did(DID_A)))
        .unwrap();
    assert_eq!(override_only.settings.first_name, None);
    assert_eq!(
        store
            .settings(SettingsScope::Override(&did(ORPHAN)))
            .unwrap_err()
            .kind(),
        ErrorKind::UnknownAccount
    );
}

#[test]
fn accounts_are_validated_listed_without_secrets_and_secrets_need_their_own_call() {
    let dir = TempDir::new().unwrap();
    let mut db = Database::open(&db_with_accounts(&dir)).unwrap();
    let mut store = db.store().unwrap();
    assert_eq!(
        store
            .add_account(&new_account(DID_A, "2024-05-01T00:00:00Z"))
            .map_err(|e| e.kind())
            .err(),
        Some(ErrorKind::AccountExists)
    );
    let mut bad = new_account(ORPHAN, "2024-05-01T00:00:00Z");
    let refusal = |store: &mut Store<'_>, new: &NewAccount| {
        let err = store.add_account(new).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidAccount, "{err}");
        err.to_string()
    };
    bad.public_key_hex = String::new();
    assert!(refusal(&mut store, &bad).contains("a public key is required"));
    bad.public_key_hex = "not hex".into();
    assert!(refusal(&mut store, &bad).contains("must be hex digits"));
    bad.public_key_hex = "ab".repeat(2049);
    let too_long = refusal(&mut store, &bad);
    assert!(
        too_long.contains("4098 hex digits long") && !too_long.contains("must be hex"),
        "a key too long is not called \"not hex\": {too_long}"
    );
    bad.public_key_hex = "02ab".into();
    bad.date_created = "yesterday".into();
    assert!(refusal(&mut store, &bad).contains("RFC 3339"));
    assert_eq!(
        store.account(&did(ORPHAN)).unwrap_err().kind(),
        ErrorKind::UnknownAccount,
        "nothing was added"
    );

    let list: Vec<_> = store.accounts().unwrap().map(Result::unwrap).collect();
    let dids: Vec<&str> = list.iter().map(|a| a.did.as_str()).collect();
    assert_eq!(dids, [DID_A, DID_B, DID_C]);
    let shown = format!("{list:?} {}", serde_json::to_string(&list).unwrap());
    assert!(!shown.contains("SECRET"), "{shown}");
    let full = store.account_with_secrets(&did(DID_B)).unwrap();
    assert!(!format!("{full:?}").contains("SECRET"));
    assert_eq!(
        full.identity_encr_base64.unwrap().expose(),
        format!("IDENTITY-SECRET-{DID_B}")
    );
}

#[test]
fn deleting_accounts_moves_the_pointer_and_guards_the_last_one() {
    let dir = TempDir::new().unwrap();
    let mut db = Database::open(&db_with_accounts(&dir)).unwrap();
    let mut store = db.store().unwrap();
    store.set_active_did(Some(&did(DID_A))).unwrap();
    let mut o = SettingsChange::default();
    set(&mut o, SettingsField::FirstName, "A's");
    store.save_account_settings(&did(DID_A), &o).unwrap();

    // A non-active account: the pointer stays.
    let r = store.delete_account(&did(DID_B), WhenLast::Refuse).unwrap();
    assert_eq!(
        (r.was_active, r.active_did.clone()),
        (false, Some(did(DID_A)))
    );
    // The active account: the pointer moves to the next by (dateCreated, did)…
    store
        .add_account(&new_account(ORPHAN, "2024-03-05T12:00:00.000Z"))
        .unwrap();
    store.set_active_did(Some(&did(DID_C))).unwrap();
    let r = store.delete_account(&did(DID_C), WhenLast::Refuse).unwrap();
    assert_eq!(
        (r.was_active, r.active_did.clone()),
        (true, Some(did(ORPHAN)))
    );
    // …or, from the last one, wraps round to the first.
    let r = store
        .delete_account(&did(ORPHAN), WhenLast::Refuse)
        .unwrap();
    assert_eq!(
        (r.was_active, r.active_did.clone()),
        (true, Some(did(DID_A)))
    );
    store
        .add_account(&new_account(DID_C, "2024-03-03T12:00:00.000Z"))
        .unwrap();
    let r = store.delete_account(&did(DID_A), WhenLast::Refuse).unwrap();
    assert_eq!(
        (r.was_active, r.active_did.clone(), r.settings_rows_removed),
        (true, Some(did(DID_C)), 1)
    );
    assert_eq!(
        store.active_identity().unwrap().active_did,
        Some(did(DID_C))
    );
    // The last account: refused unless allowed.
    let err = store
        .delete_account(&did(DID_C), WhenLast::Refuse)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LastAccount, "{err}");
    assert_eq!(store.accounts().unwrap().count(), 1);
    let r = store.delete_account(&did(DID_C), WhenLast::Delete).unwrap();
    assert_eq!(r.active_did, None);
    assert!(store.accounts().unwrap().next().is_none());
    assert!(db.check().unwrap().ok(), "{:?}", db.check().unwrap());
    let mut store = db.store().unwrap();
    assert_eq!(
        store
            .delete_account(&did(DID_C), WhenLast::Delete)
            .map_err(|e| e.kind())
            .err(),
        Some(ErrorKind::UnknownAccount)
    );
}

#[test]
fn the_foreign_key_blocks_a_raw_delete_of_the_active_account() {
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    let mut conn = open(&path).unwrap();
    conn.store()
        .unwrap()
        .set_active_did(Some(&did(DID_B)))
        .unwrap();
    let err = diesel::sql_query(format!("DELETE FROM accounts WHERE did = '{DID_B}'"))
        .execute(conn.raw())
        .unwrap_err();
    assert!(err.to_string().contains("cannot be deleted"), "{err}");
    assert_eq!(conn.store().unwrap().accounts().unwrap().count(), 3);
}

#[test]
fn check_finds_each_problem_kind_and_repair_fixes_the_fixable_losing_nothing() {
    let dir = TempDir::new().unwrap();
    // A legacy file with a duplicate and an orphan pointer gives quarantined rows.
    let data = format!(
        "{}{}{} INSERT INTO settings (id, activeDid) VALUES (1, '{ORPHAN}');",
        account_sql(1, DID_A, "a"),
        account_sql(2, DID_B, "b"),
        account_sql(3, DID_A, "a2")
    );
    let path = legacy_file(dir.path(), "sick.sqlite", true, &data);
    let mut conn = open(&path).unwrap();
    migrate(&mut conn, MigrateOptions::new()).unwrap();
    conn.store()
        .unwrap()
        .set_active_did(Some(&did(DID_B)))
        .unwrap();
    // What another writer with foreign keys off could leave behind.
    unguarded(&mut conn, &format!(
        "DELETE FROM accounts WHERE did = '{DID_B}';
         DROP INDEX idx_accounts_did_unique;
         INSERT INTO accounts (dateCreated, did, publicKeyHex) VALUES ('2024-01-01T00:00:00Z', '{DID_A}', '02'), ('2024-01-02T00:00:00Z', 'not a did', '03');
         INSERT INTO settings (id, accountDid, firstName) VALUES (20, '{ORPHAN}', 'orphan override'), (21, NULL, 'stray');
         DELETE FROM settings WHERE id = 1;"
    ));
    // And a tool that dropped part of the guard.
    exec(&mut conn, "DROP TRIGGER accounts_guard_active_delete;");
    let before = dump(&mut conn);
    let report = conn.check().unwrap();
    let kinds: std::collections::BTreeSet<_> = report
        .problems
        .iter()
        .map(|p| format!("{:?}", p.kind))
        .collect();
    for kind in [
        "DanglingPointer",
        "MissingMasterRow",
        "DuplicateDid",
        "MissingDidIndex",
        "InvalidDid",
        "OrphanOverride",
        "ExtraNullAccountRow",
        "QuarantinedAccount",
        "MissingPointerGuard",
        "QuarantinedPointer",
    ] {
        assert!(
            kinds.contains(kind),
            "{kind} not found in {:#?}",
            report.problems
        );
    }
    assert!(report.problems.iter().all(|p| !p.detail.is_empty()));

    let repair = conn.repair().unwrap();
    let mut store = conn.store().unwrap();
    let fixed: Vec<ProblemKind> = repair.fixed.iter().map(|p| p.kind).collect();
    assert_eq!(
        fixed,
        [
            ProblemKind::MissingMasterRow,
            ProblemKind::DuplicateDid,
            ProblemKind::MissingDidIndex,
            ProblemKind::DanglingPointer,
            ProblemKind::MissingPointerGuard
        ]
    );
    assert!(
        repair.fixed[4]
            .detail
            .contains("accounts_guard_active_delete"),
        "{}",
        repair.fixed[4].detail
    );
    assert!(
        repair.fixed[3].detail.contains(DID_B) && repair.fixed[3].detail.contains(DID_A),
        "{}",
        repair.fixed[3].detail
    );
    assert!(
        repair.left.iter().all(|p| !p.kind.repairable()),
        "{:#?}",
        repair.left
    );
    let left: std::collections::BTreeSet<_> = repair.left.iter().map(|p| p.kind).collect();
    assert_eq!(
        left,
        [
            ProblemKind::InvalidDid,
            ProblemKind::OrphanOverride,
            ProblemKind::ExtraNullAccountRow,
            ProblemKind::QuarantinedAccount,
            ProblemKind::QuarantinedPointer
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(
        store.active_identity().unwrap().active_did,
        Some(did(DID_A)),
        "first account by (dateCreated, did)"
    );
    let kept = store
        .read_only(|c| {
            Ok(rows(
                c,
                "SELECT activeDid AS value FROM active_did_quarantine ORDER BY id",
            ))
        })
        .unwrap();
    assert_eq!(kept, [ORPHAN, DID_B], "the dangling value is kept");
    // Nothing lost: every row that was there is still there (an account row perhaps
    // moved to the quarantine, with every column).
    let after = store.read_only(|c| Ok(dump(c))).unwrap();
    let cols = "json_array(quote(id), quote(dateCreated), quote(derivationPath), quote(did), \
                quote(identityEncrBase64), quote(mnemonicEncrBase64), quote(passkeyCredIdHex), \
                quote(publicKeyHex))";
    let accounts_now = store
        .read_only(|c| {
            Ok(rows(
                c,
                &format!(
                    "SELECT {cols} AS value FROM accounts UNION ALL SELECT {cols} FROM accounts_quarantine"
                ),
            ))
        })
        .unwrap();
    for (table, rows_before) in &before {
        for row in rows_before {
            match table.as_str() {
                "active_identity" => {}
                "accounts" => assert!(accounts_now.contains(row), "accounts lost {row}"),
                _ => assert!(after[table].contains(row), "{table} lost {row}"),
            }
        }
    }
}

#[test]
fn repair_clears_a_dangling_pointer_when_no_account_is_left() {
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    let mut conn = open(&path).unwrap();
    conn.store()
        .unwrap()
        .set_active_did(Some(&did(DID_A)))
        .unwrap();
    unguarded(&mut conn, "DELETE FROM accounts;");
    let r = conn.repair().unwrap();
    assert!(r.fixed[0].detail.contains("cleared it"), "{:?}", r.fixed);
    assert_eq!(
        conn.store().unwrap().active_identity().unwrap().active_did,
        None
    );
    assert!(
        conn.check()
            .unwrap()
            .problems
            .iter()
            .all(|p| p.kind == ProblemKind::QuarantinedPointer)
    );
}

#[test]
fn a_database_that_needs_migrating_is_refused_by_the_repository() {
    let dir = TempDir::new().unwrap();
    let path = legacy_file(dir.path(), "legacy.sqlite", true, "");
    let mut db = Database::open(&path).unwrap();
    let err = db.store().map(drop).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NeedsMigration, "{err}");
    assert!(err.to_string().contains(CLEANUP_VERSION), "{err}");
    // A library caller is not necessarily the CLI: the message names no command.
    assert!(!err.to_string().contains("idstore"), "{err}");
    let mut conn = open(&dir.path().join("new.sqlite")).unwrap();
    migrate(&mut conn, MigrateOptions::new()).unwrap();
    let Err(unknown) = conn.store().unwrap().set_active_did(Some(&did(DID_C))) else {
        panic!("an unknown DID was accepted");
    };
    assert!(!unknown.to_string().contains("idstore"), "{unknown}");
}

/// One writer's loop: switch identities and save its own override row `n` times;
/// returns the last value it saved (every save was acknowledged, or this panics).
///
/// It waits up to a minute for a lock, not the default 5 s: on a loaded 2-core
/// machine (CI builds beside the tests) one commit's sync can take seconds, and
/// the other writers queue behind it. What is tested is that every wait ends in
/// the write; a missing busy handler still fails at once.
fn writer_loop(path: &Path, id: usize, n: usize) -> String {
    let mut conn = OpenOptions::new()
        .busy_timeout(std::time::Duration::from_secs(60))
        .open(path)
        .unwrap();
    let mut store = conn.store().unwrap();
    let dids = [did(DID_A), did(DID_B), did(DID_C)];
    let mine = &dids[id % 3];
    let mut last = String::new();
    for i in 0..n {
        store
            .set_active_did(Some(&dids[(id + i) % 3]))
            .unwrap_or_else(|e| panic!("writer {id}: {e}"));
        last = format!("w{id}-{i}");
        let mut change = SettingsChange::default();
        // Each writer owns one field of its identity's override row.
        let field = [
            SettingsField::LastViewedClaimId,
            SettingsField::LastNotifiedClaimId,
            SettingsField::Vapid,
            SettingsField::ProfileImageUrl,
        ][id / 3 % 4];
        change.set_from_str(field, &last).unwrap();
        store
            .save_account_settings(mine, &change)
            .unwrap_or_else(|e| panic!("writer {id}: {e}"));
        let mut master = SettingsChange::default();
        set(&mut master, SettingsField::FirstName, &last);
        store
            .save_settings(&master)
            .unwrap_or_else(|e| panic!("writer {id}: {e}"));
    }
    last
}

fn stored_value(path: &Path, id: usize) -> Option<String> {
    let mut conn = open(path).unwrap();
    let over = override_of(
        &mut conn.store().unwrap(),
        &did([DID_A, DID_B, DID_C][id % 3]),
    )?;
    match id / 3 % 4 {
        0 => over.last_viewed_claim_id,
        1 => over.last_notified_claim_id,
        2 => over.vapid,
        _ => over.profile_image_url,
    }
}

#[test]
fn several_threads_writing_at_once_lose_nothing_and_see_no_lock_errors() {
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    let writers = 6;
    let handles: Vec<_> = (0..writers)
        .map(|id| {
            let path = path.clone();
            std::thread::spawn(move || writer_loop(&path, id, 40))
        })
        .collect();
    let lasts: Vec<String> = handles
        .into_iter()
        .map(|h| h.join().expect("no writer failed"))
        .collect();
    for (id, last) in lasts.iter().enumerate() {
        assert_eq!(
            stored_value(&path, id).as_deref(),
            Some(last.as_str()),
            "writer {id}'s last save is there"
        );
    }
    let mut conn = open(&path).unwrap();
    assert!(conn.check().unwrap().ok());
    let first_name = master(&mut conn.store().unwrap()).first_name.unwrap();
    assert!(
        lasts.contains(&first_name),
        "the master row holds some writer's last save: {first_name}"
    );
}

const WORKER_ENV: &str = "IDSTORE_TEST_WORKER";

/// Run normally, checks one writer alone; run as a child process by the test below
/// (with `IDSTORE_TEST_WORKER=path,id,n`), it is that process's writer.
#[test]
fn a_writer_process_acknowledges_every_save() {
    if let Ok(spec) = std::env::var(WORKER_ENV) {
        let parts: Vec<&str> = spec.split(',').collect();
        let last = writer_loop(
            Path::new(parts[0]),
            parts[1].parse().unwrap(),
            parts[2].parse().unwrap(),
        );
        println!("LAST {last}");
        return;
    }
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    let last = writer_loop(&path, 4, 10);
    assert_eq!(last, "w4-9");
    assert_eq!(stored_value(&path, 4).as_deref(), Some("w4-9"));
}

#[test]
fn several_processes_writing_at_once_lose_nothing_and_see_no_lock_errors() {
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..3)
        .map(|id| {
            std::process::Command::new(&exe)
                .args([
                    "store::a_writer_process_acknowledges_every_save",
                    "--exact",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(WORKER_ENV, format!("{},{id},40", path.display()))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Threads in this process write at the same time as the children.
    let threads: Vec<_> = (3..5)
        .map(|id| {
            let path = path.clone();
            std::thread::spawn(move || writer_loop(&path, id, 40))
        })
        .collect();
    let mut lasts = Vec::new();
    for (id, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "process {id} failed: {}\n{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        // The harness may print its "test … ..." prefix on the same line.
        let last = stdout
            .lines()
            .find_map(|l| l.split_once("LAST ").map(|(_, v)| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("process {id} reported nothing: {stdout}"));
        lasts.push(last);
    }
    lasts.extend(
        threads
            .into_iter()
            .map(|t| t.join().expect("no thread failed")),
    );
    for (id, last) in lasts.iter().enumerate() {
        assert_eq!(
            stored_value(&path, id).as_deref(),
            Some(last.as_str()),
            "writer {id}"
        );
    }
    let mut conn = open(&path).unwrap();
    assert!(conn.check().unwrap().ok());
}

#[cfg(feature = "pool")]
#[test]
fn pooled_connections_are_configured_like_single_ones() {
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    let pool = idstore_repo::pool::Pool::open(&path, OpenOptions::new(), 4).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut conn = pool.get().unwrap();
                let fk = text(
                    &mut conn,
                    "SELECT CAST(foreign_keys AS TEXT) AS value FROM pragma_foreign_keys",
                );
                let mode = text(
                    &mut conn,
                    "SELECT journal_mode AS value FROM pragma_journal_mode",
                );
                let mut store = conn.store().unwrap();
                store
                    .set_active_did(Some(&did([DID_A, DID_B][i % 2])))
                    .unwrap();
                (fk, mode)
            })
        })
        .collect();
    for h in handles {
        // The file keeps its own journal mode.
        assert_eq!(h.join().unwrap(), (Some("1".into()), Some("delete".into())));
    }
    let legacy = legacy_file(dir.path(), "legacy.sqlite", true, "");
    assert_eq!(
        idstore_repo::pool::Pool::open(&legacy, OpenOptions::new(), 2)
            .unwrap_err()
            .kind(),
        ErrorKind::NeedsMigration
    );
}

const LOCK_PROBE_ENV: &str = "IDSTORE_TEST_LOCK_PROBE";

/// Tries, without waiting, to take the file at `path` out of WAL mode, which needs
/// every other process's connections gone; the journal mode it ends with.
fn probe_journal_mode(path: &Path) -> String {
    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
    }
    let mut conn = raw(path);
    diesel::sql_query("PRAGMA journal_mode = DELETE")
        .get_result::<Mode>(&mut conn)
        .map_or_else(|e| format!("refused ({e})"), |m| m.journal_mode)
}

/// As a child process of the test below (`IDSTORE_TEST_LOCK_PROBE=path`), the probe
/// that test needs: it prints what [`probe_journal_mode`] found. Run normally, it
/// checks the probe itself: on a WAL file no one else has open, it does take the
/// file out of WAL (so a probe that reports WAL kept means a lock held it there).
#[test]
fn lock_probe_child() {
    if let Ok(path) = std::env::var(LOCK_PROBE_ENV) {
        println!("MODE {}", probe_journal_mode(Path::new(&path)));
        return;
    }
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    assert_eq!(probe_journal_mode(&path), "delete");
}

/// Opening a second connection in a process must not take away the first one's
/// locks: closing any descriptor on a file drops every POSIX lock the process holds
/// on it. Were they dropped, another process could switch the file out of WAL (or
/// checkpoint and remove the log) under the live connection, losing its writes.
#[test]
fn a_second_connection_keeps_the_first_ones_locks() {
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    // A file in WAL mode (the mode stays with the file).
    drop(
        OpenOptions::new()
            .journal_mode(idstore_repo::connection::JournalMode::Wal)
            .open(&path)
            .unwrap(),
    );
    // The probe in another process: it must run and report, or the test fails.
    let probe = |path: &Path| {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "store::lock_probe_child",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(LOCK_PROBE_ENV, path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "the probe failed: {text}");
        text.lines()
            .find_map(|l| l.split_once("MODE ").map(|(_, m)| m.trim().to_owned()))
            .unwrap_or_else(|| panic!("the probe did not run: {text}"))
    };
    // The control: a copy no connection holds is taken out of WAL by the probe.
    let copy = dir.path().join("copy.sqlite");
    std::fs::copy(&path, &copy).unwrap();
    assert_eq!(
        probe(&copy),
        "delete",
        "the probe can take a free file out of WAL"
    );

    let mut first = OpenOptions::new()
        .journal_mode(idstore_repo::connection::JournalMode::Wal)
        .open(&path)
        .unwrap();
    first.store().unwrap().accounts().unwrap().for_each(drop);
    let before = probe(&path);
    eprintln!("probe with one connection: {before}");
    assert_ne!(before, "delete", "the first connection holds its lock");
    let _second = open(&path).unwrap();
    let _third = idstore_repo::OpenOptions::new()
        .read_only(true)
        .open(&path)
        .unwrap();
    let after = probe(&path);
    eprintln!("probe with three connections: {after}");
    assert_ne!(
        after, "delete",
        "opening more connections must not drop the first one's lock"
    );
    first
        .store()
        .unwrap()
        .set_active_did(Some(&did(DID_A)))
        .unwrap();
}

/// JSON has no NaN or infinity: such a coordinate would be stored as `null`, and
/// every later read of the settings would fail. It is refused, and nothing changes.
#[test]
fn a_non_finite_search_box_coordinate_is_refused() {
    use idstore_domain::settings::{BoundingBox, SearchBox};
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    let mut conn = open(&path).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let change = {
            let mut c = SettingsChange::default();
            c.search_boxes = idstore_domain::Change::Set(vec![SearchBox {
                name: "home".into(),
                bbox: BoundingBox {
                    east_long: 1.0,
                    max_lat: bad,
                    min_lat: 0.0,
                    west_long: 0.5,
                },
            }]);
            c
        };
        let before = dump(&mut conn);
        let mut store = conn.store().unwrap();
        let err = store.save_settings(&change).unwrap_err();
        assert!(err.to_string().contains("not a finite number"), "{err}");
        let err = store
            .save_account_settings(&did(DID_A), &change)
            .unwrap_err();
        assert!(err.to_string().contains("searchBoxes"), "{err}");
        store
            .settings(SettingsScope::Merged(None))
            .expect("settings still read");
        assert_eq!(dump(&mut conn), before);
    }
}

/// `repair` suspends foreign keys for its transaction and turns them back on even
/// when it fails.
#[test]
fn repair_turns_foreign_keys_back_on_when_it_fails() {
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    let mut conn = open(&path).unwrap();
    unguarded(&mut conn, "DELETE FROM settings WHERE id = 1;");
    // Writes fail on this connection, so the repair's re-created master row fails.
    exec(&mut conn, "PRAGMA query_only = ON;");
    assert!(conn.repair().is_err());
    exec(&mut conn, "PRAGMA query_only = OFF;");
    assert_eq!(
        text(
            &mut conn,
            "SELECT CAST(foreign_keys AS TEXT) AS value FROM pragma_foreign_keys"
        )
        .as_deref(),
        Some("1")
    );
}

/// A backup path that is not UTF-8 names exactly that file: the copy is whole.
#[test]
fn a_backup_path_that_is_not_utf8_gets_a_whole_copy() {
    use std::os::unix::ffi::OsStrExt;
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    let mut conn = open(&path).unwrap();
    let dest = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"backup-\xff.sqlite"));
    conn.backup_to(&dest).unwrap();
    assert_eq!(dump(&mut open(&dest).unwrap()), dump(&mut conn));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "the file and its copy, nothing else"
    );
}

/// `check` on a file with many rows of one problem reports a bounded sample and a
/// count; `check_each` hands over every one.
#[test]
fn check_reports_a_bounded_sample_of_each_kind_and_check_each_streams_them_all() {
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    let mut conn = open(&path).unwrap();
    exec(
        &mut conn,
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
             INSERT INTO settings (accountDid, firstName) SELECT '{ORPHAN}', 'o' || i FROM n;"
        ),
    );
    let report = conn.check().unwrap();
    assert!(report.ok(), "orphan overrides are notices");
    assert_eq!(report.notices(), 1000);
    assert_eq!(report.count(ProblemKind::OrphanOverride), 1000);
    assert_eq!(
        report
            .problems
            .iter()
            .filter(|p| p.kind == ProblemKind::OrphanOverride)
            .count(),
        idstore_repo::health::HealthReport::SAMPLE_PER_KIND
    );
    assert_eq!(report.omitted[&ProblemKind::OrphanOverride], 990);
    assert_eq!(report.total(), 1000);
    let mut seen = 0;
    conn.check_each(|p| {
        assert_eq!(p.kind, ProblemKind::OrphanOverride);
        seen += 1;
    })
    .unwrap();
    assert_eq!(seen, 1000);
    let repaired = conn.repair().unwrap();
    assert_eq!(
        repaired.left.len(),
        idstore_repo::health::HealthReport::SAMPLE_PER_KIND
    );
    assert_eq!(repaired.left_omitted[&ProblemKind::OrphanOverride], 990);
}

/// idstore's connections run with SQLite's defensive settings: the schema cannot be
/// written through `writable_schema`, and `trusted_schema` is off (the file's
/// triggers and views may call only functions marked harmless). A plain connection
/// to the same file, the control, has neither.
#[test]
fn idstore_connections_run_with_sqlites_defensive_settings() {
    use diesel::connection::SimpleConnection;
    #[derive(QueryableByName)]
    struct On {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        trusted_schema: i32,
    }
    let dir = TempDir::new().unwrap();
    let path = db_with_accounts(&dir);
    let tamper = "PRAGMA writable_schema = ON;
                  UPDATE sqlite_master SET sql = 'CREATE TABLE accounts (x)' WHERE name = 'accounts';";
    let trusted = |conn: &mut SqliteConnection| {
        diesel::sql_query("PRAGMA trusted_schema")
            .get_result::<On>(conn)
            .unwrap()
            .trusted_schema
    };

    let mut control = raw(&path);
    assert_eq!(trusted(&mut control), 1, "SQLite's default");
    control.batch_execute("BEGIN;").unwrap();
    assert!(
        control.batch_execute(tamper).is_ok(),
        "a plain connection may"
    );
    control
        .batch_execute("ROLLBACK; PRAGMA writable_schema = OFF;")
        .unwrap();
    drop(control);

    let mut db = open(&path).unwrap();
    let conn = idstore_repo::fixtures::raw_connection(&mut db);
    assert_eq!(trusted(conn), 0);
    let err = conn.batch_execute(tamper).unwrap_err();
    assert!(err.to_string().contains("may not be modified"), "{err}");
}
