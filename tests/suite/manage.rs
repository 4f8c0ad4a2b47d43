//! Managing identities and settings with the `idstore` binary, and every kind of bad
//! input: a clear error, exit 1 or 2, and the file byte for byte as it was.

use crate::common::*;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use predicates::str::contains;
use serde_json::json;
use tempfile::TempDir;

#[test]
fn accounts_are_added_listed_and_removed_with_the_pointer_following() {
    let dir = TempDir::new().unwrap();
    let db = migrated(dir.path());
    let added = json_of(idstore(&db).args([
        "account",
        "add",
        UNKNOWN,
        "--public-key",
        "03cd",
        "--derivation-path",
        "m/1",
        "--date",
        "2025-01-01T00:00:00.000Z",
    ]));
    assert_eq!(
        added,
        json!({ "did": UNKNOWN, "date_created": "2025-01-01T00:00:00.000Z" })
    );
    let list = json_of(idstore(&db).args(["account", "list"]));
    let rows = list["accounts"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[1],
        json!({ "did": DID_B, "date_created": "2024-03-02T12:00:00Z", "active": true })
    );
    assert!(
        rows.iter().all(|r| r.as_object().unwrap().len() == 3),
        "no secret material, nothing else"
    );

    let removed = json_of(idstore(&db).args(["account", "remove", DID_B]));
    assert_eq!(
        removed,
        json!({ "removed": DID_B, "active_did": DID_C }),
        "the next by (dateCreated, did)"
    );
    for did in [DID_A, DID_C] {
        idstore(&db)
            .args(["account", "remove", did])
            .assert()
            .success();
    }
    let err = fails(idstore(&db).args(["account", "remove", UNKNOWN]), 1);
    assert!(
        err.contains("last account") && err.contains("--allow-last"),
        "{err}"
    );
    let removed = json_of(idstore(&db).args(["account", "remove", UNKNOWN, "--allow-last"]));
    assert_eq!(removed["active_did"], serde_json::Value::Null);
    idstore(&db)
        .args(["account", "list"])
        .assert()
        .success()
        .stdout("no accounts\n");
}

#[test]
fn the_active_identity_is_shown_switched_and_cleared() {
    let dir = TempDir::new().unwrap();
    let db = migrated(dir.path());
    let shown = json_of(idstore(&db).arg("active"));
    assert_eq!(shown["active_did"], DID_B);
    assert!(shown["last_updated"].as_str().unwrap().starts_with("20"));
    let set = json_of(idstore(&db).args(["active", "set", DID_C]));
    assert_eq!(set["active_did"], DID_C);
    idstore(&db)
        .arg("active")
        .assert()
        .success()
        .stdout(format!("active identity: {DID_C}\n"));
    let cleared = json_of(idstore(&db).args(["active", "clear"]));
    assert_eq!(cleared["active_did"], serde_json::Value::Null);
    idstore(&db)
        .arg("active")
        .assert()
        .success()
        .stdout("no active identity\n");
}

#[test]
fn settings_are_shown_set_and_unset_with_legacy_names() {
    let dir = TempDir::new().unwrap();
    let db = migrated(dir.path());
    let set = json_of(idstore(&db).args([
        "settings",
        "set",
        "firstName=Ada",
        "isRegistered=true",
        "passkeyExpirationMinutes=30",
    ]));
    assert_eq!(
        (
            set["firstName"].clone(),
            set["isRegistered"].clone(),
            set["passkeyExpirationMinutes"].clone()
        ),
        (json!("Ada"), json!(true), json!(30))
    );
    assert_eq!(set["apiServer"], "https://api.endorser.ch");
    assert_eq!(
        set.as_object().unwrap().len(),
        27,
        "every legacy field, activeDid aside"
    );

    let over = json_of(idstore(&db).args(["settings", "set", "firstName=Bea", "--account", DID_B]));
    assert_eq!(over["firstName"], "Bea");
    assert_eq!(
        over["isRegistered"],
        serde_json::Value::Null,
        "an override row holds only its own values"
    );
    let merged = json_of(idstore(&db).args(["settings", "show", "--merged"]));
    assert_eq!(
        (merged["firstName"].clone(), merged["isRegistered"].clone()),
        (json!("Bea"), json!(true)),
        "B is active"
    );
    let merged_c = json_of(idstore(&db).args(["settings", "show", "--merged", "--account", DID_C]));
    assert_eq!(merged_c["firstName"], "Ada");
    let master = json_of(idstore(&db).args(["settings", "show"]));
    assert_eq!(master["firstName"], "Ada");

    let unset = json_of(idstore(&db).args(["settings", "unset", "firstName", "--account", DID_B]));
    assert_eq!(unset["firstName"], serde_json::Value::Null);
    let merged = json_of(idstore(&db).args(["settings", "show", "--merged"]));
    assert_eq!(
        merged["firstName"], "Ada",
        "NULL falls back to the master value"
    );
    idstore(&db)
        .args(["settings", "show"])
        .assert()
        .success()
        .stdout(contains("firstName = \"Ada\""));
}

#[test]
fn check_and_repair_report_in_json_and_check_exits_1_on_problems() {
    let dir = TempDir::new().unwrap();
    let db = migrated(dir.path());
    assert_eq!(
        json_of(idstore(&db).arg("check")),
        json!({ "ok": true, "problems": [], "omitted": {} })
    );
    unguarded(&db, &format!("DELETE FROM accounts WHERE did = '{DID_B}';"));
    let out = idstore(&db)
        .args(["check", "--json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["problems"][0]["kind"], "dangling_pointer");
    assert!(
        report["problems"][0]["detail"]
            .as_str()
            .unwrap()
            .contains(DID_B)
    );
    let text = fails(idstore(&db).arg("check"), 1);
    assert!(text.contains("idstore repair"), "{text}");

    let repaired = json_of(idstore(&db).arg("repair"));
    assert_eq!(repaired["fixed"][0]["kind"], "dangling_pointer");
    assert_eq!(
        repaired["left"][0]["kind"], "quarantined_pointer",
        "the old value waits for a decision"
    );
    assert_eq!(json_of(idstore(&db).arg("active"))["active_did"], DID_A);
}

#[test]
fn check_works_on_a_legacy_file_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "legacy.sqlite");
    let before = snapshot(&db);
    let out = idstore(&db)
        .args(["check", "--json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["needs_migration", "duplicate_did"]);
    assert_unchanged(&db, &before, "the file changed");
}

#[test]
fn demo_legacy_writes_a_legacy_file_and_never_overwrites() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("demo.sqlite");
    let out = json_of(idstore(&db).args(["demo", "legacy"]).arg(&db));
    assert_eq!(out["accounts"].as_array().unwrap().len(), 3);
    let st = json_of(idstore(&db).arg("status"));
    assert_eq!(
        (
            st["legacy"].clone(),
            st["accounts"].clone(),
            st["active_did"].clone()
        ),
        (json!(true), json!(4), out["active_did"].clone())
    );
    let before = snapshot(&db);
    let err = fails(idstore(&db).args(["demo", "legacy"]).arg(&db), 1);
    assert!(err.contains("already exists"), "{err}");
    assert_unchanged(&db, &before, "the file changed");
}

#[test]
fn commands_refuse_a_database_that_needs_migrating_and_leave_it_alone() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "legacy.sqlite");
    let before = snapshot(&db);
    let commands: [&[&str]; 7] = [
        &["account", "list"],
        &["account", "add", DID_C, "--public-key", "02"],
        &["active"],
        &["active", "set", DID_A],
        &["settings", "show"],
        &["settings", "set", "firstName=x"],
        &["repair"],
    ];
    for args in commands {
        let err = fails(idstore(&db).args(args), 1);
        assert!(
            err.contains("needs migrating") && err.contains("idstore migrate"),
            "{args:?}: {err}"
        );
        assert_unchanged(&db, &before, &format!("{args:?} changed the file"));
    }
    assert!(!dir.path().join("legacy.sqlite-wal").exists());
}

#[test]
fn bad_input_is_refused_clearly_and_the_file_is_unchanged() {
    let dir = TempDir::new().unwrap();
    let db = migrated(dir.path());
    let before = snapshot(&db);
    let huge = format!("firstName={}", "x".repeat(100_000));
    let usage: [(&[&str], &str); 7] = [
        (&["active", "set", "did:ethr:0x12"], "40 hex digits"),
        (&["active", "set", "did:none:HIDDEN"], "placeholder"),
        (
            &["active", "set", "did:ethr:0xAbC' OR 1=1;--"],
            "whitespace",
        ),
        (
            &["account", "add", "not-a-did", "--public-key", "02"],
            "not a DID",
        ),
        (
            &["settings", "set", "isRegistered=maybe"],
            "takes a boolean",
        ),
        (
            &["settings", "set", "passkeyExpirationMinutes=ten"],
            "32-bit integer",
        ),
        (&["settings", "set", &huge], "at most 65536 bytes"),
    ];
    for (args, says) in usage {
        let err = fails(idstore(&db).args(args), 2);
        assert!(err.contains(says), "{args:.40?}: {err}");
    }
    let err = fails(idstore(&db).args(["settings", "set", "activeDid=x"]), 2);
    assert!(err.contains("valid settings are: apiServer"), "{err}");
    let refused: [(&[&str], &str); 5] = [
        (&["active", "set", UNKNOWN], "no account has DID"),
        (
            &["active", "set", UNKNOWN],
            "`idstore account list` shows the known ones",
        ),
        (
            &["settings", "set", "firstName=x", "--account", UNKNOWN],
            "no account has DID",
        ),
        (
            &["account", "add", DID_A, "--public-key", "02"],
            "already exists",
        ),
        (&["account", "add", UNKNOWN, "--public-key", "zz"], "hex"),
    ];
    for (args, says) in refused {
        let err = fails(idstore(&db).args(args), 1);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_unchanged(&db, &before, "the file changed");
}

#[test]
fn paths_that_cannot_be_used_are_refused() {
    let dir = TempDir::new().unwrap();
    // A directory.
    let err = fails(idstore(dir.path()).arg("status"), 1);
    assert!(err.contains("is a directory"), "{err}");
    // Missing parent folders on commands that must not create.
    let nested = dir.path().join("no/such/folder/app.sqlite");
    for args in [
        &["status"][..],
        &["account", "list"],
        &["active", "set", DID_A],
        &["rollback"],
    ] {
        let err = fails(idstore(&nested).args(args), 1);
        assert!(err.contains("no database at"), "{args:?}: {err}");
    }
    let err = fails(idstore(&nested).arg("migrate"), 1);
    assert!(err.contains("does not exist; create it first"), "{err}");
    assert!(!dir.path().join("no").exists());
    // Random bytes.
    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, [0x5au8; 4096]).unwrap();
    for args in [
        &["status"][..],
        &["migrate"],
        &["check"],
        &["account", "list"],
    ] {
        let err = fails(idstore(&junk).args(args), 1);
        assert!(err.contains("not an SQLite database"), "{err}");
    }
    assert!(
        std::fs::read(&junk).unwrap() == vec![0x5au8; 4096],
        "the file changed"
    );
}

#[test]
fn a_read_only_file_is_refused_for_writes_but_can_be_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let db = migrated(dir.path());
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o400)).unwrap();
    let before = snapshot(&db);
    for args in [
        &["active", "set", DID_A][..],
        &["settings", "set", "firstName=x"],
        &["migrate"],
        &["rollback"],
    ] {
        let err = fails(idstore(&db).args(args), 1);
        assert!(err.contains("read-only"), "{args:?}: {err}");
    }
    assert_eq!(json_of(idstore(&db).arg("active"))["active_did"], DID_B);
    assert_unchanged(&db, &before, "the file changed");
}

#[test]
fn a_database_locked_by_another_program_fails_after_the_busy_timeout() {
    let dir = TempDir::new().unwrap();
    let db = migrated(dir.path());
    let before = snapshot(&db);
    let mut holder = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    holder.batch_execute("BEGIN EXCLUSIVE;").unwrap();
    let started = std::time::Instant::now();
    let err = fails(
        idstore(&db).args(["active", "set", DID_A, "--busy-timeout", "200"]),
        1,
    );
    assert!(
        err.contains("database is locked") && err.contains("--busy-timeout"),
        "{err}"
    );
    assert_eq!(
        err.matches("database is locked").count(),
        1,
        "each cause is printed once: {err}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(200),
        "it waited for the lock first"
    );
    holder.batch_execute("ROLLBACK;").unwrap();
    drop(holder);
    assert_unchanged(&db, &before, "the file changed");
    assert_eq!(json_of(idstore(&db).arg("active"))["active_did"], DID_B);
}

#[test]
fn a_database_from_a_newer_idstore_is_refused_by_every_command() {
    let dir = TempDir::new().unwrap();
    let db = migrated(dir.path());
    {
        let mut conn = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
        conn.batch_execute(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('29990101000000');",
        )
        .unwrap();
    }
    let before = snapshot(&db);
    for args in [
        &["account", "list"][..],
        &["active", "set", DID_A],
        &["check"],
        &["repair"],
        &["settings", "show"],
    ] {
        let err = fails(idstore(&db).args(args), 1);
        assert!(err.contains("newer idstore"), "{args:?}: {err}");
    }
    assert_unchanged(&db, &before, "the file changed");
}

#[test]
fn without_a_terminal_migrate_prints_no_progress() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "legacy.sqlite");
    idstore(&db)
        .args(["migrate", "--full-check"])
        .assert()
        .success()
        .stderr("");
    assert_eq!(json_of(idstore(&db).arg("status"))["pending"], json!([]));
}

#[test]
fn on_a_terminal_migrate_shows_its_steps_on_stderr() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "legacy.sqlite");
    if !has_script("on_a_terminal_migrate_shows_its_steps_on_stderr") {
        return;
    }
    let (ok, shown) = on_terminal(&db, "migrate --no-backup", ">/dev/null");
    assert!(ok, "{shown}");
    assert!(shown.contains("[1/4] applying 00000000000000"), "{shown}");
    assert!(shown.contains("[4/4] validating"), "{shown}");
}

/// Switching a rollback-journal file to WAL needs an exclusive lock, for which SQLite
/// does not wait on its own: idstore retries until its busy timeout, so a program
/// that holds a write lock for a moment no longer makes `migrate` fail at once.
#[test]
fn the_busy_timeout_covers_the_switch_to_wal() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "legacy.sqlite");
    let mut holder = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    holder
        .batch_execute("BEGIN IMMEDIATE; UPDATE settings SET firstName = 'held' WHERE id = 1;")
        .unwrap();
    // idstore starts while the lock is held, says (with -v) that it waits for it,
    // and only then is the lock released: the run must have waited for it.
    let mut run = std::process::Command::new(assert_cmd::cargo::cargo_bin("idstore"))
        .arg("--db")
        .arg(&db)
        .args(["--busy-timeout", "20000", "-v", "migrate", "--no-backup"])
        .env_remove("IDSTORE_DB")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(run.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(n > 0, "idstore ended without waiting for the lock: {seen}");
        seen.push_str(&line);
        if line.contains("holds a lock on the database; waiting for it") {
            break;
        }
    }
    holder.batch_execute("COMMIT;").unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    assert!(run.wait().unwrap().success(), "{seen}");
    let st = json_of(idstore(&db).arg("status"));
    assert_eq!(st["pending"], serde_json::json!([]));
    let merged = json_of(idstore(&db).args(["settings", "show"]));
    assert_eq!(
        merged["firstName"], "held",
        "the other program's write is kept"
    );

    // A lock held past the timeout still fails, saying what to do.
    let db2 = legacy(dir.path(), "legacy2.sqlite");
    let mut holder = SqliteConnection::establish(db2.to_str().unwrap()).unwrap();
    holder
        .batch_execute("BEGIN IMMEDIATE; UPDATE settings SET firstName = 'x' WHERE id = 1;")
        .unwrap();
    let err = fails(
        idstore(&db2).args(["--busy-timeout", "300", "migrate", "--no-backup"]),
        1,
    );
    assert!(
        err.contains("database is locked") && err.contains("--busy-timeout"),
        "{err}"
    );
    holder.batch_execute("ROLLBACK;").unwrap();
}

/// `check` prints up to ten problems of a kind and counts the rest; `--all` prints
/// every one, a line each (a JSON object a line with `--json`).
#[test]
fn check_summarises_many_problems_and_all_lists_every_one() {
    let dir = TempDir::new().unwrap();
    let db = migrated(dir.path());
    unguarded(
        &db,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO settings (accountDid, firstName) SELECT NULL, 'o' || i FROM n;",
    );
    let out = idstore(&db).arg("check").assert().code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("extra_null_account_row:"))
            .count(),
        10
    );
    assert!(
        text.contains("… and 490 more extra_null_account_row problem(s)"),
        "{text}"
    );
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("500 problem(s) found"), "{err}");

    let out = idstore(&db).args(["check", "--all"]).assert().code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("extra_null_account_row:"))
            .count(),
        500
    );

    let out = idstore(&db)
        .args(["check", "--all", "--json"])
        .assert()
        .code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let docs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 500);
    assert!(docs.iter().all(|d| d["kind"] == "extra_null_account_row"));

    let out = idstore(&db).args(["check", "--json"]).assert().code(1);
    let summary: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(summary["omitted"]["extra_null_account_row"], 490);
}

/// What the app's ordinary use leaves is a notice, not a problem: its smart deletion
/// of the active account (re-point, then delete) leaves that account's override row;
/// `check` names it as a notice and exits 0, and JSON says `ok`.
#[test]
fn the_apps_ordinary_leftovers_are_notices_that_do_not_fail_check() {
    let dir = TempDir::new().unwrap();
    let db = migrated(dir.path());
    idstore(&db).args(["check"]).assert().success();
    let out = idstore(&db).args(["status", "--json"]).assert().success();
    let status: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let active = status["active_did"].as_str().unwrap().to_owned();
    // The app's own statements: an override row for the active account, then its
    // deletion the app's way (re-point to another account first).
    let mut app = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    app.batch_execute(
        &format!(
            "INSERT INTO settings (accountDid, firstName) VALUES ('{active}', 'Mine');
             UPDATE active_identity SET activeDid = (SELECT did FROM accounts WHERE did <> '{active}' ORDER BY id LIMIT 1), lastUpdated = datetime('now') WHERE id = 1;
             DELETE FROM accounts WHERE did = '{active}';"
        ),
    )
    .unwrap();
    drop(app);
    let out = idstore(&db).arg("check").assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.lines()
            .any(|l| l.starts_with("notice (orphan_override):") && l.contains("harmless")),
        "{text}"
    );
    assert!(
        text.contains("ok: no problems found (1 notice(s) only)"),
        "{text}"
    );
    let out = idstore(&db).args(["check", "--json"]).assert().success();
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["problems"][0]["kind"], "orphan_override", "{doc}");
    assert_eq!(
        doc["problems"][0]["notice"], true,
        "a notice says so in JSON: {doc}"
    );
    idstore(&db).args(["check", "--all"]).assert().success();
    // Damage still fails it.
    unguarded(
        &db,
        "INSERT INTO settings (accountDid, firstName) VALUES (NULL, 'stray');",
    );
    idstore(&db).arg("check").assert().code(1);
}
