//! Encrypted legacy files made by an independent SQLCipher: the PyPI package
//! `sqlcipher3-binary` (SQLCipher 4.x, not the build idstore links) writes the file
//! as the app's storage plugin would, idstore migrates, checks and rolls it back with
//! the same key, and that engine reads every step back: still encrypted, the
//! migrated shape, every row intact. A wrong key changes nothing, and a SQLCipher 3
//! file is found by its key alone and stays a SQLCipher 3 file, its backup too.
//!
//! Needs the engine installed into `tests/engines/.venv` from `requirements.txt`
//! (`python3 -m venv tests/engines/.venv && tests/engines/.venv/bin/pip install -r
//! tests/engines/requirements.txt`, as CI's script does): the test never reaches a
//! package registry itself, and says loudly that it skipped without it.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use crate::common::*;
use serde_json::Value;
use tempfile::TempDir;

const KEY: &str = "it's the app's passphrase";

fn engine_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/engines")
}

/// The venv's python.
fn python() -> PathBuf {
    engine_dir().join(".venv/bin/python")
}

/// Whether the independent SQLCipher is installed in the venv.
fn engine_available(test: &str) -> bool {
    tool_available(
        test,
        "the independent SQLCipher (sqlcipher3-binary) in tests/engines/.venv",
        runs(
            python().to_str().unwrap_or(""),
            &["-c", "import sqlcipher3"],
        ),
        "python3 -m venv tests/engines/.venv && tests/engines/.venv/bin/pip install -r tests/engines/requirements.txt",
    )
}

fn engine(args: &[&str]) -> String {
    let out = StdCommand::new(python())
        .arg(engine_dir().join("sqlcipher_app.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sqlcipher_app.py {:?}: {}",
        &args[..1],
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An encrypted legacy file written by the other engine (`compat`: "3" for
/// SQLCipher 3's settings).
fn make(dir: &Path, name: &str, compat: Option<&str>) -> PathBuf {
    let db = dir.join(name);
    let schema = dir.join("schema.sql");
    std::fs::write(&schema, idstore_repo::testing::LEGACY_APP_SCHEMA).unwrap();
    let mut args = vec!["make", db.to_str().unwrap(), KEY, schema.to_str().unwrap()];
    args.extend(compat);
    engine(&args);
    db
}

/// What the other engine reads in the file, with the key.
fn inspect(db: &Path, compat: Option<&str>) -> Value {
    inspect_with(db, KEY, compat)
}

/// What the other engine reads in the file with `key` (and SQLCipher 3's settings
/// when `compat` is "3").
fn inspect_with(db: &Path, key: &str, compat: Option<&str>) -> Value {
    let mut args = vec!["inspect", db.to_str().unwrap(), key];
    args.extend(compat);
    serde_json::from_str(&engine(&args)).unwrap()
}

fn keyed(db: &Path) -> assert_cmd::Command {
    with_key(db, KEY)
}

fn assert_migrated(seen: &Value) {
    assert_eq!(seen["plain_header"], false);
    assert_eq!(seen["integrity"], "ok");
    assert_eq!(seen["pointer"], DID_B);
    let settings: Vec<&str> = seen["settings_columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(!settings.contains(&"activeDid") && settings.contains(&"hasBackedUpSeed"));
    assert_eq!(seen["rows"]["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(
        seen["rows"]["accounts_quarantine"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// The app's own tables, as the other engine reads them.
fn legacy_rows(seen: &Value) -> Value {
    let rows = &seen["rows"];
    serde_json::json!([
        rows["accounts"],
        rows["settings"],
        rows["contacts"],
        rows["secret"]
    ])
}

#[test]
fn an_encrypted_legacy_file_made_elsewhere_migrates_rolls_back_and_stays_readable() {
    if !engine_available(
        "an_encrypted_legacy_file_made_elsewhere_migrates_rolls_back_and_stays_readable",
    ) {
        return;
    }
    let dir = TempDir::new().unwrap();
    let db = make(dir.path(), "app.sqlite", None);
    let made = inspect(&db, None);
    assert_eq!(made["plain_header"], false);
    assert!(made["cipher_version"].as_str().unwrap().starts_with('4'));

    // The wrong key changes nothing.
    let before = snapshot(&db);
    let err = fails(idstore(&db).env("IDSTORE_KEY", "wrong").arg("migrate"), 1);
    assert!(err.contains("the key does not open"), "{err}");
    assert_unchanged(&db, &before, "the file");

    keyed(&db)
        .args(["migrate", "--no-backup", "-q"])
        .assert()
        .success();
    assert_migrated(&inspect(&db, None));
    let check = keyed(&db)
        .args(["check", "--json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let check: Value = serde_json::from_slice(&check).unwrap();
    assert!(
        check["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["kind"] == "quarantined_account"),
        "only the decision waiting: {check}"
    );

    keyed(&db)
        .args(["rollback", "--no-backup", "-q"])
        .assert()
        .success();
    let back = inspect(&db, None);
    assert_eq!(back["plain_header"], false);
    assert_eq!(back["integrity"], "ok");
    assert_eq!(
        legacy_rows(&back),
        legacy_rows(&made),
        "every row of the app's tables"
    );
    assert!(
        back["settings_columns"]
            .as_array()
            .unwrap()
            .contains(&Value::from("activeDid"))
    );

    keyed(&db)
        .args(["migrate", "--no-backup", "-q"])
        .assert()
        .success();
    assert_migrated(&inspect(&db, None));
    keyed(&db).args(["status"]).assert().success();
}

#[test]
fn a_sqlcipher_3_file_made_elsewhere_is_found_and_stays_sqlcipher_3() {
    if !engine_available("a_sqlcipher_3_file_made_elsewhere_is_found_and_stays_sqlcipher_3") {
        return;
    }
    let dir = TempDir::new().unwrap();
    let db = make(dir.path(), "v3.sqlite", Some("3"));
    let original = legacy_rows(&inspect(&db, Some("3")));
    // Forced to SQLCipher 4's settings, the key does not open it, and nothing changes.
    let before = snapshot(&db);
    let err = fails(keyed(&db).args(["--sqlcipher-compat", "4", "migrate"]), 1);
    assert!(
        err.contains("SQLCipher 3"),
        "the error names the format: {err}"
    );
    assert_unchanged(&db, &before, "the file");
    // Without the setting its format is found; it is migrated as SQLCipher 3, and
    // its backup is a SQLCipher 3 file under the same key.
    let out = keyed(&db)
        .arg("migrate")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    let backup = text
        .lines()
        .find_map(|l| l.strip_prefix("backup: "))
        .unwrap_or_else(|| panic!("a backup: {text}"));
    assert_migrated(&inspect(&db, Some("3")));
    assert_eq!(
        legacy_rows(&inspect(Path::new(backup), Some("3"))),
        original
    );
    let st = json_of(keyed(&db).arg("status"));
    assert_eq!(st["sqlcipher_format"], 3);

    // rekey keeps SQLCipher 3: the other engine opens it with the new key and
    // SQLCipher 3's settings, and so its backup, which is under the new key too.
    let done = json_of(
        keyed(&db)
            .env("IDSTORE_NEW_KEY", "the rotated passphrase")
            .arg("rekey"),
    );
    assert_eq!(done["sqlcipher_format"], 3, "{done}");
    assert_eq!(done["previous_format"], 3, "{done}");
    let rekeyed = inspect_with(&db, "the rotated passphrase", Some("3"));
    assert_migrated(&rekeyed);
    let backup = PathBuf::from(done["backup"].as_str().unwrap());
    assert_migrated(&inspect_with(&backup, "the rotated passphrase", Some("3")));
    // Upgrading is asked for by name, and said.
    let out = with_key(&db, "the rotated passphrase")
        .env("IDSTORE_NEW_KEY", "the rotated passphrase")
        .args(["--sqlcipher-compat", "4", "rekey", "--no-backup"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("changed from SQLCipher 3 to SQLCipher 4"),
        "{text}"
    );
    let upgraded = inspect_with(&db, "the rotated passphrase", None);
    assert_migrated(&upgraded);
    assert!(
        upgraded["cipher_version"]
            .as_str()
            .unwrap()
            .starts_with('4')
    );

    // encrypt can write SQLCipher 3 for an app configured for it.
    let plain = dir.path().join("plain.sqlite");
    std::fs::copy(&db, &plain).unwrap();
    with_key(&plain, "the rotated passphrase")
        .args(["decrypt", "--no-backup", "-q"])
        .assert()
        .success();
    idstore(&plain)
        .env("IDSTORE_NEW_KEY", KEY)
        .args(["--sqlcipher-compat", "3", "encrypt", "--no-backup", "-q"])
        .assert()
        .success();
    assert_migrated(&inspect(&plain, Some("3")));
}
