//! `idstore quarantine …` from the outside, on the demo file: looking at the
//! quarantined duplicate, restoring or discarding it, secrets kept out of every
//! listing, refusals that change nothing, and `check` pointing to the answer.

use std::path::{Path, PathBuf};

use crate::common::*;
use predicates::str::contains;
use tempfile::TempDir;

/// Key material of the demo's accounts (the duplicate's, then the kept one's).
const DEMO_SECRETS: [&str; 4] = [
    "ZGlmZmVyZW50LWtleQ==",
    "ZGlmZmVyZW50LW1uZW1vbmlj",
    "ZGVtby1pZGVudGl0eS0x",
    "ZGVtby1tbmVtb25pYy0x",
];

/// The demo legacy file, migrated: account:4 is its quarantined duplicate.
fn demo(dir: &Path) -> PathBuf {
    let db = dir.join("demo.sqlite");
    idstore(&db)
        .args(["demo", "legacy"])
        .arg(&db)
        .assert()
        .success();
    idstore(&db)
        .args(["migrate", "-q", "--no-backup"])
        .assert()
        .success();
    db
}

fn backups(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".backup-")
        })
        .count()
}

fn output(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn assert_no_secret(text: &str) {
    for s in DEMO_SECRETS {
        assert!(!text.contains(s), "secret {s} shown: {text}");
    }
}

#[test]
fn check_list_restore_check_exits_0_on_the_demo() {
    let dir = TempDir::new().unwrap();
    let db = demo(dir.path());
    let check = idstore(&db).arg("check").assert().code(1);
    let out = String::from_utf8_lossy(&check.get_output().stdout).into_owned();
    let err = String::from_utf8_lossy(&check.get_output().stderr).into_owned();
    assert!(out.contains("decision waiting"), "{out}");
    assert!(
        out.contains("idstore quarantine restore account:4"),
        "{out}"
    );
    assert!(err.contains("wait for a decision"), "{err}");

    let list = json_of(idstore(&db).args(["quarantine", "list"]));
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["item"], "account:4");
    assert_eq!(items[0]["value"], DID_A);
    assert_eq!(items[0]["waiting"], true);
    assert_eq!(items[0]["kept_account_id"], 1);
    assert!(items[0]["quarantined_at"].is_string());
    let differs = items[0]["differs_from_kept"].as_array().unwrap();
    assert!(differs.contains(&"identityEncrBase64".into()), "{list}");

    let restored = json_of(idstore(&db).args(["quarantine", "restore", "account:4"]));
    assert_eq!(restored["decision"]["decision"], "restore");
    assert_eq!(restored["decision"]["kept_aside"], "account:1");
    assert_eq!(backups(dir.path()), 1, "a backup was written first");
    idstore(&db)
        .arg("check")
        .assert()
        .success()
        .stdout(contains("ok: no problems found"));
    let list = json_of(idstore(&db).args(["quarantine", "list"]));
    assert_eq!(list["items"][0]["item"], "account:1");
    assert_eq!(list["items"][0]["waiting"], false);
    // The active identity (B) and every account are as they were.
    let accounts = json_of(idstore(&db).args(["account", "list"]));
    assert_eq!(accounts["accounts"].as_array().unwrap().len(), 3);
}

#[test]
fn secrets_never_reach_list_show_or_verbose_output() {
    let dir = TempDir::new().unwrap();
    let db = demo(dir.path());
    for args in [
        &["quarantine", "list"][..],
        &["quarantine", "list", "--json"],
        &["quarantine", "list", "-v"],
        &["quarantine", "show", "account:4"],
        &["quarantine", "show", "account:4", "--json"],
        &["quarantine", "show", "account:4", "-v"],
        &["check", "-v"],
        &["repair", "-v", "--json"],
        &["quarantine", "restore", "account:4", "-v"],
        &["quarantine", "show", "account:1", "-v"],
    ] {
        let shown = output(idstore(&db).args(args));
        assert_no_secret(&shown);
    }
    let shown = output(idstore(&db).args(["quarantine", "show", "account:1"]));
    assert!(shown.contains("identityEncrBase64: <redacted>"), "{shown}");

    // --reveal-secrets prints nothing of them to a pipe.
    let err = fails(
        idstore(&db).args(["quarantine", "show", "account:1", "--reveal-secrets"]),
        1,
    );
    assert!(err.contains("only to a terminal"), "{err}");
    assert_no_secret(&err);
}

#[test]
fn reveal_secrets_shows_key_material_on_a_terminal() {
    let dir = TempDir::new().unwrap();
    let db = demo(dir.path());
    if !has_script("reveal_secrets_shows_key_material_on_a_terminal") {
        return;
    }
    let (ok, shown) = on_terminal(&db, "quarantine show account:4 --reveal-secrets", "");
    assert!(ok, "{shown}");
    assert!(shown.contains(DEMO_SECRETS[0]), "{shown}");
}

#[test]
fn discard_exports_to_a_new_owner_only_file_and_refusals_change_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let db = demo(dir.path());
    let export = dir.path().join("account-4.json");
    std::fs::write(&export, "keep me").unwrap();
    // A read-only command leaves an empty -wal beside the file; compare from there.
    idstore(&db).args(["quarantine", "list"]).assert().success();
    let before = snapshot(&db);
    for (args, says) in [
        (
            vec!["quarantine", "discard", "account:4", "--export"],
            "already exists",
        ),
        (
            vec!["quarantine", "discard", "account:4", "--forget"],
            "--force",
        ),
        (
            vec!["quarantine", "restore", "account:9"],
            "not in the quarantine",
        ),
        (
            vec!["quarantine", "restore", "pointer:1"],
            "not in the quarantine",
        ),
    ] {
        let mut cmd = idstore(&db);
        cmd.args(&args);
        if args.contains(&"--export") {
            cmd.arg(&export);
        }
        let err = fails(&mut cmd, 1);
        assert!(err.contains(says), "{args:?}: {err}");
        assert_unchanged(&db, &before, &format!("{args:?} changed the file"));
        assert_eq!(backups(dir.path()), 0, "{args:?} wrote a backup");
    }
    assert_eq!(std::fs::read_to_string(&export).unwrap(), "keep me");
    let err = fails(idstore(&db).args(["quarantine", "show", "account:x"]), 2);
    assert!(err.contains("KIND:ID"), "{err}");
    let err = fails(idstore(&db).args(["quarantine", "discard", "account:4"]), 2);
    assert!(err.contains("--export"), "{err}");

    std::fs::remove_file(&export).unwrap();
    let done = json_of(
        idstore(&db)
            .args(["quarantine", "discard", "account:4", "--export"])
            .arg(&export),
    );
    assert_eq!(done["decision"]["decision"], "discard_export");
    let mode = std::fs::metadata(&export).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    assert_eq!(doc["row"]["identityEncrBase64"], DEMO_SECRETS[0]);
    assert_eq!(doc["row"]["id"], 4);
    idstore(&db).arg("check").assert().success();
    let list = json_of(idstore(&db).args(["quarantine", "list"]));
    assert_eq!(list["items"], serde_json::json!([]));
}

/// A legacy file whose pointer named no account, migrated: `pointer:1` holds it.
fn stray_pointer(dir: &Path) -> PathBuf {
    let db = legacy(dir, "stray.sqlite");
    unguarded(
        &db,
        &format!("UPDATE settings SET activeDid = '{UNKNOWN}' WHERE id = 1;"),
    );
    idstore(&db)
        .args(["migrate", "-q", "--no-backup"])
        .assert()
        .success();
    db
}

#[test]
fn stray_pointers_are_restored_once_they_name_an_account_or_forgotten() {
    let dir = TempDir::new().unwrap();
    let db = stray_pointer(dir.path());
    let err = fails(
        idstore(&db).args(["quarantine", "restore", "pointer:1", "--no-backup"]),
        1,
    );
    assert!(err.contains("names no account"), "{err}");
    idstore(&db)
        .args(["account", "add", UNKNOWN, "--public-key", "02cd", "-q"])
        .assert()
        .success();
    let done = json_of(idstore(&db).args(["quarantine", "restore", "pointer:1", "--no-backup"]));
    assert_eq!(done["decision"]["value"], UNKNOWN);
    let active = json_of(idstore(&db).arg("active"));
    assert_eq!(active["active_did"], UNKNOWN);

    // Forgetting a pointer value needs no --force.
    let dir = TempDir::new().unwrap();
    let db = stray_pointer(dir.path());
    idstore(&db)
        .args([
            "quarantine",
            "discard",
            "pointer:1",
            "--forget",
            "--no-backup",
        ])
        .assert()
        .success()
        .stdout(contains("discarded pointer:1 without an export"));
}

#[test]
fn repair_lists_waiting_decisions_instead_of_saying_nothing_to_fix() {
    let dir = TempDir::new().unwrap();
    let db = demo(dir.path());
    let out = idstore(&db).arg("repair").assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(!text.contains("nothing to fix"), "{text}");
    assert!(text.contains("wait for your decision"), "{text}");
    assert!(
        text.contains("idstore quarantine restore account:4"),
        "{text}"
    );
}

#[test]
fn rollback_after_a_restore_needs_forget_decisions_and_changes_nothing_until_then() {
    let dir = TempDir::new().unwrap();
    let db = demo(dir.path());
    idstore(&db)
        .args(["quarantine", "restore", "account:4", "--no-backup"])
        .assert()
        .success();
    idstore(&db).arg("status").assert().success(); // leaves the empty -wal a read does
    let before = snapshot(&db);
    let err = fails(idstore(&db).args(["rollback", "--no-backup"]), 1);
    assert!(
        err.contains("account:4") && err.contains("--forget-decisions"),
        "{err}"
    );
    assert_unchanged(&db, &before, "the file");
    idstore(&db)
        .args(["rollback", "--no-backup", "--forget-decisions"])
        .assert()
        .success()
        .stderr(contains("record of restore decisions (account:4)"));
    let st = json_of(idstore(&db).arg("status"));
    assert_eq!(st["applied"], serde_json::json!(["00000000000000"]));
}
