//! idstore's own tables are data another program can write like any other: the
//! quarantine tables, the archive of old pointers, the decision log, the kept
//! schema and rows of an adopted table, and the migrations table. Random mutations
//! of them (rows deleted, values replaced with SQL, DIDs, numbers, blobs, text that
//! is not UTF-8 or a large one, rows added, tables dropped) are followed by `check`,
//! `repair`, `rollback` and `migrate`. Each either works or refuses with the file
//! byte for byte as it was; none panics, runs a statement the file holds, or loses
//! an account row.
//!
//! `PROPTEST_CASES` sets how many mutated files are tried (64 by default).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Binary, Text};
use idstore_repo::migrations::{RollbackOptions, RollbackTarget};
use idstore_repo::quarantine::QuarantinedItem;
use idstore_repo::{Database, ErrorKind, MigrateOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tempfile::TempDir;

/// idstore's bookkeeping tables, as a migrated, adopted file has them.
const TABLES: [&str; 8] = [
    "accounts_quarantine",
    "active_did_quarantine",
    "settings_active_did_archive",
    "quarantine_decisions",
    "idstore_original_schema",
    "idstore_adopted_active_identity",
    "idstore_adoption",
    "__diesel_schema_migrations",
];

/// A migrated file holding something in every bookkeeping table: the app's own
/// `active_identity` adopted (its pointer overriding the legacy one), a trigger of
/// the app's on `settings` kept for the cleanup's rollback, duplicate accounts in the
/// quarantine, a dangling override pointer archived, and a decision logged.
fn base(dir: &Path) -> PathBuf {
    let data = format!(
        "{}{}{}{}
         INSERT INTO settings (id, activeDid, apiServer, firstName) VALUES (1, '{DID_A}', 'https://api.endorser.ch', 'Me');
         INSERT INTO settings (id, accountDid, activeDid, lastName) VALUES (2, '{DID_B}', '{ORPHAN}', 'B');
         CREATE TABLE active_identity (
             id INTEGER PRIMARY KEY CHECK (id = 1),
             activeDid TEXT,
             lastUpdated TEXT NOT NULL DEFAULT (datetime('now')));
         INSERT INTO active_identity (id, activeDid, lastUpdated) VALUES (1, '{ORPHAN}', '2025-06-01 10:00:00');
         CREATE TRIGGER app_settings_touch AFTER UPDATE OF firstName ON settings
           BEGIN UPDATE settings SET lastName = lastName WHERE id = NEW.id; END;",
        account_sql(1, DID_A, "a1"),
        account_sql(2, DID_B, "b1"),
        account_sql(3, DID_A, "a2"),
        account_sql(4, DID_C, "c1"),
    );
    let path = legacy_file(dir, "base.sqlite", true, &data);
    let mut db = open(&path).unwrap();
    migrate(&mut db, MigrateOptions::new()).unwrap();
    let mut store = db.store().unwrap();
    let pointer = store
        .quarantined_items()
        .unwrap()
        .into_iter()
        .find(|i: &QuarantinedItem| i.item.to_string().starts_with("account:"))
        .expect("a quarantined duplicate");
    store.restore_quarantined(pointer.item).unwrap();
    drop(db);
    for table in TABLES {
        let n = text(
            &mut raw(&path),
            &format!("SELECT CAST(count(*) AS TEXT) AS value FROM \"{table}\""),
        );
        assert_ne!(n.as_deref(), Some("0"), "{table} holds a row to mutate");
    }
    path
}

/// A value another program may write.
#[derive(Debug, Clone)]
enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
    /// Text whose bytes are not UTF-8.
    BadText(Vec<u8>),
}

/// One change to a bookkeeping table.
#[derive(Debug, Clone)]
enum Mutation {
    Delete {
        table: usize,
        row: usize,
    },
    Update {
        table: usize,
        row: usize,
        column: usize,
        value: Value,
    },
    Insert {
        table: usize,
        values: Vec<Value>,
    },
    Drop {
        table: usize,
    },
}

/// Where a statement the file holds would leave a trace if it ever ran.
fn canary(dir: &Path) -> PathBuf {
    dir.join("canary.sqlite")
}

fn value(canary: String) -> impl Strategy<Value = Value> {
    let texts = vec![
        format!("x'; ATTACH DATABASE '{canary}' AS p; CREATE TABLE p.t(a); --"),
        format!(
            "CREATE TABLE active_identity (id INTEGER); ATTACH DATABASE '{canary}' AS p; CREATE TABLE p.t(a)"
        ),
        format!("INSERT INTO active_identity (id) VALUES (1); ATTACH DATABASE '{canary}' AS p;"),
        "CREATE TRIGGER x AFTER INSERT ON accounts BEGIN DELETE FROM accounts; END".to_owned(),
        "CREATE TABLE active_identity AS SELECT * FROM accounts".to_owned(),
        "CREATE INDEX idx_accounts_did_unique ON accounts(did)".to_owned(),
        DID_A.to_owned(),
        DID_B.to_owned(),
        ORPHAN.to_owned(),
        String::new(),
        "restore".to_owned(),
        "discard_forget".to_owned(),
        "account".to_owned(),
        "pointer".to_owned(),
        "adopted".to_owned(),
        "rebuilt".to_owned(),
        "table".to_owned(),
        "trigger".to_owned(),
        "active_identity".to_owned(),
        "accounts".to_owned(),
        "20261125000001".to_owned(),
        "29990101000000".to_owned(),
        "\u{1b}[2J\r".to_owned(),
        "x".repeat(100_000),
    ];
    prop_oneof![
        Just(Value::Null),
        prop_oneof![
            Just(-1i64),
            Just(0),
            Just(1),
            Just(2),
            Just(3),
            Just(i64::MAX),
            any::<i64>()
        ]
        .prop_map(Value::Int),
        prop::sample::select(texts).prop_map(Value::Text),
        "[^\u{0}]{0,12}".prop_map(Value::Text),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Value::Blob),
        Just(Value::BadText(b"did:key:z\xff\xfe".to_vec())),
    ]
}

fn mutation(canary: String) -> impl Strategy<Value = Mutation> {
    let table = 0..TABLES.len();
    prop_oneof![
        3 => (table.clone(), 0..8usize).prop_map(|(table, row)| Mutation::Delete { table, row }),
        6 => (table.clone(), 0..8usize, 0..16usize, value(canary.clone())).prop_map(
            |(table, row, column, value)| Mutation::Update { table, row, column, value }
        ),
        2 => (table.clone(), prop::collection::vec(value(canary), 1..12))
            .prop_map(|(table, values)| Mutation::Insert { table, values }),
        1 => table.prop_map(|table| Mutation::Drop { table }),
    ]
}

/// A value as SQL bound into a statement the test runs (never one idstore runs).
fn literal(v: &Value) -> String {
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    match v {
        Value::Null => "NULL".to_owned(),
        Value::Int(i) => i.to_string(),
        Value::Text(t) => format!("'{}'", t.replace('\'', "''")),
        Value::Blob(b) => format!("x'{}'", hex(b)),
        Value::BadText(b) => format!("CAST(x'{}' AS TEXT)", hex(b)),
    }
}

/// Applies the mutations as a program with foreign keys off would; a change that
/// a constraint refuses is simply not made. Returns how many were made.
fn apply(path: &Path, mutations: &[Mutation]) -> usize {
    let mut conn = raw(path);
    conn.batch_execute("PRAGMA foreign_keys = OFF;").unwrap();
    let mut made = 0;
    for m in mutations {
        let sql = match m {
            Mutation::Delete { table, row } => {
                let t = TABLES[*table];
                format!(
                    "DELETE FROM \"{t}\" WHERE rowid = (SELECT rowid FROM \"{t}\" ORDER BY rowid LIMIT 1 OFFSET {row})"
                )
            }
            Mutation::Update {
                table,
                row,
                column,
                value,
            } => {
                let t = TABLES[*table];
                let cols = columns(&mut conn, t);
                if cols.is_empty() {
                    continue;
                }
                let c = &cols[column % cols.len()];
                format!(
                    "UPDATE \"{t}\" SET \"{c}\" = {} WHERE rowid = (SELECT rowid FROM \"{t}\" ORDER BY rowid LIMIT 1 OFFSET {row})",
                    literal(value)
                )
            }
            Mutation::Insert { table, values } => {
                let t = TABLES[*table];
                let cols = columns(&mut conn, t);
                if cols.is_empty() {
                    continue;
                }
                let vals: Vec<String> = cols
                    .iter()
                    .enumerate()
                    .map(|(i, _)| literal(&values[i % values.len()]))
                    .collect();
                format!(
                    "INSERT INTO \"{t}\" ({}) VALUES ({})",
                    cols.iter()
                        .map(|c| format!("\"{c}\""))
                        .collect::<Vec<_>>()
                        .join(", "),
                    vals.join(", ")
                )
            }
            Mutation::Drop { table } => format!("DROP TABLE IF EXISTS \"{}\"", TABLES[*table]),
        };
        if conn.batch_execute(&sql).is_ok() {
            made += 1;
        }
    }
    made
}

/// Every account row's whole content (hex of each column's bytes), in `accounts` or,
/// moved there by a run, in `accounts_quarantine`.
fn account_rows(path: &Path) -> (Vec<String>, Vec<String>) {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        value: String,
    }
    const COLUMNS: &str = "hex(dateCreated) || '|' || hex(derivationPath) || '|' || hex(did) || '|' || hex(identityEncrBase64) || '|' || hex(mnemonicEncrBase64) || '|' || hex(passkeyCredIdHex) || '|' || hex(publicKeyHex) AS value";
    let mut conn = raw(path);
    let mut read = |table: &str| -> Vec<String> {
        let mut rows: Vec<String> = diesel::sql_query(format!("SELECT {COLUMNS} FROM {table}"))
            .load::<Row>(&mut conn)
            .map(|rows| rows.into_iter().map(|r| r.value).collect())
            .unwrap_or_default();
        rows.sort();
        rows
    };
    (read("accounts"), read("accounts_quarantine"))
}

/// The file's bytes and its log's, the connection to it closed.
fn file_state(path: &Path) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    (
        std::fs::read(path).unwrap(),
        std::fs::read(PathBuf::from(wal))
            .ok()
            .filter(|w| !w.is_empty()),
    )
}

#[derive(Default)]
struct Figures {
    files: usize,
    mutations: usize,
    runs: BTreeMap<&'static str, (usize, usize)>,
    refused_kinds: BTreeMap<&'static str, usize>,
}

/// Runs one command on the file; `Ok(true)` when it worked, `Ok(false)` when it was
/// refused (the file unchanged), a failed case otherwise.
fn run(
    path: &Path,
    command: &'static str,
    rollback: &RollbackOptions,
    figures: &RefCell<Figures>,
) -> Result<bool, TestCaseError> {
    let before = file_state(path);
    let (accounts_before, _) = account_rows(path);
    let outcome = Database::open(path).and_then(|mut db| match command {
        "check" => db.check().map(drop),
        "repair" => db.repair().map(drop),
        "rollback" => db.rollback(rollback).map(drop),
        _ => db.migrate(&MigrateOptions::new()).map(drop),
    });
    let mut figures = figures.borrow_mut();
    let entry = figures.runs.entry(command).or_default();
    match outcome {
        Ok(()) => {
            entry.0 += 1;
            let (accounts, quarantine) = account_rows(path);
            for row in &accounts_before {
                prop_assert!(
                    accounts.contains(row) || quarantine.contains(row),
                    "{command} lost the account row {row}"
                );
            }
            Ok(true)
        }
        Err(e) => {
            entry.1 += 1;
            *figures.refused_kinds.entry(e.kind().as_str()).or_default() += 1;
            prop_assert!(
                e.kind() != ErrorKind::Other,
                "{command}: an unclassified error: {e}"
            );
            prop_assert!(
                file_state(path) == before,
                "{command} refused ({e}), yet the file changed"
            );
            Ok(false)
        }
    }
}

#[test]
fn mutated_bookkeeping_is_served_or_refused_never_obeyed() {
    let dir = TempDir::new().unwrap();
    let base = base(dir.path());
    let work = dir.path().join("work.sqlite");
    let canary = canary(dir.path());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let figures = RefCell::new(Figures::default());
    let strategy = (
        prop::collection::vec(mutation(canary.display().to_string()), 1..6),
        any::<bool>(),
        prop_oneof![
            Just(RollbackTarget::Baseline),
            Just(RollbackTarget::Steps(1)),
            Just(RollbackTarget::Everything)
        ],
    );
    let result = runner.run(&strategy, |(mutations, forget, target)| {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = work.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
        std::fs::copy(&base, &work).unwrap();
        let made = apply(&work, &mutations);
        {
            let mut f = figures.borrow_mut();
            f.files += 1;
            f.mutations += made;
        }
        let rollback = RollbackOptions::new()
            .target(target)
            .include_baseline(true)
            .forget_decisions(forget);
        for command in ["check", "repair", "rollback", "migrate", "check"] {
            run(&work, command, &rollback, &figures)?;
            prop_assert!(!canary.exists(), "{command} ran a statement the file holds");
        }
        Ok(())
    });
    let f = figures.into_inner();
    let runs: Vec<String> = f
        .runs
        .iter()
        .map(|(c, (ok, refused))| format!("{c} {ok} worked / {refused} refused"))
        .collect();
    eprintln!(
        "figures: {} mutated files, {} mutations made; {}; refusals by kind {:?}; 0 panics, 0 foreign statements run, 0 account rows lost, every refusal byte for byte unchanged",
        f.files,
        f.mutations,
        runs.join(", "),
        f.refused_kinds
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The blob helper the mutations rely on: `Value::BadText` really stores text that
/// is not UTF-8 (else the case tests nothing).
#[test]
fn bad_text_is_stored_as_text_that_is_not_utf8() {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        kind: String,
        #[diesel(sql_type = Binary)]
        bytes: Vec<u8>,
    }
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    let row = diesel::sql_query(format!(
        "SELECT typeof(v) AS kind, CAST(v AS BLOB) AS bytes FROM (SELECT {} AS v)",
        literal(&Value::BadText(b"a\xff".to_vec()))
    ))
    .get_result::<Row>(&mut conn)
    .unwrap();
    assert_eq!(row.kind, "text");
    assert!(std::str::from_utf8(&row.bytes).is_err());
}

/// A quarantine table another program dropped: `check` names it, reads that need it
/// and `rollback` refuse with `needs_repair` (the file unchanged), and `repair`
/// re-creates it empty, after which the check no longer reports it.
#[test]
fn a_dropped_quarantine_table_is_reported_and_repaired() {
    let dir = TempDir::new().unwrap();
    let path = base(dir.path());
    exec(&mut raw(&path), "DROP TABLE active_did_quarantine;");
    let mut db = open(&path).unwrap();
    let problems = db.check().unwrap().problems;
    assert!(
        problems.iter().any(|p| p.kind
            == idstore_repo::health::ProblemKind::MissingQuarantineTable
            && p.detail.contains("active_did_quarantine")),
        "{problems:?}"
    );
    let err = db.store().unwrap().quarantined_items().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NeedsRepair, "{err}");
    drop(db);
    let before = file_state(&path);
    let err = open(&path)
        .unwrap()
        .rollback(&RollbackOptions::new().forget_decisions(true))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NeedsRepair, "{err}");
    assert!(err.to_string().contains("active_did_quarantine"), "{err}");
    assert!(
        file_state(&path) == before,
        "a refused rollback changed the file"
    );
    let mut db = open(&path).unwrap();
    let fixed = db.repair().unwrap().fixed;
    assert!(
        fixed
            .iter()
            .any(|p| p.kind == idstore_repo::health::ProblemKind::MissingQuarantineTable),
        "{fixed:?}"
    );
    let problems = db.check().unwrap().problems;
    assert!(
        !problems
            .iter()
            .any(|p| p.kind == idstore_repo::health::ProblemKind::MissingQuarantineTable),
        "{problems:?}"
    );
    db.store().unwrap().quarantined_items().unwrap();
}
