//! idstore's API side by side with hand-written rusqlite (the practical floor) and the
//! original plan's statement-per-step approach, on the same temp-file database
//! (WAL, foreign keys on, 1,000 accounts, 1,000 override rows).
//!
//! `cargo bench -p idstore-repo`; `scripts/bench_report.py` turns the results into
//! the tables and plot of BENCHMARKS.md. Add `-- --quick` for a smoke run.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use idstore_domain::settings::parse_search_boxes;
use idstore_domain::{Change, Did, Settings, SettingsChange};
use idstore_repo::encryption::{ConvertOptions, Key};
use idstore_repo::migrations::Integrity;
use idstore_repo::{Database, MigrateOptions, OpenOptions, SettingsScope};
use rusqlite::{Connection, OptionalExtension, params};
use tempfile::TempDir;

const ACCOUNTS: usize = 1_000;

fn did_of(i: usize) -> String {
    format!("did:ethr:0x{i:040x}")
}

/// The shared database: migrated by idstore, then filled in one transaction.
fn bench_db(dir: &Path) -> PathBuf {
    let path = dir.join("bench.sqlite");
    let mut conn = Database::open(&path).unwrap();
    conn.migrate(&MigrateOptions::new()).unwrap();
    drop(conn);
    let mut c = raw(&path, "NORMAL");
    let tx = c.transaction().unwrap();
    {
        let mut acc = tx
            .prepare(
                "INSERT INTO accounts (dateCreated, did, publicKeyHex) VALUES (?1, ?2, '02ab')",
            )
            .unwrap();
        let mut over = tx
            .prepare(
                "INSERT INTO settings (accountDid, firstName, isRegistered) VALUES (?1, ?2, 1)",
            )
            .unwrap();
        for i in 0..ACCOUNTS {
            acc.execute(params![
                format!("2024-01-01T00:00:{:02}.{:03}Z", i / 1000, i % 1000),
                did_of(i)
            ])
            .unwrap();
            over.execute(params![did_of(i), format!("name {i}")])
                .unwrap();
        }
    }
    tx.execute_batch(&format!(
        "UPDATE settings SET firstName = 'Master', searchBoxes = '[{{\"name\":\"home\",\"bbox\":{{\"eastLong\":1,\"maxLat\":2,\"minLat\":0,\"westLong\":-1}}}}]' WHERE id = 1;
         UPDATE active_identity SET activeDid = '{}' WHERE id = 1;",
        did_of(0)
    ))
    .unwrap();
    tx.commit().unwrap();
    path
}

/// A rusqlite connection configured as idstore configures its own.
fn raw(path: &Path, synchronous: &str) -> Connection {
    let c = Connection::open(path).unwrap();
    c.execute_batch(&format!(
        "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};"
    ))
    .unwrap();
    c
}

/// Checkpoints the WAL into the database, durably, and restarts it, so the next
/// measurement does not inherit the previous one's unsynced pages. RESTART, not
/// TRUNCATE: after a truncation whichever variant runs next pays for growing the
/// file again (a size change makes every `FULL` fsync dearer).
fn settle(path: &Path) {
    raw(path, "FULL")
        .execute_batch("PRAGMA wal_checkpoint(RESTART);")
        .unwrap();
}

/// Every settings column but id/accountDid, in order, for the hand-written SQL.
const COLS: &str = "apiServer, filterFeedByNearby, filterFeedByVisible, finishedOnboarding, firstName, \
    hideRegisterPromptOnNewContact, isRegistered, lastName, lastAckedOfferToUserJwtId, \
    lastAckedOfferToUserProjectsJwtId, lastNotifiedClaimId, lastViewedClaimId, notifyingNewActivityTime, \
    notifyingReminderMessage, notifyingReminderTime, partnerApiServer, passkeyExpirationMinutes, \
    profileImageUrl, searchBoxes, showContactGivesInline, showGeneralAdvanced, showShortcutBvc, vapid, \
    warnIfProdServer, warnIfTestServer, webPushServer, hasBackedUpSeed";

/// Reads 27 settings columns starting at `at` into the same typed `Settings`.
fn settings_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Settings> {
    let s = |i: usize| row.get::<_, Option<String>>(at + i);
    let b = |i: usize| row.get::<_, Option<bool>>(at + i);
    let mut out = Settings::default();
    out.api_server = s(0)?;
    out.filter_feed_by_nearby = b(1)?;
    out.filter_feed_by_visible = b(2)?;
    out.finished_onboarding = b(3)?;
    out.first_name = s(4)?;
    out.hide_register_prompt_on_new_contact = b(5)?;
    out.is_registered = b(6)?;
    out.last_name = s(7)?;
    out.last_acked_offer_to_user_jwt_id = s(8)?;
    out.last_acked_offer_to_user_projects_jwt_id = s(9)?;
    out.last_notified_claim_id = s(10)?;
    out.last_viewed_claim_id = s(11)?;
    out.notifying_new_activity_time = s(12)?;
    out.notifying_reminder_message = s(13)?;
    out.notifying_reminder_time = s(14)?;
    out.partner_api_server = s(15)?;
    out.passkey_expiration_minutes = row.get(at + 16)?;
    out.profile_image_url = s(17)?;
    out.search_boxes = s(18)?.as_deref().map(|j| parse_search_boxes(j).unwrap());
    out.show_contact_gives_inline = b(19)?;
    out.show_general_advanced = b(20)?;
    out.show_shortcut_bvc = b(21)?;
    out.vapid = s(22)?;
    out.warn_if_prod_server = b(23)?;
    out.warn_if_test_server = b(24)?;
    out.web_push_server = s(25)?;
    out.has_backed_up_seed = b(26)?;
    Ok(out)
}

fn prefixed(prefix: &str) -> String {
    COLS.split(", ")
        .map(|c| format!("{prefix}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn account_settings(c: &mut Criterion) {
    let dir = TempDir::new().unwrap();
    let path = bench_db(dir.path());
    let mut g = c.benchmark_group("account_settings");

    let mut db = Database::open(&path).unwrap();
    let mut store = db.store().unwrap();
    g.bench_function("idstore", |b| {
        b.iter(|| black_box(store.settings(SettingsScope::Merged(None)).unwrap()))
    });

    let conn = raw(&path, "NORMAL");
    let one = format!(
        "SELECT {}, {}, p.activeDid, o.id FROM settings AS m
           LEFT JOIN active_identity AS p ON p.id = 1
           LEFT JOIN settings AS o ON o.accountDid = p.activeDid AND o.id <> 1
          WHERE m.id = 1 ORDER BY o.id LIMIT 1",
        prefixed("m"),
        prefixed("o")
    );
    g.bench_function("raw", |b| {
        b.iter(|| {
            let mut st = conn.prepare_cached(&one).unwrap();
            let (master, over, active) = st
                .query_row([], |r| {
                    let over_present = r.get::<_, Option<i64>>(55)?.is_some();
                    Ok((
                        settings_at(r, 0)?,
                        over_present.then(|| settings_at(r, 27)).transpose()?,
                        r.get::<_, Option<String>>(54)?,
                    ))
                })
                .unwrap();
            let merged = match over {
                Some(o) => master.merged_with(&o),
                None => master,
            };
            black_box((merged, active.map(|d| Did::try_from(d).unwrap())))
        })
    });

    // The plan: settings row, then the pointer, then the account check, then the
    // override row, each its own statement.
    let master_q = format!("SELECT {COLS} FROM settings WHERE id = 1");
    let over_q = format!(
        "SELECT {COLS} FROM settings WHERE accountDid = ?1 AND id <> 1 ORDER BY id LIMIT 1"
    );
    g.bench_function("plan", |b| {
        b.iter(|| {
            let master = conn
                .prepare_cached(&master_q)
                .unwrap()
                .query_row([], |r| settings_at(r, 0))
                .unwrap();
            let active: Option<String> = conn
                .prepare_cached("SELECT activeDid FROM active_identity WHERE id = 1")
                .unwrap()
                .query_row([], |r| r.get(0))
                .unwrap();
            let active = active.filter(|d| {
                conn.prepare_cached("SELECT 1 FROM accounts WHERE did = ?1")
                    .unwrap()
                    .query_row([d], |_| Ok(()))
                    .optional()
                    .unwrap()
                    .is_some()
            });
            let over = match &active {
                Some(d) => conn
                    .prepare_cached(&over_q)
                    .unwrap()
                    .query_row([d], |r| settings_at(r, 0))
                    .optional()
                    .unwrap(),
                None => None,
            };
            let merged = match over {
                Some(o) => master.merged_with(&o),
                None => master,
            };
            black_box((merged, active.map(|d| Did::try_from(d).unwrap())))
        })
    });
    g.finish();
}

fn set_active_did(c: &mut Criterion) {
    let dir = TempDir::new().unwrap();
    let path = bench_db(dir.path());
    let dids = [
        Did::parse(&did_of(1)).unwrap(),
        Did::parse(&did_of(2)).unwrap(),
    ];
    for sync in ["NORMAL", "FULL"] {
        let mut g = c.benchmark_group(format!("set_active_did/{sync}"));
        let mut conn = Database::open(&path).unwrap();
        diesel::connection::SimpleConnection::batch_execute(
            idstore_repo::fixtures::raw_connection(&mut conn),
            &format!("PRAGMA synchronous = {sync};"),
        )
        .unwrap();
        let mut store = conn.store().unwrap();
        let mut i = 0usize;
        g.bench_function("idstore", |b| {
            b.iter(|| {
                i += 1;
                store.set_active_did(Some(&dids[i % 2])).unwrap()
            })
        });
        let mut rc = raw(&path, sync);
        settle(&path);
        g.bench_function("raw", |b| {
            b.iter(|| {
                i += 1;
                let did = dids[i % 2].as_str();
                let tx = rc
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .unwrap();
                let known: bool = tx
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM accounts WHERE did = ?1)")
                    .unwrap()
                    .query_row([did], |r| r.get(0))
                    .unwrap();
                assert!(known);
                tx.prepare_cached(
                    "INSERT INTO active_identity (id, activeDid) VALUES (1, ?1)
                     ON CONFLICT (id) DO UPDATE SET activeDid = excluded.activeDid",
                )
                .unwrap()
                .execute([did])
                .unwrap();
                tx.commit().unwrap();
            })
        });
        // The plan: check, then update, each its own (auto-committed) statement.
        settle(&path);
        g.bench_function("plan", |b| {
            b.iter(|| {
                i += 1;
                let did = dids[i % 2].as_str();
                let known = rc
                    .prepare_cached("SELECT 1 FROM accounts WHERE did = ?1")
                    .unwrap()
                    .query_row([did], |_| Ok(()))
                    .optional()
                    .unwrap()
                    .is_some();
                assert!(known);
                rc.prepare_cached("UPDATE active_identity SET activeDid = ?1 WHERE id = 1")
                    .unwrap()
                    .execute([did])
                    .unwrap();
            })
        });
        g.finish();
    }
}

fn save_settings(c: &mut Criterion) {
    let dir = TempDir::new().unwrap();
    let path = bench_db(dir.path());
    let mut g = c.benchmark_group("save_settings");
    let mut conn = Database::open(&path).unwrap();
    let mut store = conn.store().unwrap();
    settle(&path);
    let mut i = 0usize;
    g.bench_function("idstore", |b| {
        b.iter(|| {
            i += 1;
            let change = {
                let mut c = SettingsChange::default();
                c.first_name = Change::Set(format!("name {i}"));
                c
            };
            store.save_settings(&change).unwrap()
        })
    });
    let mut rc = raw(&path, "NORMAL");
    settle(&path);
    g.bench_function("raw", |b| {
        b.iter(|| {
            i += 1;
            let tx = rc.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
            tx.prepare_cached("INSERT OR IGNORE INTO settings (id, apiServer) VALUES (1, 'https://api.endorser.ch')")
                .unwrap()
                .execute([])
                .unwrap();
            tx.prepare_cached("UPDATE settings SET firstName = ?1 WHERE id = 1").unwrap().execute([format!("name {i}")]).unwrap();
            tx.commit().unwrap();
        })
    });
    settle(&path);
    g.bench_function("plan", |b| {
        b.iter(|| {
            i += 1;
            rc.prepare_cached("UPDATE settings SET firstName = ?1 WHERE id = 1")
                .unwrap()
                .execute([format!("name {i}")])
                .unwrap();
        })
    });
    g.finish();
}

/// A legacy file with `rows` settings rows (the master and overrides spread over a
/// tenth as many accounts), written once per size and copied for each iteration.
fn legacy_template(dir: &Path, rows: usize) -> PathBuf {
    let path = dir.join(format!("legacy-{rows}.sqlite"));
    let mut c = Connection::open(&path).unwrap();
    c.execute_batch(idstore_repo::testing::LEGACY_APP_SCHEMA)
        .unwrap();
    // The app's own 003, which its service runs before idstore's steps.
    c.execute_batch("ALTER TABLE settings ADD COLUMN hasBackedUpSeed BOOLEAN DEFAULT FALSE;")
        .unwrap();
    let accounts = (rows / 10).max(1);
    let tx = c.transaction().unwrap();
    {
        let mut acc = tx
            .prepare("INSERT INTO accounts (dateCreated, did, identityEncrBase64, publicKeyHex) VALUES ('2024-01-01T00:00:00.000Z', ?1, 'c2VjcmV0', '02ab')")
            .unwrap();
        for i in 0..accounts {
            acc.execute([did_of(i)]).unwrap();
        }
        tx.execute("INSERT INTO settings (id, activeDid, apiServer, firstName) VALUES (1, ?1, 'https://api.endorser.ch', 'Master')", [did_of(0)])
            .unwrap();
        let mut over = tx
            .prepare("INSERT INTO settings (accountDid, firstName, isRegistered, searchBoxes) VALUES (?1, 'override', 1, '[]')")
            .unwrap();
        for i in 1..rows {
            over.execute([did_of(i % accounts)]).unwrap();
        }
    }
    tx.commit().unwrap();
    path
}

const UP: [(&str, &str); 3] = [
    (
        "00000000000000",
        include_str!("../migrations/00000000000000_legacy_baseline/up.sql"),
    ),
    (
        "20261206000001",
        include_str!("../migrations/2026-12-06-000001_active_identity/up.sql"),
    ),
    (
        "20261206000002",
        include_str!("../migrations/2026-12-06-000002_drop_settings_active_did/up.sql"),
    ),
];

fn migrate_legacy(c: &mut Criterion) {
    let dir = TempDir::new().unwrap();
    let mut g = c.benchmark_group("migrate");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for rows in [1_000usize, 10_000, 100_000, 1_000_000] {
        let template = legacy_template(dir.path(), rows);
        let work = dir.path().join("work.sqlite");
        let fresh = || {
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", work.display()));
            }
            std::fs::copy(&template, &work).unwrap();
        };
        g.bench_with_input(BenchmarkId::new("idstore", rows), &rows, |b, _| {
            b.iter_batched(
                fresh,
                |()| {
                    let mut conn = Database::open(&work).unwrap();
                    let report = conn.migrate(&MigrateOptions::new()).unwrap();
                    assert_eq!(report.applied.len(), 3);
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_with_input(
            BenchmarkId::new("idstore_full_check", rows),
            &rows,
            |b, _| {
                b.iter_batched(
                    fresh,
                    |()| {
                        let mut conn = Database::open(&work).unwrap();
                        let options = MigrateOptions::new().integrity(Integrity::Full);
                        assert_eq!(conn.migrate(&options).unwrap().applied.len(), 3);
                    },
                    BatchSize::PerIteration,
                )
            },
        );
        g.bench_with_input(BenchmarkId::new("raw", rows), &rows, |b, _| {
            b.iter_batched(
                fresh,
                |()| {
                    let mut conn = raw(&work, "NORMAL");
                    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
                    tx.execute_batch(
                        "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
                         ALTER TABLE settings ADD COLUMN hasBackedUpSeed BOOLEAN DEFAULT FALSE;",
                    )
                    .unwrap();
                    for (version, sql) in UP {
                        tx.execute_batch(sql).unwrap();
                        tx.execute("INSERT INTO __diesel_schema_migrations (version) VALUES (?1)", [version]).unwrap();
                    }
                    tx.commit().unwrap();
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn open_up_to_date(c: &mut Criterion) {
    let dir = TempDir::new().unwrap();
    let path = bench_db(dir.path());
    let mut g = c.benchmark_group("open_nothing_to_migrate");
    g.bench_function("idstore", |b| {
        b.iter(|| {
            let mut conn = Database::open(&path).unwrap();
            let report = conn.migrate(&MigrateOptions::new()).unwrap();
            assert!(report.applied.is_empty());
        })
    });
    // The floor: SQLite itself opening the file (its write-ahead log set up and,
    // on close, checkpointed and removed) and reading the applied versions.
    g.bench_function("raw", |b| {
        b.iter(|| {
            let c = Connection::open(&path).unwrap();
            let mut versions = c
                .prepare("SELECT version FROM __diesel_schema_migrations ORDER BY version")
                .unwrap();
            let n = versions
                .query_map([], |r| r.get::<_, String>(0))
                .unwrap()
                .count();
            assert_eq!(n, 3);
        })
    });
    g.finish();
}

/// The passphrase of the encrypted variants (SQLCipher 4 defaults: PBKDF2-HMAC-SHA512,
/// 256,000 iterations, paid once per connection).
const PASSPHRASE: &str = "a passphrase for the benchmarks";
/// A raw key: no key derivation at open.
const RAW_KEY: &str = "x'2DD29CA851E7B56E4697B0E1F08507293D761A05CE4D1B628663F411A8086D99'";

/// A copy of `plain` beside it, encrypted with `key`.
fn encrypted_copy(plain: &Path, name: &str, key: &str) -> PathBuf {
    let to = plain.with_file_name(name);
    std::fs::copy(plain, &to).unwrap();
    let key = Key::new(key).unwrap();
    Database::convert(&to, &OpenOptions::new(), &ConvertOptions::new(Some(key))).unwrap();
    to
}

fn keyed(key: Option<&str>) -> OpenOptions {
    OpenOptions::new()
        .create(false)
        .key(key.map(|k| Key::new(k).unwrap()))
}

/// Encrypted against plain, side by side: the same calls on the same data, one file
/// plain and one encrypted (a passphrase, SQLCipher 4's defaults).
fn encryption(c: &mut Criterion) {
    let dir = TempDir::new().unwrap();
    let plain = bench_db(dir.path());
    let encrypted = encrypted_copy(&plain, "encrypted.sqlite", PASSPHRASE);
    let files = [
        ("plain", &plain, None),
        ("encrypted", &encrypted, Some(PASSPHRASE)),
    ];

    let mut g = c.benchmark_group("encryption/account_settings");
    for (name, path, key) in files {
        let mut db = keyed(key).open(path).unwrap();
        let mut store = db.store().unwrap();
        g.bench_function(name, |b| {
            b.iter(|| black_box(store.settings(SettingsScope::Merged(None)).unwrap()))
        });
    }
    g.finish();

    let dids = [
        Did::parse(&did_of(1)).unwrap(),
        Did::parse(&did_of(2)).unwrap(),
    ];
    let mut g = c.benchmark_group("encryption/set_active_did");
    for (name, path, key) in files {
        let mut conn = keyed(key).open(path).unwrap();
        let mut store = conn.store().unwrap();
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                store.set_active_did(Some(&dids[i % 2])).unwrap()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("encryption/migrate_100k");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    let template = legacy_template(dir.path(), 100_000);
    let templates = [
        ("plain", template.clone(), None),
        (
            "encrypted",
            encrypted_copy(&template, "legacy-passphrase.sqlite", PASSPHRASE),
            Some(PASSPHRASE),
        ),
        (
            "encrypted_raw_key",
            encrypted_copy(&template, "legacy-raw.sqlite", RAW_KEY),
            Some(RAW_KEY),
        ),
    ];
    let work = dir.path().join("work-encryption.sqlite");
    // The migration alone: the connection is opened (and the key derived) in the
    // untimed setup; opening is measured on its own below.
    for (name, start, key) in &templates {
        let fresh = || {
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", work.display()));
            }
            std::fs::copy(start, &work).unwrap();
            keyed(*key).open(&work).unwrap()
        };
        g.bench_function(*name, |b| {
            b.iter_batched(
                fresh,
                |mut conn| {
                    let report = conn.migrate(&MigrateOptions::new()).unwrap();
                    assert_eq!(report.applied.len(), 3);
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();

    // Opening a migrated file: with a passphrase, SQLCipher derives the key
    // (PBKDF2, 256,000 iterations) once per connection, by design.
    let mut g = c.benchmark_group("encryption/open");
    g.sample_size(20);
    let raw_encrypted = encrypted_copy(&plain, "encrypted-raw.sqlite", RAW_KEY);
    for (name, path, key) in [
        ("plain", &plain, None),
        ("encrypted", &encrypted, Some(PASSPHRASE)),
        ("encrypted_raw_key", &raw_encrypted, Some(RAW_KEY)),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut db = keyed(key).open(path).unwrap();
                db.store().unwrap();
                black_box(db)
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    account_settings,
    set_active_did,
    save_settings,
    open_up_to_date,
    migrate_legacy,
    encryption
);
criterion_main!(benches);
