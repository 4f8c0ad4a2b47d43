//! The `idstore` binary from the outside, as an operator runs it, on temp files.

use std::path::PathBuf;

use crate::common::*;
use assert_cmd::Command;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use predicates::str::contains;
use serde_json::Value;
use tempfile::TempDir;

#[test]
fn migrate_adopts_a_legacy_file_with_a_private_backup_and_reports_in_json() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "legacy.sqlite");
    let before = std::fs::read(&db).unwrap();

    let status = json_of(idstore(&db).arg("status"));
    assert_eq!(status["legacy"], true);
    assert_eq!(status["pending"].as_array().unwrap().len(), 3);
    assert_eq!(status["active_did"], DID_B);
    assert_eq!(status["accounts"], 3);
    assert!(
        std::fs::read(&db).unwrap() == before,
        "status writes nothing"
    );

    let report = json_of(idstore(&db).arg("migrate"));
    assert_eq!(report["applied"].as_array().unwrap().len(), 3);
    assert_eq!(report["active_did"], DID_B);
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["errors"], serde_json::json!([]));
    assert_eq!(
        report["data_migrated"], 2,
        "the pointer and one quarantined account"
    );
    let kinds: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "added_legacy_column",
            "recorded_app_step",
            "quarantined_account"
        ]
    );

    let backup = PathBuf::from(report["backup"].as_str().unwrap());
    assert_eq!(
        backup.parent(),
        db.parent(),
        "the backup sits next to the file"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let old = json_of(idstore(&backup).arg("status"));
    assert_eq!(old["legacy"], true, "the backup holds the file as it was");
    assert_eq!(old["accounts"], 3);

    let now = json_of(idstore(&db).arg("status"));
    assert_eq!(
        (
            now["legacy"].clone(),
            now["pending"].clone(),
            now["accounts"].clone()
        ),
        (Value::Bool(false), serde_json::json!([]), 2.into())
    );
}

#[test]
fn dry_run_changes_nothing_and_says_so() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "legacy.sqlite");
    let report = json_of(idstore(&db).args(["migrate", "--dry-run"]));
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["backup"], Value::Null);
    assert_eq!(report["applied"].as_array().unwrap().len(), 3);
    assert_eq!(json_of(idstore(&db).arg("status"))["legacy"], true);
    idstore(&db)
        .args(["migrate", "--dry-run"])
        .assert()
        .success()
        .stdout(contains("dry run"));
}

#[test]
fn rollback_stops_above_the_baseline_and_refuses_to_drop_user_data() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "legacy.sqlite");
    idstore(&db)
        .args(["migrate", "--no-backup", "-q"])
        .assert()
        .success()
        .stdout("");
    let back = json_of(idstore(&db).args(["rollback", "--no-backup"]));
    assert_eq!(
        back["reverted"],
        serde_json::json!(["20261206000002", "20261206000001"])
    );
    assert_eq!(back["active_did"], DID_B, "settings.activeDid is back");
    let st = json_of(idstore(&db).arg("status"));
    assert_eq!(st["applied"], serde_json::json!(["00000000000000"]));
    assert_eq!(
        st["accounts"], 3,
        "the quarantined duplicate is back in accounts"
    );

    let before = std::fs::read(&db).unwrap();
    let out = idstore(&db)
        .args(["rollback", "--steps", "1"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("--include-baseline"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    let out = idstore(&db)
        .args(["rollback", "--include-baseline"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("idstore:holds_user_data: "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "refusals change nothing and write no backup"
    );
    let backups = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".backup-")
        })
        .count();
    assert_eq!(backups, 0);
}

#[test]
fn bad_input_fails_clearly_and_leaves_the_file_alone() {
    let dir = TempDir::new().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not a database").unwrap();
    for cmd in ["migrate", "status", "rollback"] {
        let out = idstore(&notes)
            .arg(cmd)
            .assert()
            .code(1)
            .get_output()
            .clone();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error: ") && err.contains("not an SQLite database"),
            "{cmd}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "not a database");

    let missing = dir.path().join("nope.sqlite");
    let out = idstore(&missing)
        .arg("status")
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("idstore migrate"));
    assert!(!missing.exists(), "status does not create an explicit --db");

    idstore(dir.path())
        .arg("migrate")
        .assert()
        .code(1)
        .stderr(contains("is a directory"));
    idstore(&missing)
        .args(["migrate", "--to", "123"])
        .assert()
        .code(1)
        .stderr(contains("no migration has version 123"));
    idstore(&missing).arg("frobnicate").assert().code(2);
    idstore(&missing)
        .args(["rollback", "--to", "1", "--steps", "2"])
        .assert()
        .code(2);
}

#[test]
fn with_no_arguments_it_uses_a_default_database_in_the_data_folder() {
    let home = TempDir::new().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::cargo_bin("idstore").unwrap();
        cmd.env_remove("IDSTORE_DB")
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .args(args);
        cmd
    };
    let st = json_of(&mut run(&["status"]));
    let path = PathBuf::from(st["database"].as_str().unwrap());
    assert_eq!(path, home.path().join("data/idstore/idstore.sqlite"));
    assert_eq!(st["exists"], false);
    assert!(!path.exists(), "a read creates nothing");
    run(&["migrate"])
        .assert()
        .success()
        .stdout(contains("applied 20261206000002"));
    assert_eq!(
        json_of(&mut run(&["status"]))["pending"],
        serde_json::json!([])
    );
    // IDSTORE_DB overrides the default.
    let other = home.path().join("other.sqlite");
    run(&["migrate", "-q"])
        .env("IDSTORE_DB", &other)
        .assert()
        .success();
    assert!(other.exists());
}

#[test]
fn a_database_from_a_newer_idstore_is_refused() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("new.sqlite");
    idstore(&db).args(["migrate", "-q"]).assert().success();
    {
        let mut conn = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
        conn.batch_execute(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('29990101000000');",
        )
        .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    idstore(&db)
        .arg("migrate")
        .assert()
        .code(1)
        .stderr(contains("newer idstore"));
    idstore(&db)
        .arg("rollback")
        .assert()
        .code(1)
        .stderr(contains("newer idstore"));
    assert!(std::fs::read(&db).unwrap() == before, "the file changed");
}

/// Runs `idstore --db DB ARGS` with a stdout whose reader is gone before the first write.
fn with_closed_stdout(db: &std::path::Path, args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    std::process::Command::new(assert_cmd::cargo::cargo_bin("idstore"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("IDSTORE_DB")
        .stdout(writer)
        .output()
        .unwrap()
}

/// Every command whose reader went away (`idstore … | head -1`) ends quietly: its own
/// exit status, no panic, no backtrace, nothing on stderr; with `--json` too.
#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let dir = TempDir::new().unwrap();
    let db = migrated(dir.path());
    let demo = dir.path().join("demo.sqlite");
    let commands: Vec<(Vec<&str>, i32)> = vec![
        (vec!["status"], 0),
        (vec!["check"], 0),
        (vec!["migrate"], 0),
        (vec!["account", "list"], 0),
        (vec!["active"], 0),
        (vec!["settings", "show", "--merged"], 0),
        (vec!["settings", "set", "firstName=Ada"], 0),
        (vec!["quarantine", "list"], 0),
        (vec!["repair"], 0),
        (vec!["rollback", "--dry-run"], 0),
    ];
    let mut runs = 0;
    for (args, code) in &commands {
        for json in [false, true] {
            let mut args = args.clone();
            if json {
                args.push("--json");
            }
            let out = with_closed_stdout(&db, &args);
            assert_eq!(out.status.code(), Some(*code), "{args:?} json={json}");
            assert!(
                out.stderr.is_empty(),
                "{args:?} json={json}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            runs += 1;
        }
    }
    // A check that finds problems keeps its exit status 1.
    idstore(&demo)
        .args(["demo", "legacy"])
        .arg(&demo)
        .assert()
        .success();
    let out = with_closed_stdout(&demo, &["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(runs >= 20);
}

/// A file stopped at the transition step (`migrate --to 20261206000001`) is served
/// by every command, and `status` says where it is and what the next step removes.
#[test]
fn every_command_serves_a_file_paused_at_the_transition_step() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "paused.sqlite");
    idstore(&db)
        .args(["migrate", "--to", "20261206000001", "-q", "--no-backup"])
        .assert()
        .success();
    let st = json_of(idstore(&db).arg("status"));
    assert_eq!(st["paused_at"], "20261206000001");
    assert_eq!(st["servable"], true);
    assert_eq!(st["next_step"]["version"], "20261206000002");
    assert!(
        st["next_step"]["does"]
            .as_str()
            .unwrap()
            .contains("removes settings.activeDid"),
        "{st}"
    );
    idstore(&db)
        .arg("status")
        .assert()
        .success()
        .stdout(contains("paused at 20261206000001"));
    for args in [
        &["active"][..],
        &["active", "set", DID_A],
        &["account", "list"],
        &["account", "add", DID_C, "--public-key", "02cd"],
        &["settings", "set", "firstName=Ada"],
        &["settings", "set", "lastName=L", "--account", DID_A],
        &["settings", "show", "--merged"],
        &["settings", "unset", "lastName", "--account", DID_A],
        &["account", "remove", DID_A],
        &["quarantine", "list"],
        &["repair"],
    ] {
        idstore(&db).args(args).assert().success();
    }
    // The old column followed every switch.
    let active = json_of(idstore(&db).arg("active"));
    let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    #[derive(diesel::QueryableByName)]
    struct V {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        v: Option<String>,
    }
    let legacy: V = diesel::sql_query("SELECT activeDid AS v FROM settings WHERE id = 1")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(
        Some(legacy.v.unwrap()),
        active["active_did"].as_str().map(str::to_owned)
    );
    // The duplicate A was quarantined; check waits for that decision only.
    let out = idstore(&db).args(["check", "--json"]).assert().code(1);
    let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    for p in report["problems"].as_array().unwrap() {
        assert!(p["item"].is_string(), "only decisions wait: {report}");
    }
}

/// Under `--json` a failure prints one JSON document on stdout, `{"error": {"kind",
/// "message"}}`, with a stable kind a script can tell apart (and the error line on
/// stderr as always).
#[test]
fn failures_under_json_print_one_document_with_a_stable_kind() {
    let dir = TempDir::new().unwrap();
    let db = migrated(dir.path());
    let legacy = legacy(dir.path(), "legacy.sqlite");
    let missing = dir.path().join("missing.sqlite");
    let mut holder = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    let cases: Vec<(&std::path::Path, Vec<&str>, &str)> = vec![
        (&db, vec!["active", "set", UNKNOWN], "unknown_account"),
        (&missing, vec!["status"], "not_found"),
        (&legacy, vec!["active"], "needs_migration"),
        (
            &db,
            vec!["quarantine", "restore", "account:99"],
            "not_quarantined",
        ),
        (
            &db,
            vec!["rollback", "--to", "20990101000000"],
            "unknown_version",
        ),
        (
            &db,
            vec!["account", "add", DID_A, "--public-key", "02"],
            "account_exists",
        ),
        (
            &db,
            vec!["active", "set", DID_B, "--busy-timeout", "100"],
            "locked",
        ),
    ];
    for (path, args, kind) in cases {
        if kind == "locked" {
            holder.batch_execute("BEGIN EXCLUSIVE;").unwrap();
        }
        let out = idstore(path).args(&args).arg("--json").output().unwrap();
        if kind == "locked" {
            holder.batch_execute("ROLLBACK;").unwrap();
        }
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: one JSON document: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        assert_eq!(doc["error"]["kind"], kind, "{args:?}: {doc}");
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(!message.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end(), format!("error: {message}"), "{args:?}");
    }
}

/// The man page and shell completions come from the same clap definitions as the
/// command, so every subcommand and global option is in them.
#[test]
fn the_man_page_and_completions_are_generated_from_the_command() {
    let run = |what: &str| {
        let out = Command::cargo_bin("idstore")
            .unwrap()
            .args(["generate", what])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap()
    };
    let man = run("man");
    assert!(man.contains(".TH idstore 1"), "{man}");
    for sub in [
        "migrate",
        "rollback",
        "check",
        "repair",
        "quarantine",
        "settings",
    ] {
        assert!(man.contains(sub), "man page lists {sub}");
    }
    let bash = run("complete-bash");
    assert!(
        bash.contains("--busy-timeout") && bash.contains("quarantine"),
        "{bash}"
    );
    assert!(run("complete-zsh").starts_with("#compdef idstore"));
    assert!(run("complete-fish").contains("complete -c idstore"));
}

/// `-v` shows the library's own reports (through `tracing`): each migration step,
/// each quarantined value, each decision; never key material.
#[test]
fn verbose_shows_the_librarys_reports() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "verbose.sqlite");
    let out = idstore(&db)
        .args(["migrate", "-v", "--no-backup"])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("migration step") && err.contains("20261206000002"),
        "{err}"
    );
    assert!(
        err.contains("account quarantined") && err.contains("account:3"),
        "{err}"
    );
    let out = idstore(&db)
        .args(["quarantine", "restore", "account:3", "-v", "--no-backup"])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("quarantine decision"), "{err}");
    // The demo's key material of account 3 ('a2') never shows.
    assert!(!err.contains("a2'") && !err.contains("\"a2\""), "{err}");
    let quiet = idstore(&db).arg("status").assert().success();
    assert!(
        quiet.get_output().stderr.is_empty(),
        "no reports without -v"
    );
}

/// When the file has no `migrations (name, applied_at)` table of the app's, or one
/// of another shape, `migrate` cannot record its steps where the app's service
/// looks, and says so, in text and in JSON, naming the steps to record; with the
/// app's own table it records them and says nothing.
#[test]
fn migrate_warns_when_the_apps_bookkeeping_cannot_record_its_steps() {
    let dir = TempDir::new().unwrap();
    for (name, setup, found) in [
        (
            "none.sqlite",
            "DROP TABLE migrations;",
            "has no migrations table",
        ),
        (
            "other.sqlite",
            "DROP TABLE migrations; CREATE TABLE migrations (id INTEGER PRIMARY KEY, step TEXT);",
            "has the columns (id, step)",
        ),
    ] {
        let db = legacy(dir.path(), name);
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(setup)
            .unwrap();
        let copy = dir.path().join(format!("json-{name}"));
        std::fs::copy(&db, &copy).unwrap();
        let out = idstore(&db)
            .args(["migrate", "--no-backup"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("warning: the app's migration service cannot see these steps (idstore_2026-12-06-000001_active_identity, idstore_2026-12-06-000002_drop_settings_active_did)")
                && text.contains(found)
                && text.contains("idstore:already_applied"),
            "{name}: {text}"
        );
        let report = json_of(idstore(&copy).args(["migrate", "--no-backup"]));
        let warning = report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["kind"] == "unrecorded_app_steps")
            .unwrap_or_else(|| panic!("{name}: {report}"));
        assert_eq!(warning["table"], "migrations");
        assert_eq!(
            warning["names"],
            serde_json::json!([
                "idstore_2026-12-06-000001_active_identity",
                "idstore_2026-12-06-000002_drop_settings_active_did"
            ])
        );
    }
    let db = legacy(dir.path(), "app.sqlite");
    let report = json_of(idstore(&db).args(["migrate", "--no-backup"]));
    assert!(
        !report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["kind"] == "unrecorded_app_steps"),
        "{report}"
    );
}

/// A refusal of one of the steps' own preflights carries its stable token in the
/// JSON error, the one the app's service meets in the same state.
#[test]
fn a_refusal_by_a_steps_preflight_carries_its_token() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "label.sqlite");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("ALTER TABLE accounts ADD COLUMN label TEXT;")
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    let out = idstore(&db)
        .args(["--json", "migrate"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let doc: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["error"]["kind"], "unknown_columns", "{doc}");
    assert_eq!(doc["error"]["token"], "unknown_columns", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("idstore:unknown_columns: ")
            && doc["error"]["message"].as_str().unwrap().contains("label"),
        "{doc}"
    );
    assert!(std::fs::read(&db).unwrap() == before, "nothing changed");
}

/// Damage in a table idstore never touches (an index of the app's `logs` whose
/// entries no longer match its rows) is not the run's: `migrate` goes through, and
/// so does `rollback`, which checks what it wrote as `migrate` does.
#[test]
fn rollback_holds_wherever_migrate_held() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "damaged-elsewhere.sqlite");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "INSERT INTO logs VALUES ('2024-03-01', 'one'), ('2024-03-02', 'two');
             CREATE INDEX idx_logs_message ON logs(message);
             PRAGMA writable_schema = ON;
             UPDATE sqlite_master SET sql = 'CREATE INDEX idx_logs_message ON logs(date)'
              WHERE name = 'idx_logs_message';
             PRAGMA writable_schema = RESET;",
        )
        .unwrap();
    let check: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT group_concat(integrity_check) FROM pragma_integrity_check",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_ne!(check, "ok", "the index is damaged");
    idstore(&db)
        .args(["migrate", "--no-backup", "-q"])
        .assert()
        .success();
    idstore(&db)
        .args(["rollback", "--no-backup", "-q"])
        .assert()
        .success();
    assert_eq!(
        json_of(idstore(&db).arg("status"))["applied"],
        serde_json::json!(["00000000000000"])
    );
}
