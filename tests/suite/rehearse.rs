//! `idstore rehearse` over a corpus of 200 generated files of mixed states: legacy
//! (with duplicates, dangling and empty pointers), at the transition step, migrated,
//! killed mid-write with a hot journal, encrypted, and not databases at all. Shards,
//! a rerun that skips what is reported, originals never written, the summary, and
//! the rollback triggers caught when planted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;
use diesel::connection::SimpleConnection;
use idstore_repo::{Database, MigrateOptions};
use serde_json::Value;
use tempfile::TempDir;

const PASSPHRASE: &str = "rehearsal passphrase";

/// Each file's category, by name.
fn corpus(dir: &Path) -> BTreeMap<String, &'static str> {
    let mut kinds = BTreeMap::new();
    let demo = |name: &str| {
        let path = dir.join(name);
        idstore_repo::fixtures::write_legacy_demo(&path).unwrap();
        path
    };
    let mut add = |name: String, kind: &'static str| {
        kinds.insert(name, kind);
    };
    for i in 0..80 {
        let name = format!("legacy/{i:03}.sqlite");
        std::fs::create_dir_all(dir.join("legacy")).unwrap();
        let path = demo(&name);
        let (kind, sql) = match i % 4 {
            0 => ("legacy-duplicate", ""),
            1 => ("legacy-clean", "DELETE FROM accounts WHERE id = 4;"),
            2 => (
                "legacy-dangling",
                "DELETE FROM accounts WHERE id = 4; UPDATE settings SET activeDid = 'did:ethr:0x00000000000000000000000000000000DeadBeef' WHERE id = 1;",
            ),
            _ => (
                "legacy-empty-pointer",
                "DELETE FROM accounts WHERE id = 4; UPDATE settings SET activeDid = '' WHERE id = 1;",
            ),
        };
        raw(&path).batch_execute(sql).unwrap();
        add(name, kind);
    }
    for i in 0..30 {
        let name = format!("migrated-{i:02}.sqlite");
        let path = demo(&name);
        Database::open(&path)
            .unwrap()
            .migrate(&MigrateOptions::new())
            .unwrap();
        add(name, "migrated");
    }
    for i in 0..20 {
        let name = format!("transition-{i:02}.sqlite");
        let path = demo(&name);
        Database::open(&path)
            .unwrap()
            .migrate(&MigrateOptions::new().to("20261206000001"))
            .unwrap();
        add(name, "transition");
    }
    let source = demo("hot-source.sqlite.src");
    for i in 0..30 {
        let name = format!("hot-{i:02}.sqlite");
        killed_mid_write(&source, &dir.join(&name));
        add(name, "hot-journal");
    }
    std::fs::remove_file(&source).unwrap();
    for i in 0..20 {
        let name = format!("encrypted-{i:02}.sqlite");
        let path = demo(&name);
        idstore(&path)
            .env("IDSTORE_NEW_KEY", PASSPHRASE)
            .args(["encrypt", "--no-backup", "-q"])
            .assert()
            .success();
        add(name, "encrypted");
    }
    for i in 0..10 {
        let name = format!("notes-{i:02}.sqlite");
        std::fs::write(dir.join(&name), format!("not a database {i}\n")).unwrap();
        add(name, "not-a-database");
        let name = format!("empty-{i:02}.sqlite");
        std::fs::write(dir.join(&name), b"").unwrap();
        add(name, "not-a-database");
    }
    kinds
}

/// Every file under `dir` (side files included) with its bytes.
fn everything(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn rehearse(corpus: &Path, report: &Path, extra: &[&str]) -> (bool, Value) {
    let out = idstore(Path::new("unused.sqlite"))
        .env("IDSTORE_KEY", PASSPHRASE)
        .arg("rehearse")
        .arg(corpus)
        .arg("--report")
        .arg(report)
        .args(extra)
        .arg("--json")
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), summary)
}

fn records(report: &Path) -> Vec<Value> {
    std::fs::read_to_string(report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_rehearsal_over_200_files_reports_each_once_and_writes_no_original() {
    let dir = TempDir::new().unwrap();
    let corpus_dir = dir.path().join("corpus");
    std::fs::create_dir(&corpus_dir).unwrap();
    let kinds = corpus(&corpus_dir);
    assert_eq!(kinds.len(), 200);
    let before = everything(&corpus_dir);
    let report = dir.path().join("report.jsonl");

    // Two shards, as two jobs would run them, into one report.
    let (ok1, first) = rehearse(&corpus_dir, &report, &["--shard", "1/2"]);
    let (ok2, second) = rehearse(&corpus_dir, &report, &["--shard", "2/2"]);
    assert!(ok1 && ok2, "{first} {second}");
    assert_eq!(first["rehearsed_now"], 100);
    assert_eq!(second["rehearsed_now"], 100);
    // A rerun skips every file already reported.
    let (ok, again) = rehearse(&corpus_dir, &report, &[]);
    assert!(ok);
    assert_eq!(again["rehearsed_now"], 0);
    assert_eq!(again["files"], 200);

    let all = records(&report);
    assert_eq!(all.len(), 200, "one record a file");
    for r in &all {
        let file = r["file"].as_str().unwrap();
        let kind = kinds[file];
        let outcome = r["outcome"].as_str().unwrap();
        assert!(r["triggers"].as_array().unwrap().is_empty(), "{r}");
        match kind {
            "migrated" => assert_eq!(outcome, "up_to_date", "{r}"),
            "not-a-database" => {
                assert_eq!(outcome, "refused", "{r}");
                assert!(r["error_kind"].is_string(), "{r}");
                assert!(
                    r["error"].as_str().unwrap().contains(file),
                    "names the file: {r}"
                );
            }
            _ => {
                assert_eq!(outcome, "migrated", "{kind}: {r}");
                assert_eq!(r["data_intact"], true, "{kind}: {r}");
                assert!(r["durations"]["migrate_ms"].as_f64().unwrap() > 0.0);
            }
        }
        assert_eq!(r["encrypted"], kind == "encrypted", "{r}");
        let (accounts, pointers) = match kind {
            "legacy-duplicate" | "hot-journal" | "encrypted" | "transition" => (1, 0),
            "legacy-dangling" => (0, 1),
            "legacy-clean" | "legacy-empty-pointer" | "migrated" | "not-a-database" => (0, 0),
            other => panic!("{other}"),
        };
        if kind != "transition" && kind != "hot-journal" {
            assert_eq!(r["quarantined_accounts"], accounts, "{kind}: {r}");
            assert_eq!(r["quarantined_pointers"], pointers, "{kind}: {r}");
        }
    }
    let outcomes = &again["outcomes"];
    assert_eq!(outcomes["up_to_date"], 30);
    assert_eq!(outcomes["refused"], 20);
    assert_eq!(outcomes["migrated"], 150);
    assert_eq!(again["triggers"], serde_json::json!({}));
    let d = &again["duration_ms"];
    assert!(d["p50"].as_f64() <= d["p95"].as_f64() && d["p95"].as_f64() <= d["max"].as_f64());

    assert!(
        everything(&corpus_dir) == before,
        "the originals were never written, nothing was added"
    );
}

/// The triggers fire when their fault is planted: a limit no migration meets, and
/// an "engine" that gives back the file unmigrated.
#[test]
fn planted_faults_fire_their_rollback_triggers() {
    let dir = TempDir::new().unwrap();
    let corpus_dir = dir.path().join("corpus");
    std::fs::create_dir(&corpus_dir).unwrap();
    for i in 0..3 {
        idstore_repo::fixtures::write_legacy_demo(&corpus_dir.join(format!("{i}.sqlite"))).unwrap();
    }
    let (ok, slow) = rehearse(
        &corpus_dir,
        &dir.path().join("slow.jsonl"),
        &["--slow-ms", "0"],
    );
    assert!(!ok, "a trigger fired: exit 1");
    assert_eq!(
        slow["triggers"]["performance_regression"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let (ok, engine) = rehearse(
        &corpus_dir,
        &dir.path().join("engine.jsonl"),
        &["--engine", "cp"],
    );
    assert!(!ok);
    assert_eq!(
        engine["triggers"]["platform_inconsistency"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    for r in records(&dir.path().join("engine.jsonl")) {
        assert_eq!(r["engine_matches"], false, "{r}");
        assert_eq!(r["outcome"], "failed", "{r}");
    }
}

/// With the app's web engine as the other engine, its run of the exported steps
/// gives idstore's file.
#[test]
fn another_engine_running_the_export_matches() {
    let test = "another_engine_running_the_export_matches";
    let engines = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/engines");
    if !tool_available(
        test,
        "node",
        runs("node", &["--version"]),
        "Debian's nodejs",
    ) || !tool_available(
        test,
        "sql.js in tests/engines/node_modules",
        engines.join("node_modules/sql.js").is_dir(),
        "run `npm ci` in tests/engines",
    ) {
        return;
    }
    let dir = TempDir::new().unwrap();
    let corpus_dir = dir.path().join("corpus");
    std::fs::create_dir(&corpus_dir).unwrap();
    idstore_repo::fixtures::write_legacy_demo(&corpus_dir.join("demo.sqlite")).unwrap();
    let report = dir.path().join("r.jsonl");
    let cmd = format!(
        "node {} --as-engine sqljs",
        engines.join("run_app_suite.mjs").display()
    );
    let (ok, summary) = rehearse(&corpus_dir, &report, &["--engine", &cmd]);
    assert!(ok, "{summary}");
    assert_eq!(records(&report)[0]["engine_matches"], true);
}

/// On a terminal, a progress bar shows the files done.
#[test]
fn a_progress_bar_shows_on_a_terminal() {
    if !has_script("a_progress_bar_shows_on_a_terminal") {
        return;
    }
    let dir = TempDir::new().unwrap();
    let corpus_dir = dir.path().join("corpus");
    std::fs::create_dir(&corpus_dir).unwrap();
    for i in 0..12 {
        idstore_repo::fixtures::write_legacy_demo(&corpus_dir.join(format!("{i}.sqlite"))).unwrap();
    }
    let args = format!(
        "rehearse {} --report {}",
        corpus_dir.display(),
        dir.path().join("r.jsonl").display()
    );
    let (ok, shown) = on_terminal(&dir.path().join("unused.sqlite"), &args, ">/dev/null");
    assert!(ok, "{shown}");
    assert!(
        shown.contains("/12]"),
        "the bar counts the files: {shown:?}"
    );
}
