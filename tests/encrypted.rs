//! The command on encrypted files: keys from the environment or a file, every
//! command on an encrypted file, wrong and missing keys, and encrypt/rekey/decrypt.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;
use tempfile::TempDir;

const KEY: &str = "a passphrase nobody types on a command line";

fn plain_header(path: &Path) -> bool {
    std::fs::read(path)
        .unwrap()
        .starts_with(b"SQLite format 3\0")
}

/// Every file in `dir` holding `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            std::fs::read(p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        })
        .collect()
}

/// The legacy file, encrypted in place with `KEY` (no backup).
fn encrypted_legacy(dir: &Path) -> PathBuf {
    let db = legacy(dir, "app.sqlite");
    idstore(&db)
        .env("IDSTORE_NEW_KEY", KEY)
        .args(["encrypt", "--no-backup", "-q"])
        .assert()
        .success();
    assert!(!plain_header(&db));
    db
}

#[test]
fn every_command_works_on_an_encrypted_file_which_stays_encrypted() {
    let dir = TempDir::new().unwrap();
    let db = encrypted_legacy(dir.path());
    let steps: &[&[&str]] = &[
        &["migrate", "--no-backup"],
        &["status"],
        &["account", "list"],
        &["account", "add", DID_C, "--public-key", "02cc"],
        &["active", "set", DID_C],
        &["settings", "set", "firstName=Ada-plaintext-marker-7f3a"],
        &["settings", "show"],
        &["quarantine", "list"],
        &["quarantine", "restore", "account:3"],
        &["check"],
        &["repair"],
        &["rollback", "--no-backup", "--forget-decisions"],
        &["migrate", "--no-backup", "--to", "20261125000001"],
        &["migrate"],
        &["status"],
    ];
    for args in steps {
        let out = with_key(&db, KEY)
            .args(*args)
            .arg("--json")
            .assert()
            .success();
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        serde_json::from_str::<Value>(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(!plain_header(&db), "{args:?} left the header plain");
        assert!(!stdout.contains(KEY), "{args:?} printed the key");
    }
    let status = json_of(with_key(&db, KEY).arg("status"));
    assert_eq!(status["encrypted"], true);
    assert_eq!(status["active_did"], DID_C);
    // No table's content in plaintext anywhere: main file, WAL, backup, temporary files.
    // (Long needles: a short one turns up in random ciphertext by chance.)
    for needle in [DID_A, DID_C, "Ada-plaintext-marker-7f3a"] {
        assert_eq!(
            files_holding(dir.path(), needle),
            Vec::<PathBuf>::new(),
            "{needle}"
        );
    }
    // The backup migrate wrote opens with the same key.
    let backups: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".backup-"))
        .collect();
    assert!(!backups.is_empty());
    for b in &backups {
        assert!(!plain_header(b));
        with_key(b, KEY).arg("status").assert().success();
    }
}

#[test]
fn a_wrong_or_missing_key_says_so_in_one_line_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let db = encrypted_legacy(dir.path());
    let before = snapshot(&db);
    for args in [
        &["migrate"][..],
        &["check"],
        &["account", "list"],
        &["rollback"],
    ] {
        let err = fails(with_key(&db, "not the key").args(args), 1);
        assert_eq!(err.lines().count(), 1, "{args:?}: one line only: {err}");
        assert!(err.contains("the key does not open"), "{args:?}: {err}");
        assert!(
            !err.contains("not the key"),
            "the key is never shown: {err}"
        );
        assert!(
            !err.to_lowercase().contains("hmac"),
            "SQLCipher's own log: {err}"
        );
        let err = fails(idstore(&db).args(args), 1);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("is encrypted") && err.contains("IDSTORE_KEY or --key-file"),
            "{args:?}: {err}"
        );
    }
    let out = with_key(&db, "not the key")
        .args(["check", "--json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let doc: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["error"]["kind"], "wrong_key");
    assert_unchanged(&db, &before, "byte for byte unchanged");
    let entries = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(entries, 1, "nothing written beside it");

    // Without a key, status says what it can.
    let status = json_of(idstore(&db).arg("status"));
    assert_eq!(status["encrypted"], true);
    assert_eq!(status["readable"], false);
    let text = idstore(&db)
        .arg("status")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8_lossy(&text).contains("encrypted: yes"));
}

#[test]
fn keys_come_from_the_environment_or_a_file_and_never_show() {
    let dir = TempDir::new().unwrap();
    let db = encrypted_legacy(dir.path());
    let key_file = dir.path().join("key.txt");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let out = idstore(&db)
        .arg("--key-file")
        .arg(&key_file)
        .args(["migrate", "-v", "--no-backup"])
        .assert()
        .success()
        .get_output()
        .clone();
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(KEY));
    }
    // An empty IDSTORE_KEY is no key.
    let err = fails(with_key(&db, "").arg("check"), 1);
    assert!(err.contains("is encrypted"), "{err}");
    // Two sources at once are refused rather than guessed between.
    let err = fails(
        with_key(&db, KEY)
            .arg("--key-file")
            .arg(&key_file)
            .arg("check"),
        1,
    );
    assert!(err.contains("both"), "{err}");
    // There is no command-line option that takes the key itself.
    idstore(&db).args(["--key", KEY, "check"]).assert().code(2);
    // A new database made with a key is encrypted from its first page.
    let fresh = dir.path().join("fresh.sqlite");
    with_key(&fresh, KEY)
        .args(["migrate", "-q"])
        .assert()
        .success();
    assert!(!plain_header(&fresh));
    assert_eq!(
        json_of(with_key(&fresh, KEY).arg("status"))["pending"],
        serde_json::json!([])
    );
    // A key for a plain file is refused.
    let plain = legacy(dir.path(), "plain.sqlite");
    let err = fails(with_key(&plain, KEY).arg("check"), 1);
    assert!(err.contains("is not encrypted"), "{err}");
}

#[test]
fn encrypt_rekey_and_decrypt_round_trip_every_table() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "app.sqlite");
    idstore(&db)
        .args(["migrate", "-q", "--no-backup"])
        .assert()
        .success();
    let accounts = json_of(idstore(&db).args(["account", "list"]));
    let settings = json_of(idstore(&db).args(["settings", "show"]));

    let done = json_of(idstore(&db).env("IDSTORE_NEW_KEY", KEY).arg("encrypt"));
    assert_eq!(done["encrypted"], true);
    let backup = PathBuf::from(done["backup"].as_str().unwrap());
    assert!(plain_header(&backup), "the backup is the plain original");
    assert!(!backup.to_string_lossy().contains(KEY));
    assert_eq!(
        json_of(with_key(&db, KEY).args(["account", "list"])),
        accounts
    );

    let new_key_file = dir.path().join("new.key");
    std::fs::write(&new_key_file, "second key\n").unwrap();
    let done = json_of(
        with_key(&db, KEY)
            .arg("rekey")
            .arg("--new-key-file")
            .arg(&new_key_file),
    );
    let backup = PathBuf::from(done["backup"].as_str().unwrap());
    with_key(&backup, KEY).arg("status").assert().success();
    fails(with_key(&db, KEY).arg("check"), 1);
    assert_eq!(
        json_of(with_key(&db, "second key").args(["settings", "show"])),
        settings
    );

    json_of(with_key(&db, "second key").arg("decrypt"));
    assert!(plain_header(&db));
    assert_eq!(json_of(idstore(&db).args(["account", "list"])), accounts);
    idstore(&db).arg("status").assert().success();
    // Refusals: encrypt needs a plain file, rekey and decrypt a key.
    fails(
        with_key(&db, KEY)
            .env("IDSTORE_NEW_KEY", "x")
            .arg("encrypt"),
        1,
    );
    fails(idstore(&db).env("IDSTORE_NEW_KEY", "x").arg("rekey"), 1);
    fails(idstore(&db).arg("decrypt"), 1);
}
