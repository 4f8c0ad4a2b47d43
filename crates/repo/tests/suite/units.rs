//! Units of work: several reads and writes in one transaction, on a database and a
//! pooled one, rolled back whole on an error or a panic; and `read_only`, which
//! turns `query_only` off again however its closure ends.

use std::time::Duration;

use idstore_domain::{Did, NewAccount, SettingsChange, SettingsField};
use idstore_repo::pool::Pool;
use idstore_repo::testing::TestDatabase;
use idstore_repo::{Database, Error, ErrorKind, OpenOptions, SettingsScope};

use crate::common::*;

fn account(did: &str) -> NewAccount {
    NewAccount::new(Did::parse(did).unwrap(), "02ab", "2024-03-01T12:00:00.000Z")
}

fn first_name(name: &str) -> SettingsChange {
    let mut change = SettingsChange::new();
    change.set_from_str(SettingsField::FirstName, name).unwrap();
    change
}

/// The DIDs of every account and the master row's `firstName`, read by a
/// connection of its own.
fn state(test: &TestDatabase) -> (Vec<String>, Option<String>) {
    let mut db = test.open().unwrap();
    let mut store = db.store().unwrap();
    let dids = store
        .accounts()
        .unwrap()
        .map(|a| a.unwrap().did.to_string())
        .collect();
    let name = store
        .settings(SettingsScope::Master)
        .unwrap()
        .settings
        .first_name;
    (dids, name)
}

#[test]
fn a_failure_after_a_successful_write_rolls_the_whole_unit_back() {
    let test = TestDatabase::new().unwrap();
    let mut db = test.open().unwrap();
    let err = db
        .transaction(|store| {
            store.add_account(&account(DID_A))?;
            store.save_settings(&first_name("Ada"))?;
            store.set_active_did(Some(&Did::parse(UNKNOWN)?))
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownAccount);
    assert_eq!(state(&test), (vec![], None));
    // The same unit without the failure commits everything.
    db.transaction(|store| {
        store.add_account(&account(DID_A))?;
        store.save_settings(&first_name("Ada"))?;
        store.set_active_did(Some(&Did::parse(DID_A)?))
    })
    .unwrap();
    assert_eq!(
        state(&test),
        (vec![DID_A.to_owned()], Some("Ada".to_owned()))
    );
}

#[test]
fn a_call_that_fails_inside_a_unit_is_undone_alone() {
    let test = TestDatabase::new().unwrap();
    let mut db = test.open().unwrap();
    let active = db
        .transaction(|store| {
            store.add_account(&account(DID_A))?;
            // Handled: the unit goes on without it.
            let refused = store.add_account(&account(DID_A)).unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::AccountExists);
            store.set_active_did(Some(&Did::parse(DID_A)?))?;
            // A read inside sees the unit's own writes.
            store.active_identity()
        })
        .unwrap();
    assert_eq!(active.active_did.unwrap().as_str(), DID_A);
    assert_eq!(state(&test).0, [DID_A]);
}

#[test]
fn a_unit_holds_the_write_lock_until_it_ends() {
    let test = TestDatabase::new().unwrap();
    let mut db = test.open().unwrap();
    db.transaction(|store| {
        store.add_account(&account(DID_A))?;
        let mut other = test.open_with(OpenOptions::new().busy_timeout(Duration::ZERO))?;
        let refused = other.store()?.add_account(&account(DID_B)).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Locked);
        Ok(())
    })
    .unwrap();
    assert_eq!(state(&test).0, [DID_A]);
}

#[test]
fn a_panic_inside_a_unit_rolls_it_back_and_the_database_goes_on() {
    let test = TestDatabase::new().unwrap();
    let mut db = test.open().unwrap();
    let err = db
        .transaction(|store| -> Result<(), Error> {
            store.add_account(&account(DID_A))?;
            panic!("a bug in the service");
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert!(err.to_string().contains("a bug in the service"), "{err}");
    assert_eq!(state(&test).0, Vec::<String>::new());
    // No lock is left, and the same database writes again.
    let mut other = test
        .open_with(OpenOptions::new().busy_timeout(Duration::ZERO))
        .unwrap();
    other.store().unwrap().add_account(&account(DID_B)).unwrap();
    db.store().unwrap().add_account(&account(DID_A)).unwrap();
    assert_eq!(state(&test).0.len(), 2);
}

#[test]
fn a_pooled_connection_runs_a_unit_of_work() {
    let test = TestDatabase::new().unwrap();
    let pool = Pool::open(test.path(), OpenOptions::new(), 2).unwrap();
    let mut conn = pool.get().unwrap();
    let err = conn
        .transaction(|store| {
            store.add_account(&account(DID_A))?;
            store.add_account(&account(DID_A)).map(drop)
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AccountExists);
    assert!(state(&test).0.is_empty());
    let err = conn
        .transaction(|store| -> Result<(), Error> {
            store.add_account(&account(DID_A))?;
            panic!("pooled");
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    drop(conn);
    pool.get()
        .unwrap()
        .transaction(|store| store.add_account(&account(DID_B)).map(drop))
        .unwrap();
    assert_eq!(state(&test).0, [DID_B]);
}

/// `read_only` turns `query_only` on for its closure and off again however it
/// ends: a value, an error, a panic. A write afterwards is not refused as
/// read-only.
#[test]
fn read_only_turns_query_only_off_again_however_its_closure_ends() {
    use diesel::prelude::*;
    let test = TestDatabase::seeded().unwrap();
    let mut db: Database = test.open().unwrap();
    let mut store = db.store().unwrap();
    let refused = store.read_only(|c| diesel::sql_query("DELETE FROM settings").execute(c));
    assert_eq!(refused.unwrap_err().kind(), ErrorKind::ReadOnly);
    store.save_settings(&first_name("after an error")).unwrap();
    let panicked = store.read_only(|_| -> QueryResult<()> { panic!("inside read_only") });
    let err = panicked.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert!(err.to_string().contains("inside read_only"), "{err}");
    store.save_settings(&first_name("after a panic")).unwrap();
    assert_eq!(state(&test).1.as_deref(), Some("after a panic"));
}
