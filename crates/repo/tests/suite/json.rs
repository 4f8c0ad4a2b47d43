//! What a service sends and receives: the store's types serialize by the app's
//! names, what a read returns can be sent back as a change, and each settings
//! write goes to the row its call names.

use idstore_domain::{Did, NewAccount, SettingsChange};
use idstore_repo::testing::{ALICE, BOB, TestDatabase};
use idstore_repo::{ErrorKind, SettingsScope, WhenLast};
use serde_json::{Value, json};

use crate::common::*;

/// The keys of every object in `value`, and of every object inside it.
fn keys(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                into.push(k.clone());
                keys(v, into);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, into)),
        _ => {}
    }
}

#[test]
fn the_stores_types_speak_the_apps_names() {
    // The demo, migrated: an identity quarantined, an override row.
    let test = TestDatabase::legacy_demo().unwrap().migrated().unwrap();
    let mut db = test.open().unwrap();
    let mut store = db.store().unwrap();
    let alice = Did::parse(ALICE).unwrap();
    store.set_active_did(Some(&alice)).unwrap();
    let mut shown = vec![
        serde_json::to_value(store.settings(SettingsScope::Merged(None)).unwrap()).unwrap(),
        serde_json::to_value(store.active_identity().unwrap()).unwrap(),
        serde_json::to_value(store.account(&alice).unwrap()).unwrap(),
        serde_json::to_value(store.quarantined_items().unwrap()).unwrap(),
    ];
    shown.push(
        serde_json::to_value(
            store
                .delete_account(&Did::parse(BOB).unwrap(), WhenLast::Refuse)
                .unwrap(),
        )
        .unwrap(),
    );
    let mut all = Vec::new();
    shown.iter().for_each(|v| keys(v, &mut all));
    let snake: Vec<_> = all.iter().filter(|k| k.contains('_')).collect();
    assert!(snake.is_empty(), "{snake:?} in {shown:#?}");
    for key in [
        "activeDid",
        "accountDid",
        "hasOverride",
        "firstName",
        "lastUpdated",
        "publicKeyHex",
        "dateCreated",
        "wasActive",
    ] {
        assert!(all.iter().any(|k| k == key), "{key} missing: {all:?}");
    }
    // Times with their offset.
    let at = shown[1]["lastUpdated"].as_str().unwrap();
    assert!(
        idstore_domain::chrono::DateTime::parse_from_rfc3339(at).is_ok(),
        "{at}"
    );
}

/// A client reads the active identity's settings, changes one, and sends the
/// whole view back: saved to the identity's own row, it reads back as sent.
#[test]
fn what_a_read_returns_can_be_sent_back_as_a_change() {
    let test = TestDatabase::seeded().unwrap();
    let mut db = test.open().unwrap();
    let mut store = db.store().unwrap();
    let mut got =
        serde_json::to_value(store.settings(SettingsScope::Merged(None)).unwrap()).unwrap();
    assert_eq!(got["firstName"], "Test");
    got["firstName"] = json!("Ada");
    got["lastName"] = json!("Lovelace");
    let change: SettingsChange = serde_json::from_value(got.clone()).unwrap();
    store.save_active_account_settings(&change).unwrap();
    let back = serde_json::to_value(store.settings(SettingsScope::Merged(None)).unwrap()).unwrap();
    got["hasOverride"] = json!(true);
    got["accountDid"] = json!(ALICE);
    assert_eq!(back, got);
    // The master row, sent back as it was read, changes nothing.
    let master = store.settings(SettingsScope::Master).unwrap();
    let same: SettingsChange =
        serde_json::from_value(serde_json::to_value(&master).unwrap()).unwrap();
    store.save_settings(&same).unwrap();
    assert_eq!(store.settings(SettingsScope::Master).unwrap(), master);
    // An identity's own row refuses a change that would switch the identity.
    let mut switch = same;
    switch.active_did = idstore_domain::Change::Set(Did::parse(BOB).unwrap());
    let err = store
        .save_account_settings(&Did::parse(ALICE).unwrap(), &switch)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSetting);
}

/// The new account a client posts is read with the API's checks, and what the
/// store returns for it is what a listing shows.
#[test]
fn a_new_account_from_json_is_added_as_sent() {
    let test = TestDatabase::new().unwrap();
    let mut db = test.open().unwrap();
    let mut store = db.store().unwrap();
    let body =
        json!({"did": DID_A, "publicKeyHex": "02ab", "dateCreated": "2024-03-01T12:00:00.000Z"});
    let new: NewAccount = serde_json::from_value(body.clone()).unwrap();
    let added = serde_json::to_value(store.add_account(&new).unwrap()).unwrap();
    for key in ["did", "publicKeyHex", "dateCreated"] {
        assert_eq!(added[key], body[key], "{key}");
    }
    let listed = serde_json::to_value(store.accounts().unwrap().next().unwrap().unwrap()).unwrap();
    assert_eq!(listed, added);
}

/// Each settings write goes to the row its call names: the master row, an
/// identity's own, the active identity's own; the active identity sees its own
/// row's values over the master's.
#[test]
fn each_settings_write_goes_to_the_row_its_call_names() {
    let test = TestDatabase::seeded().unwrap();
    let mut db = test.open().unwrap();
    let mut store = db.store().unwrap();
    let (alice, bob) = (Did::parse(ALICE).unwrap(), Did::parse(BOB).unwrap());
    let name =
        |n: &str| serde_json::from_value::<SettingsChange>(json!({ "firstName": n })).unwrap();
    let first = |store: &mut idstore_repo::Store<'_>, scope| {
        store.settings(scope).unwrap().settings.first_name
    };
    store.save_settings(&name("master")).unwrap();
    store.save_account_settings(&bob, &name("bob's")).unwrap();
    assert_eq!(
        store
            .save_active_account_settings(&name("alice's"))
            .unwrap(),
        alice
    );
    assert_eq!(
        first(&mut store, SettingsScope::Master).as_deref(),
        Some("master")
    );
    assert_eq!(
        first(&mut store, SettingsScope::Override(&bob)).as_deref(),
        Some("bob's")
    );
    assert_eq!(
        first(&mut store, SettingsScope::Override(&alice)).as_deref(),
        Some("alice's")
    );
    assert_eq!(
        first(&mut store, SettingsScope::Merged(None)).as_deref(),
        Some("alice's")
    );
    // A master write no longer shows to an identity with a value of its own.
    store.save_settings(&name("master again")).unwrap();
    assert_eq!(
        first(&mut store, SettingsScope::Merged(None)).as_deref(),
        Some("alice's")
    );
    store.set_active_did(None).unwrap();
    let err = store
        .save_active_account_settings(&name("nobody"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoActiveIdentity);
    assert_eq!(
        first(&mut store, SettingsScope::Master).as_deref(),
        Some("master again")
    );
}
