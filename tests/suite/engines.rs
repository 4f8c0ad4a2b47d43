//! The app's own code on idstore's files, in every engine the app ships: the web
//! build's (absurd-sql's VFS over `@jlongster/sql.js` 1.6.7, SQLite 3.35.0 in wasm),
//! current sql.js, SQLite3 Multiple Ciphers in SQLCipher mode (Electron's
//! better-sqlite3-multiple-ciphers), SQLCipher 4 (the mobile builds), and the SQLite
//! idstore bundles. Each runs `tests/engines/app_suite.json` (the app's statements,
//! verbatim and bound as its code binds them) at the transition step and the final
//! one, with foreign keys on and off; and each applies idstore's exported migrations
//! (`export/app-migrations.json`) to a legacy file as the app's migration service
//! would, giving the same file as `idstore migrate`.
//!
//! The engines are installed by CI's script (`npm ci` in `tests/engines`, and its
//! Python venv): no test reaches a package registry itself, and each says loudly
//! that it skipped without them.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use crate::common::*;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The passphrase of the encrypted engines' files.
pub(crate) const PASSPHRASE: &str = "correct horse battery staple";
const TRANSITION: &str = "20261206000001";
const FINAL: &str = "20261206000002";

fn engine_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/engines")
}

pub(crate) fn export_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("export/app-migrations.json")
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Engine {
    /// The web build: absurd-sql over @jlongster/sql.js 1.6.7.
    Absurd,
    /// Current sql.js.
    SqlJs,
    /// better-sqlite3, the Electron build's driver (WAL, as the app sets it up).
    Better,
    /// SQLite3 Multiple Ciphers, SQLCipher mode (Electron).
    Sqlite3mc,
    /// SQLCipher 4 (iOS, Android).
    SqlCipher,
    /// The SQLite idstore links.
    Bundled,
}

const ENGINES: [Engine; 6] = [
    Engine::Absurd,
    Engine::SqlJs,
    Engine::Better,
    Engine::Sqlite3mc,
    Engine::SqlCipher,
    Engine::Bundled,
];

impl Engine {
    /// The engines of plain files, then those of encrypted ones.
    pub(crate) const PLAIN: [Engine; 4] = [
        Engine::Absurd,
        Engine::SqlJs,
        Engine::Better,
        Engine::Bundled,
    ];
    pub(crate) const ENCRYPTED: [Engine; 2] = [Engine::SqlCipher, Engine::Sqlite3mc];

    pub(crate) fn encrypted(self) -> bool {
        matches!(self, Engine::Sqlite3mc | Engine::SqlCipher)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Engine::Absurd => "absurd",
            Engine::SqlJs => "sqljs",
            Engine::Better => "better",
            Engine::Sqlite3mc => "sqlite3mc",
            Engine::SqlCipher => "sqlcipher",
            Engine::Bundled => "bundled",
        }
    }

    pub(crate) fn available(self, test: &str) -> bool {
        match self {
            Engine::Bundled => true,
            Engine::Absurd | Engine::SqlJs | Engine::Better => {
                tool_available(
                    test,
                    "node",
                    runs("node", &["--version"]),
                    "Debian's nodejs",
                ) && tool_available(
                    test,
                    "the app's JavaScript engines in tests/engines/node_modules",
                    [
                        "@jlongster/sql.js",
                        "absurd-sql",
                        "sql.js",
                        "better-sqlite3",
                    ]
                    .iter()
                    .all(|p| engine_dir().join("node_modules").join(p).is_dir()),
                    "run `npm ci` in tests/engines",
                )
            }
            Engine::Sqlite3mc | Engine::SqlCipher => tool_available(
                test,
                "the app's native engines (sqlcipher3-binary, apsw-sqlite3mc) in tests/engines/.venv",
                runs(
                    engine_dir().join(".venv/bin/python").to_str().unwrap(),
                    &["-c", "import apsw, sqlcipher3"],
                ),
                "python3 -m venv tests/engines/.venv && tests/engines/.venv/bin/pip install -r tests/engines/requirements.txt",
            ),
        }
    }

    /// Runs `mode` ("suite" or "apply") on a copy of `input`; returns the report
    /// and the file as the engine left it.
    fn run(self, mode: &str, input: &Path, work: &Path, config: &Value) -> (Value, PathBuf) {
        let tag = format!(
            "{}-{mode}-{}-{}",
            self.name(),
            config["step"].as_str().unwrap_or("legacy"),
            config["foreign_keys"]
        );
        let output = work.join(format!("{tag}.sqlite"));
        let report = work.join(format!("{tag}.json"));
        if self == Engine::Bundled {
            std::fs::copy(input, &output).unwrap();
            let value = bundled::run(mode, &output, config);
            return (value, output);
        }
        let out = self
            .command()
            .args([self.name(), mode])
            .arg(input)
            .arg(&output)
            .arg(&report)
            .arg(config.to_string())
            .current_dir(engine_dir())
            .output()
            .expect("the engine runs");
        assert!(
            out.status.success(),
            "{tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        (value, output)
    }

    /// The engine's runner (not the bundled SQLite's, which runs in this process).
    fn command(self) -> StdCommand {
        match self {
            Engine::Absurd | Engine::SqlJs | Engine::Better => {
                let mut c = StdCommand::new("node");
                c.arg(engine_dir().join("run_app_suite.mjs"));
                c
            }
            _ => {
                let mut c = StdCommand::new(engine_dir().join(".venv/bin/python"));
                c.arg(engine_dir().join("run_app_suite.py"));
                c
            }
        }
    }

    /// Runs each job, `(mode, input, output, config)`, in one process of the
    /// engine; returns each job's report, in order (each job works on a copy of its
    /// input, written to its output).
    pub(crate) fn batch(self, work: &Path, jobs: &[(&str, PathBuf, PathBuf, Value)]) -> Vec<Value> {
        let reports: Vec<PathBuf> = (0..jobs.len())
            .map(|i| work.join(format!("{}-job-{i}.json", self.name())))
            .collect();
        if self == Engine::Bundled {
            return jobs
                .iter()
                .map(|(mode, input, output, config)| {
                    std::fs::copy(input, output).unwrap();
                    bundled::run(mode, output, config)
                })
                .collect();
        }
        let list: Vec<Value> = jobs
            .iter()
            .zip(&reports)
            .map(|((mode, input, output, config), report)| {
                json!({ "mode": mode, "input": input, "output": output, "report": report, "config": config })
            })
            .collect();
        let file = work.join(format!("{}-jobs.json", self.name()));
        std::fs::write(&file, serde_json::to_vec(&list).unwrap()).unwrap();
        let out = self
            .command()
            .args([self.name(), "batch"])
            .arg(&file)
            .current_dir(engine_dir())
            .output()
            .expect("the engine runs");
        assert!(
            out.status.success(),
            "{}: {}",
            self.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        reports
            .iter()
            .map(|r| serde_json::from_slice(&std::fs::read(r).unwrap()).unwrap())
            .collect()
    }
}

pub(crate) fn config(step: &str, foreign_keys: bool) -> Value {
    json!({
        "step": step,
        "foreign_keys": foreign_keys,
        "dids": { "ACTIVE": DID_B, "OTHER": DID_C, "UNKNOWN": UNKNOWN },
        "suite": engine_dir().join("app_suite.json"),
        "export": export_path(),
        "key": PASSPHRASE,
        // The app's own step before idstore's: its migration service runs 003 on a
        // file from before it, as it always has.
        "app_steps": [{
            "name": "003_add_hasBackedUpSeed_to_settings",
            "sql": "ALTER TABLE settings ADD COLUMN hasBackedUpSeed BOOLEAN DEFAULT FALSE",
        }],
    })
}

/// `idstore` on `db`, with the engines' passphrase when it is encrypted.
pub(crate) fn on(db: &Path, encrypted: bool) -> assert_cmd::Command {
    if encrypted {
        with_key(db, PASSPHRASE)
    } else {
        idstore(db)
    }
}

pub(crate) fn encrypt(db: &Path) {
    idstore(db)
        .env("IDSTORE_NEW_KEY", PASSPHRASE)
        .args(["encrypt", "--no-backup", "-q"])
        .assert()
        .success();
}

/// A legacy file (accounts A, B and a duplicate A, B active, the app's
/// `migrations` table) migrated by idstore to `to`, with account C added.
fn migrated_to(dir: &Path, name: &str, to: &str, encrypted: bool) -> PathBuf {
    let db = legacy(dir, &format!("{name}-{to}.sqlite"));
    idstore(&db)
        .args(["migrate", "--no-backup", "-q", "--to", to])
        .assert()
        .success();
    idstore(&db)
        .args(["account", "add", DID_C, "--public-key", "02cd", "-q"])
        .assert()
        .success();
    if encrypted {
        encrypt(&db);
    }
    db
}

/// The schema and every row (clock columns left out) of a file, read through idstore.
pub(crate) fn logical_dump(path: &Path, encrypted: bool) -> Rows {
    let key = encrypted.then_some(PASSPHRASE);
    let mut rows = keyed_rows(path, key).expect("the key opens it");
    let options = idstore_repo::OpenOptions::new()
        .key(key.map(|k| idstore_repo::encryption::Key::new(k).unwrap()))
        .read_only(true);
    let mut db = options.open(path).unwrap();
    #[derive(diesel::QueryableByName)]
    struct Object {
        #[diesel(sql_type = diesel::sql_types::Text)]
        object: String,
    }
    use diesel::RunQueryDsl;
    let schema = diesel::sql_query(
        "SELECT json_array(type, name, tbl_name, sql) AS object FROM sqlite_master ORDER BY type, name",
    )
    .load::<Object>(idstore_repo::fixtures::raw_connection(&mut db))
    .unwrap();
    rows.insert(
        "(schema)".into(),
        schema.into_iter().map(|o| o.object).collect(),
    );
    // The app's service records the baseline step it ran; idstore does not (see
    // the README): a difference of bookkeeping, not of content.
    if let Some(app) = rows.get_mut("migrations") {
        app.retain(|r| !r.contains("idstore_00000000000000_legacy_baseline"));
    }
    rows
}

/// `idstore check` finds nothing wrong with `db`: no problem but notices (the
/// override row of an account the app deleted) and the legacy file's quarantined
/// items waiting for a decision.
fn assert_sound(db: &Path, encrypted: bool, what: &str) {
    let check = on(db, encrypted)
        .args(["check", "--json"])
        .output()
        .unwrap();
    let health: Value = serde_json::from_slice(&check.stdout).unwrap();
    for p in health["problems"].as_array().unwrap() {
        assert!(
            p["item"].is_string() || p["notice"] == true,
            "{what}: {health}"
        );
    }
}

#[test]
fn the_apps_statements_run_in_every_engine_on_migrated_files() {
    let test = "the_apps_statements_run_in_every_engine_on_migrated_files";
    let dir = TempDir::new().unwrap();
    let mut ran = 0;
    for engine in ENGINES {
        if !engine.available(test) {
            continue;
        }
        for (step, to) in [("transition", TRANSITION), ("final", FINAL)] {
            let db = migrated_to(dir.path(), engine.name(), to, engine.encrypted());
            let before = std::fs::read(&db).unwrap();
            for foreign_keys in [true, false] {
                let what = format!("{engine:?} at the {step} step, foreign keys {foreign_keys}");
                let (report, out) =
                    engine.run("suite", &db, dir.path(), &config(step, foreign_keys));
                assert!(report.get("open_error").is_none(), "{what}: {report}");
                assert_eq!(
                    report["failures"],
                    json!([]),
                    "{what}: every statement as the app expects"
                );
                assert_eq!(
                    report["foreign_keys"],
                    json!(i32::from(foreign_keys)),
                    "{what}"
                );
                if engine == Engine::Absurd {
                    assert_eq!(report["version"], "3.35.0", "the web build's SQLite");
                }
                // idstore finds the engine's file sound (the deleted account's
                // override row is a notice): nothing but the quarantined duplicate
                // and stray legacy pointer waiting for a decision; and it reports
                // the identity the app set.
                assert_sound(&out, engine.encrypted(), &what);
                let active = json_of(on(&out, engine.encrypted()).arg("active"));
                assert_eq!(active["active_did"], report["pointer"], "{what}");
                assert_eq!(active["active_did"], DID_C, "{what}");
                ran += 1;
            }
            assert_eq!(
                std::fs::read(&db).unwrap(),
                before,
                "each engine ran on a copy"
            );
        }
    }
    assert!(ran >= 4, "at least the bundled SQLite ran");
}

#[test]
fn every_engine_applies_the_exported_migrations_as_idstore_migrates() {
    let test = "every_engine_applies_the_exported_migrations_as_idstore_migrates";
    let dir = TempDir::new().unwrap();
    for engine in ENGINES {
        if !engine.available(test) {
            continue;
        }
        let enc = engine.encrypted();
        let by_app = legacy(dir.path(), &format!("{}-app.sqlite", engine.name()));
        let by_idstore = legacy(dir.path(), &format!("{}-idstore.sqlite", engine.name()));
        if enc {
            encrypt(&by_app);
            encrypt(&by_idstore);
        }
        let (report, out) = engine.run("apply", &by_app, dir.path(), &config("legacy", true));
        assert!(report.get("open_error").is_none(), "{engine:?}: {report}");
        assert_eq!(report["failures"], json!([]), "{engine:?}: {report}");
        on(&by_idstore, enc)
            .args(["migrate", "--no-backup", "-q"])
            .assert()
            .success();
        assert_eq!(
            logical_dump(&out, enc),
            logical_dump(&by_idstore, enc),
            "{engine:?}: the app's service gives the file idstore gives"
        );
        // idstore sees the service's file as migrated, checks and rolls it back.
        let status = json_of(on(&out, enc).arg("status"));
        assert_eq!(status["legacy"], false, "{engine:?}: {status}");
        assert_eq!(status["pending"], json!([]), "{engine:?}: {status}");
        assert_sound(&out, enc, &format!("{engine:?}"));
        on(&out, enc)
            .args(["rollback", "--to", "00000000000000", "--no-backup", "-q"])
            .assert()
            .success();
        // The other way round: the app's service finds idstore's file migrated and
        // runs nothing but the baseline, which changes nothing (idstore records it
        // nowhere in the app's table, so a rolled-back file is the app's own again).
        let (again, again_out) =
            engine.run("apply", &by_idstore, dir.path(), &config("again", true));
        assert_eq!(again["failures"], json!([]), "{engine:?}: {again}");
        for r in again["results"].as_array().unwrap() {
            let baseline = r["name"] == "idstore_00000000000000_legacy_baseline";
            assert_eq!(r["skipped"].is_string(), !baseline, "{engine:?}: {r}");
        }
        assert_eq!(
            logical_dump(&again_out, enc),
            logical_dump(&by_idstore, enc),
            "{engine:?}: the baseline changed nothing"
        );
    }
}

/// The app's service reverting idstore's steps with the exported down SQL gives the
/// file `idstore rollback` gives, and idstore then sees the step it is at.
#[test]
fn the_exported_down_steps_revert_as_idstore_rolls_back() {
    let dir = TempDir::new().unwrap();
    let by_app = migrated_to(dir.path(), "by-app", FINAL, false);
    let by_idstore = dir.path().join("by-idstore.sqlite");
    std::fs::copy(&by_app, &by_idstore).unwrap();
    idstore(&by_idstore)
        .args(["rollback", "--to", "00000000000000", "--no-backup", "-q"])
        .assert()
        .success();
    let export: Value = serde_json::from_slice(&std::fs::read(export_path()).unwrap()).unwrap();
    let conn = rusqlite::Connection::open(&by_app).unwrap();
    for step in export["steps"].as_array().unwrap().iter().skip(1).rev() {
        let tx = conn.unchecked_transaction().unwrap();
        tx.execute_batch(step["down"].as_str().unwrap()).unwrap();
        tx.execute(
            "DELETE FROM migrations WHERE name = ?",
            [step["name"].as_str()],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    drop(conn);
    // Every row the same; `settings` keeps its columns and their order, its text
    // being idstore's own (only `idstore rollback` puts the file's own text back:
    // the diesel down.sql cannot run DDL kept in the file, see the README).
    assert_eq!(
        keyed_rows(&by_app, None).unwrap(),
        keyed_rows(&by_idstore, None).unwrap()
    );
    let columns = |p: &Path| {
        let conn = rusqlite::Connection::open(p).unwrap();
        let mut stmt = conn
            .prepare("SELECT name, type FROM pragma_table_info('settings')")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    };
    assert_eq!(columns(&by_app), columns(&by_idstore));
    let status = json_of(idstore(&by_app).arg("status"));
    assert_eq!(status["pending"].as_array().unwrap().len(), 2, "{status}");
}

/// CI's drift check: the export in the repository is what this build generates.
#[test]
fn the_exported_migrations_match_the_migrations_folder() {
    let out = StdCommand::new(assert_cmd::cargo::cargo_bin("idstore"))
        .args(["generate", "app-migrations"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(export_path()).unwrap_or_default();
    assert!(
        generated.trim_end() == committed.trim_end(),
        "export/app-migrations.json has drifted from crates/repo/migrations/: run \
         `cargo run -- generate app-migrations > export/app-migrations.json` and commit it"
    );
}

/// What the lock file says against the export: each step the export has must be
/// in the lock with the same checksums, and each step of the lock in the export
/// (empty: they agree).
fn lock_mismatches(export: &Value, lock: &str) -> Vec<String> {
    let locked: Vec<(&str, &str, &str)> = lock
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split_whitespace();
            (f.next().unwrap(), f.next().unwrap(), f.next().unwrap())
        })
        .collect();
    let steps = export["steps"].as_array().unwrap();
    let mut found = Vec::new();
    for step in steps {
        let name = step["name"].as_str().unwrap();
        match locked.iter().find(|(n, _, _)| *n == name) {
            None => found.push(format!("{name} is not in export/steps.lock: add it there")),
            Some((_, sql, down)) => {
                if step["sqlSha256"] != *sql || step["downSha256"] != *down {
                    found.push(format!(
                        "{name} changed after it shipped: a shipped step is never edited; add a new step instead"
                    ));
                }
            }
        }
    }
    for (name, _, _) in &locked {
        if !steps.iter().any(|s| s["name"] == *name) {
            found.push(format!("{name}, shipped, is gone from the export"));
        }
    }
    found
}

/// Every shipped step is frozen: the export's checksums are those of
/// `export/steps.lock`, and each is the SHA-256 of the text it goes with. The check
/// can fail: an edited step, a dropped one and an unlisted one are each caught.
#[test]
fn shipped_steps_are_frozen_by_the_lock_file() {
    let export: Value = serde_json::from_slice(&std::fs::read(export_path()).unwrap()).unwrap();
    let lock = std::fs::read_to_string(export_path().with_file_name("steps.lock")).unwrap();
    assert_eq!(lock_mismatches(&export, &lock), Vec::<String>::new());
    for step in export["steps"].as_array().unwrap() {
        for (text, sum) in [("sql", "sqlSha256"), ("down", "downSha256")] {
            let out = StdCommand::new("sha256sum")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    use std::io::Write;
                    child
                        .stdin
                        .take()
                        .unwrap()
                        .write_all(step[text].as_str().unwrap().as_bytes())?;
                    child.wait_with_output()
                })
                .unwrap();
            let hex = String::from_utf8(out.stdout).unwrap();
            assert_eq!(
                hex.split_whitespace().next(),
                step[sum].as_str(),
                "{}",
                step["name"]
            );
        }
    }
    let mut edited = export.clone();
    edited["steps"][1]["sqlSha256"] = json!("0".repeat(64));
    assert!(lock_mismatches(&edited, &lock)[0].contains("changed after it shipped"));
    let mut dropped = export.clone();
    dropped["steps"].as_array_mut().unwrap().pop();
    assert!(lock_mismatches(&dropped, &lock)[0].contains("is gone from the export"));
    let mut added = export.clone();
    let mut new_step = added["steps"][2].clone();
    new_step["name"] = json!("idstore_2027-01-01-000001_next");
    added["steps"].as_array_mut().unwrap().push(new_step);
    assert!(lock_mismatches(&added, &lock)[0].contains("is not in export/steps.lock"));
}

/// The export is what its JSON Schema and its TypeScript declaration say (checked
/// with Python's jsonschema and TypeScript's own compiler), and both checks can
/// fail: a document missing a step's checksum is refused by each.
#[test]
fn the_export_matches_its_json_schema_and_typescript_declaration() {
    let test = "the_export_matches_its_json_schema_and_typescript_declaration";
    let dir = TempDir::new().unwrap();
    let export: Value = serde_json::from_slice(&std::fs::read(export_path()).unwrap()).unwrap();
    let mut bad = export.clone();
    bad["steps"][0].as_object_mut().unwrap().remove("sqlSha256");
    let bad_path = dir.path().join("bad.json");
    std::fs::write(&bad_path, serde_json::to_vec(&bad).unwrap()).unwrap();
    let python = engine_dir().join(".venv/bin/python");
    if tool_available(
        test,
        "Python's jsonschema in tests/engines/.venv",
        runs(python.to_str().unwrap(), &["-c", "import jsonschema"]),
        "tests/engines/.venv/bin/pip install -r tests/engines/requirements.txt",
    ) {
        let validate = |doc: &Path| {
            StdCommand::new(&python)
                .args([
                    "-c",
                    "import json, sys, jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))",
                ])
                .arg(doc)
                .arg(export_path().with_file_name("app-migrations.schema.json"))
                .output()
                .unwrap()
        };
        let good = validate(&export_path());
        assert!(
            good.status.success(),
            "{}",
            String::from_utf8_lossy(&good.stderr)
        );
        assert!(
            !validate(&bad_path).status.success(),
            "the schema refuses a step without its checksum"
        );
    }
    let tsc = engine_dir().join("node_modules/typescript/bin/tsc");
    if tool_available(
        test,
        "TypeScript in tests/engines/node_modules",
        tsc.is_file(),
        "run `npm ci` in tests/engines",
    ) {
        let check = |doc: &Path| {
            let source = dir.path().join("check.ts");
            std::fs::write(
                &source,
                format!(
                    "import type {{ AppMigrations }} from {:?};\nimport data from {:?};\nconst typed: AppMigrations = data;\nexport default typed;\n",
                    export_path().with_file_name("app-migrations").display().to_string(),
                    doc.display().to_string(),
                ),
            )
            .unwrap();
            StdCommand::new("node")
                .arg(&tsc)
                .args([
                    "--noEmit",
                    "--strict",
                    "--resolveJsonModule",
                    "--esModuleInterop",
                    "--module",
                    "esnext",
                    "--moduleResolution",
                    "bundler",
                    "--target",
                    "es2020",
                ])
                .arg(&source)
                .output()
                .unwrap()
        };
        let good = check(&export_path());
        assert!(
            good.status.success(),
            "{}",
            String::from_utf8_lossy(&good.stdout)
        );
        let refused = check(&bad_path);
        assert!(
            !refused.status.success(),
            "tsc refuses a step without its checksum"
        );
        assert!(String::from_utf8_lossy(&refused.stdout).contains("sqlSha256"));
    }
}

/// The same rules as `tests/engines/suite_rules.mjs`, in the SQLite idstore links.
mod bundled {
    use super::*;
    use rusqlite::types::Value as Sql;

    fn run_one(
        conn: &rusqlite::Connection,
        sql: &str,
        params: &[Sql],
    ) -> Result<Vec<Vec<Sql>>, String> {
        let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
        let width = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| e.to_string())? {
            out.push((0..width).map(|i| row.get::<_, Sql>(i).unwrap()).collect());
        }
        Ok(out)
    }

    fn bind(v: &Value, dids: &Value) -> Sql {
        match v {
            Value::String(s) if s == "$MASTER" => Sql::Text("1".into()),
            Value::String(s) if s.starts_with('$') => {
                Sql::Text(dids[&s[1..]].as_str().unwrap().into())
            }
            Value::String(s) => Sql::Text(s.clone()),
            Value::Number(n) => Sql::Integer(n.as_i64().unwrap()),
            other => panic!("bind {other}"),
        }
    }

    fn pointer(conn: &rusqlite::Connection) -> Value {
        match run_one(
            conn,
            "SELECT activeDid FROM active_identity WHERE id = 1",
            &[],
        ) {
            Ok(rows) => match rows.first().map(|r| &r[0]) {
                Some(Sql::Text(t)) => json!(t),
                Some(Sql::Null) => Value::Null,
                other => json!(format!("{other:?}")),
            },
            Err(e) => json!(e),
        }
    }

    fn recorded(conn: &rusqlite::Connection, name: &str) -> bool {
        matches!(
            run_one(conn, "SELECT count(*) FROM migrations WHERE name = ?", &[Sql::Text(name.into())]).as_deref(),
            Ok([row]) if row[0] != Sql::Integer(0)
        )
    }

    /// The service's record of a step, where the file has its table, of its shape.
    fn record(conn: &rusqlite::Connection, name: &str) -> Result<(), String> {
        let has = run_one(
            conn,
            "SELECT count(*) FROM pragma_table_info('migrations') WHERE name IN ('name', 'applied_at')",
            &[],
        );
        if !matches!(has.as_deref(), Ok([row]) if row[0] == Sql::Integer(2)) {
            return Ok(());
        }
        conn.execute(
            "INSERT INTO migrations (name, applied_at) VALUES (?, datetime('now'))",
            [name],
        )
        .map(drop)
        .map_err(|e| e.to_string())
    }

    /// The service forgetting a step it reverted.
    fn forget(conn: &rusqlite::Connection, name: &str) -> Result<(), String> {
        let has = run_one(
            conn,
            "SELECT count(*) FROM pragma_table_info('migrations') WHERE name = 'name'",
            &[],
        );
        if !matches!(has.as_deref(), Ok([row]) if row[0] != Sql::Integer(0)) {
            return Ok(());
        }
        conn.execute("DELETE FROM migrations WHERE name = ?", [name])
            .map(drop)
            .map_err(|e| e.to_string())
    }

    pub(super) fn run(mode: &str, path: &Path, config: &Value) -> Value {
        let conn = rusqlite::Connection::open(path).unwrap();
        let fk = config["foreign_keys"].as_bool().unwrap();
        conn.execute_batch(&format!(
            "PRAGMA foreign_keys = {};",
            if fk { "ON" } else { "OFF" }
        ))
        .unwrap();
        let mut failures: Vec<String> = Vec::new();
        let mut results = Vec::new();
        let mut refused: Option<Value> = None;
        let mut preflight: Option<Value> = None;
        let dids = &config["dids"];
        if mode == "suite" {
            let suite: Value = serde_json::from_slice(
                &std::fs::read(engine_dir().join("app_suite.json")).unwrap(),
            )
            .unwrap();
            let step = config["step"].as_str().unwrap();
            for st in suite["statements"].as_array().unwrap() {
                if let Some(steps) = st["steps"].as_array()
                    && !steps.iter().any(|s| s == step)
                {
                    continue;
                }
                let name = st["name"].as_str().unwrap();
                let params: Vec<Sql> = st["params"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| bind(p, dids))
                    .collect();
                let service = st["service_step"].as_str();
                let mut changes = None;
                let result = if service.is_some_and(|s| recorded(&conn, s)) {
                    Ok(Vec::new())
                } else {
                    let r = run_one(&conn, st["sql"].as_str().unwrap(), &params);
                    // The changed-row count, read before anything else runs.
                    changes = Some(conn.changes());
                    if let (Ok(_), Some(s)) = (&r, service) {
                        record(&conn, s).unwrap();
                    }
                    r
                };
                match (st["expect"].as_str().unwrap(), &result) {
                    ("ok", Err(e)) => failures.push(format!("{name}: failed: {e}")),
                    ("refused", Ok(_)) => {
                        failures.push(format!("{name}: succeeded, but must be refused"))
                    }
                    _ => {}
                }
                if let (Some(token), Err(e)) = (st["token"].as_str(), &result)
                    && !e.starts_with(&format!("idstore:{token}: "))
                {
                    failures.push(format!(
                        "{name}: refused without its token idstore:{token}: {e}"
                    ));
                }
                if let (Some(want), Ok(_)) = (st["changes"].as_u64(), &result)
                    && changes != Some(want)
                {
                    failures.push(format!(
                        "{name}: reported {changes:?} changed row(s), not {want}"
                    ));
                }
                if let Some(want) = st.get("pointer") {
                    let want = match want {
                        Value::Null => Value::Null,
                        v => json!(match bind(v, dids) {
                            Sql::Text(t) => t,
                            _ => unreachable!(),
                        }),
                    };
                    let got = pointer(&conn);
                    if got != want {
                        failures.push(format!("{name}: pointer is {got}, not {want}"));
                    }
                }
                let inv = run_one(
                    &conn,
                    "SELECT (SELECT count(*) FROM active_identity), (SELECT count(*) FROM active_identity WHERE activeDid = '' OR (activeDid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM accounts WHERE did = active_identity.activeDid)))",
                    &[],
                );
                if inv.as_deref() != Ok(&[vec![Sql::Integer(1), Sql::Integer(0)]][..]) {
                    failures.push(format!(
                        "{name}: the pointer row is missing or dangling: {inv:?}"
                    ));
                }
                results.push(json!({ "name": name, "ok": result.is_ok() }));
            }
        } else if mode == "preflight" {
            let export: Value =
                serde_json::from_slice(&std::fs::read(export_path()).unwrap()).unwrap();
            match run_one(&conn, export["preflight"].as_str().unwrap(), &[]) {
                Ok(rows) => {
                    preflight = Some(json!(
                        rows.iter()
                            .map(|r| r
                                .iter()
                                .map(|v| match v {
                                    Sql::Text(t) => json!(t),
                                    _ => Value::Null,
                                })
                                .collect::<Vec<_>>())
                            .collect::<Vec<_>>()
                    ))
                }
                Err(e) => failures.push(format!("preflight: {e}")),
            }
        } else {
            let export: Value =
                serde_json::from_slice(&std::fs::read(export_path()).unwrap()).unwrap();
            let app_steps = config["app_steps"].as_array().unwrap();
            // The app's migration service and its rollback, as suite_rules.mjs's
            // applySteps and revertSteps describe them.
            let steps: Vec<&Value> = if mode == "down" {
                export["steps"].as_array().unwrap().iter().rev().collect()
            } else {
                app_steps
                    .iter()
                    .chain(export["steps"].as_array().unwrap())
                    .collect()
            };
            for step in steps {
                let name = step["name"].as_str().unwrap();
                let sql = if mode == "down" {
                    let version = step["version"].as_str().unwrap();
                    let applied = matches!(
                        run_one(&conn, "SELECT count(*) FROM __diesel_schema_migrations WHERE version = ?", &[Sql::Text(version.into())]).as_deref(),
                        Ok([row]) if row[0] != Sql::Integer(0)
                    );
                    if version == "00000000000000" || !applied {
                        continue;
                    }
                    step["down"].as_str().unwrap()
                } else {
                    if recorded(&conn, name) {
                        results.push(
                            json!({ "name": name, "ok": true, "skipped": "recorded as applied" }),
                        );
                        continue;
                    }
                    step["sql"].as_str().unwrap()
                };
                let tx = conn.unchecked_transaction().unwrap();
                let r = tx
                    .execute_batch(sql)
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        if mode == "down" {
                            forget(&tx, name)
                        } else {
                            record(&tx, name)
                        }
                    });
                let token = r.as_ref().err().and_then(|e| {
                    e.strip_prefix("idstore:")
                        .and_then(|t| t.split_once(": "))
                        .map(|(t, _)| t.to_owned())
                });
                match &r {
                    Ok(()) => tx.commit().unwrap(),
                    Err(_) => drop(tx),
                }
                results.push(json!({ "name": name, "ok": r.is_ok(), "token": token }));
                match r {
                    Ok(()) => {}
                    Err(_) if mode != "down" && token.as_deref() == Some("already_applied") => {
                        record(&conn, name).unwrap();
                    }
                    Err(e) => {
                        failures.push(format!("{name}: {e}"));
                        refused = Some(json!({ "step": name, "token": token, "error": e }));
                        break;
                    }
                }
            }
        }
        let integrity = run_one(&conn, "PRAGMA integrity_check", &[]).unwrap();
        if integrity != [vec![Sql::Text("ok".into())]] {
            failures.push(format!("integrity_check: {integrity:?}"));
        }
        let fk_rows = run_one(&conn, "PRAGMA foreign_key_check", &[]).unwrap();
        if !fk_rows.is_empty() {
            failures.push(format!("foreign_key_check: {fk_rows:?}"));
        }
        json!({
            "engine": "bundled",
            "version": rusqlite::version(),
            "foreign_keys": i32::from(fk),
            "results": results,
            "failures": failures,
            "refused": refused,
            "preflight": preflight,
            "pointer": pointer(&conn),
        })
    }
}

/// What the app's statements find at the transition step, in the SQLite idstore
/// links, on a migrated file that `plant` then changed: the suite's failures.
fn planted_failures(name: &str, plant: &str, foreign_keys: bool) -> Vec<String> {
    let dir = TempDir::new().unwrap();
    let db = migrated_to(dir.path(), name, TRANSITION, false);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(plant)
        .unwrap();
    let (report, _) = Engine::Bundled.run(
        "suite",
        &db,
        dir.path(),
        &config("transition", foreign_keys),
    );
    report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

/// The suite proves itself: on a file whose pointer table refuses `''` (the
/// trigger that makes it mean none dropped, a CHECK against it put in its place, as
/// idstore's first release had it), the app's way of clearing the identity is
/// caught failing, as issue #24 found it.
#[test]
fn the_suite_catches_a_file_that_refuses_the_empty_string() {
    let failures = planted_failures(
        "planted",
        "DROP TRIGGER active_identity_empty_means_none_on_update;
         CREATE TRIGGER planted_refuse_empty BEFORE UPDATE OF activeDid ON active_identity
         WHEN NEW.activeDid = '' BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed'); END;",
        false,
    );
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with("$updateActiveDid(null): failed")),
        "{failures:#?}"
    );
}

/// The suite proves it checks what a plain table would report: with the preview
/// build's way of clearing the pointer planted back (the write dropped by
/// `RAISE(IGNORE)` after the trigger stored NULL itself), a clear reports no
/// changed row and is caught; with a refusal whose message lost its token, so is
/// that.
#[test]
fn the_suite_catches_a_clear_that_reports_no_change_and_a_refusal_without_its_token() {
    let failures = planted_failures(
        "planted-count",
        "DROP TRIGGER active_identity_empty_means_none_on_update;
         CREATE TRIGGER planted_empty_ignored BEFORE UPDATE OF activeDid ON active_identity
         FOR EACH ROW WHEN NEW.activeDid = ''
         BEGIN
             UPDATE active_identity SET activeDid = NULL WHERE id = OLD.id;
             SELECT RAISE(IGNORE);
         END;
         DROP TRIGGER active_identity_keep_row;
         CREATE TRIGGER planted_keep_row BEFORE DELETE ON active_identity
         BEGIN SELECT RAISE(ABORT, 'the row stays'); END;",
        true,
    );
    assert!(
        failures.iter().any(
            |f| f.starts_with("$updateActiveDid(null): reported Some(0) changed row(s), not 1")
        ),
        "{failures:#?}"
    );
    assert!(
        failures.iter().any(|f| f
            .starts_with("delete the pointer row: refused without its token idstore:pointer_row")),
        "{failures:#?}"
    );
}

/// Each exported step, run again on a file that already has it: the baseline
/// changes nothing; every other step is refused by its preflight with
/// `idstore:already_applied`, before it touches anything (the file is the same,
/// byte for byte in content and schema).
#[test]
fn a_step_run_again_changes_nothing_or_is_refused_as_already_applied() {
    let dir = TempDir::new().unwrap();
    let db = migrated_to(dir.path(), "again", FINAL, false);
    let export: Value = serde_json::from_slice(&std::fs::read(export_path()).unwrap()).unwrap();
    let before = logical_dump(&db, false);
    let conn = rusqlite::Connection::open(&db).unwrap();
    for step in export["steps"].as_array().unwrap() {
        let name = step["name"].as_str().unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        let result = tx.execute_batch(step["sql"].as_str().unwrap());
        if name.ends_with("_legacy_baseline") {
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
            tx.commit().unwrap();
        } else {
            let err = result.expect_err(name).to_string();
            assert!(
                err.starts_with("idstore:already_applied: "),
                "{name}: {err}"
            );
            drop(tx);
        }
    }
    drop(conn);
    assert_eq!(logical_dump(&db, false), before, "nothing changed");
}
