//! Migrated files in another engine: the app's web build runs absurd-sql over
//! `@jlongster/sql.js` 1.6.x, SQLite 3.35.0 compiled to wasm, with foreign keys off.
//! At the transition step and at the final one, the app's own statements run there
//! (switching the identity the old way and the new way, its merged read, deleting an
//! account) and so do the writes the pointer guard must refuse; `idstore check`
//! then finds the file sound.
//!
//! Needs node, and the engine installed into `tests/engines/node_modules` from its
//! lock file (`npm ci` in `tests/engines`, as CI's script does): the test never
//! reaches a package registry itself, and says loudly that it skipped without them.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use crate::common::*;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::Value;
use tempfile::TempDir;

fn engine_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/engines")
}

/// Whether node and the engine (installed from the lock file) are there.
fn engine_available(test: &str) -> bool {
    tool_available(
        test,
        "node",
        runs("node", &["--version"]),
        "Debian's nodejs",
    ) && tool_available(
        test,
        "the sql.js engine in tests/engines/node_modules",
        engine_dir().join("node_modules/@jlongster/sql.js").is_dir(),
        "run `npm ci` in tests/engines",
    )
}

/// Runs the app's statements on a copy of `db` in sql.js; returns its report and the
/// file as the engine left it.
fn run_app(db: &Path, step: &str, work: &Path) -> (Value, PathBuf) {
    // The web build keeps its own file, never in WAL mode: hand the engine a copy in
    // the rollback-journal mode the app uses.
    let input = work.join(format!("{step}-in.sqlite"));
    std::fs::copy(db, &input).unwrap();
    let mut conn = SqliteConnection::establish(input.to_str().unwrap()).unwrap();
    conn.batch_execute("PRAGMA journal_mode = DELETE;").unwrap();
    drop(conn);
    let output = work.join(format!("{step}-out.sqlite"));
    let out = StdCommand::new("node")
        .arg(engine_dir().join("app_statements.js"))
        .arg(&input)
        .arg(&output)
        .args([step, DID_B, DID_C, UNKNOWN])
        .current_dir(engine_dir())
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (serde_json::from_slice(&out.stdout).unwrap(), output)
}

fn result<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} ran: {report}"))
}

fn refused(report: &Value, name: &str, says: &str) {
    let r = result(report, name);
    assert_eq!(r["ok"], false, "{name} was refused: {r}");
    assert!(r["error"].as_str().unwrap().contains(says), "{name}: {r}");
}

fn value(report: &Value, name: &str) -> Value {
    let r = result(report, name);
    assert_eq!(r["ok"], true, "{name}: {r}");
    r["rows"][0].clone()
}

#[test]
fn the_web_builds_engine_runs_the_apps_statements_on_migrated_files() {
    if !engine_available("the_web_builds_engine_runs_the_apps_statements_on_migrated_files") {
        return;
    }
    let dir = TempDir::new().unwrap();
    for (step, to) in [
        ("transition", "202611250000011"),
        ("final", "20261125000002"),
    ] {
        let db = legacy(dir.path(), &format!("{step}.sqlite"));
        idstore(&db)
            .args(["migrate", "--no-backup", "-q", "--to", to])
            .assert()
            .success();
        idstore(&db)
            .args(["account", "add", DID_C, "--public-key", "02cd", "-q"])
            .assert()
            .success();
        let (report, out) = run_app(&db, step, dir.path());
        assert_eq!(report["version"], "3.35.0", "the web build's SQLite");
        assert_eq!(report["foreign_keys"], 0, "foreign keys off, as in the app");

        assert_eq!(
            value(&report, "read the pointer"),
            serde_json::json!([DID_C])
        );
        if step == "transition" {
            assert_eq!(
                value(&report, "read the pointer after the old way"),
                serde_json::json!([DID_B])
            );
            assert_eq!(
                value(&report, "read both after the stray write"),
                serde_json::json!([DID_B, DID_B]),
                "a stray legacy write is kept aside, both stay on the account"
            );
        } else {
            value(&report, "switch back the new way");
        }
        assert_eq!(
            value(&report, "merged read"),
            serde_json::json!(["Me", "Me", DID_B])
        );
        refused(&report, "point at an unknown DID", "must name an account");
        refused(&report, "replace the pointer row", "must name an account");
        refused(&report, "delete the active account", "cannot be deleted");
        refused(
            &report,
            "change the active account's did",
            "cannot change its did",
        );
        value(&report, "delete another account");
        assert_eq!(
            value(&report, "read the pointer at the end"),
            serde_json::json!([DID_B])
        );

        // idstore finds the engine's file sound: nothing but decisions waiting.
        let check = idstore(&out).args(["check", "--json"]).output().unwrap();
        let health: Value = serde_json::from_slice(&check.stdout).unwrap();
        for p in health["problems"].as_array().unwrap() {
            assert!(p["item"].is_string(), "{step}: {health}");
        }
        let active = json_of(idstore(&out).arg("active"));
        assert_eq!(active["active_did"], DID_B, "{step}");
        let accounts = json_of(idstore(&out).args(["account", "list"]));
        assert_eq!(accounts["accounts"].as_array().unwrap().len(), 2, "{step}");
    }
}
