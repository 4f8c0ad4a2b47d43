//! Encrypted files (SQLCipher): keyed opens, wrong and missing keys, an encrypted
//! legacy file through migrate and rollback, backups, conversions, pools, and no
//! plaintext anywhere on disk.

#![cfg(feature = "encryption")]

use std::path::{Path, PathBuf};

use crate::common::*;
use diesel::prelude::*;
use idstore_domain::Did;
use idstore_repo::encryption::CipherFormat;
use idstore_repo::encryption::{ConvertOptions, Key};
use idstore_repo::migrations::RollbackOptions;
use idstore_repo::{Database, ErrorKind, MigrateOptions, OpenOptions};
use tempfile::TempDir;

const RAW_KEY: &str = "x'2DD29CA851E7B56E4697B0E1F08507293D761A05CE4D1B628663F411A8086D99'";

fn key(text: &str) -> Key {
    Key::new(text).unwrap()
}

fn keyed(text: &str) -> OpenOptions {
    OpenOptions::new().key(Some(key(text)))
}

/// The error opening `path` with `options` gives.
fn refused(options: OpenOptions, path: &Path) -> idstore_repo::Error {
    match options.open(path) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e,
    }
}

/// A legacy file as the app writes it, then encrypted with `passphrase`.
fn encrypted_legacy(dir: &Path, passphrase: &str) -> PathBuf {
    let data = format!(
        "{}{}{}
         INSERT INTO settings (id, activeDid, apiServer, firstName) VALUES (1, '{DID_B}', 'https://api.endorser.ch', 'Master');
         INSERT INTO settings (id, accountDid, firstName) VALUES (2, '{DID_A}', 'Override A');",
        account_sql(1, DID_A, "a1"),
        account_sql(2, DID_B, "b1"),
        account_sql(3, DID_A, "a2-different"),
    );
    let path = legacy_file(dir, "app.sqlite", true, &data);
    Database::convert(
        &path,
        &OpenOptions::new(),
        &ConvertOptions::new(Some(key(passphrase))),
    )
    .unwrap();
    path
}

/// Whether the file starts with the plain SQLite header.
fn plain_header(path: &Path) -> bool {
    bytes(path).starts_with(b"SQLite format 3\0")
}

/// Every file in `dir` whose bytes contain `needle` (the main file, its WAL and
/// shared memory, backups, temporary files alike).
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            bytes(p)
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        })
        .collect()
}

#[test]
fn a_store_created_with_a_key_is_encrypted_throughout() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("new.sqlite");
    let mut conn = keyed("correct horse").open(&path).unwrap();
    migrate(&mut conn, MigrateOptions::new()).unwrap();
    let mut store = conn.store().unwrap();
    store
        .add_account(
            &idstore_domain::NewAccount::new(
                Did::parse(DID_C).unwrap(),
                "02ab",
                "2024-03-01T12:00:00.000Z",
            )
            .identity(idstore_domain::Secret::new("IDENTITY-MARKER".into())),
        )
        .unwrap();
    store
        .set_active_did(Some(&Did::parse(DID_C).unwrap()))
        .unwrap();
    // Open: the WAL and shared memory are there too, and hold no plaintext either.
    assert!(!plain_header(&path));
    assert_eq!(
        files_holding(dir.path(), "IDENTITY-MARKER"),
        Vec::<PathBuf>::new()
    );
    assert_eq!(files_holding(dir.path(), DID_C), Vec::<PathBuf>::new());
    drop(conn);
    assert_eq!(
        files_holding(dir.path(), "IDENTITY-MARKER"),
        Vec::<PathBuf>::new()
    );
    let mut conn = keyed("correct horse").open(&path).unwrap();
    let active = conn.store().unwrap().active_identity().unwrap().active_did;
    assert_eq!(active.unwrap().as_str(), DID_C);
}

#[test]
fn a_wrong_or_missing_key_fails_cleanly_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let path = encrypted_legacy(dir.path(), "right");
    let before = bytes(&path);
    let err = refused(keyed("wrong"), &path);
    assert_eq!(err.kind(), ErrorKind::WrongKey, "{err}");
    assert_eq!(err.kind().as_str(), "wrong_key");
    assert!(
        !err.to_string().contains("wrong"),
        "the key is never shown: {err}"
    );
    let err = refused(OpenOptions::new(), &path);
    assert_eq!(err.kind(), ErrorKind::Encrypted, "{err}");
    let err = refused(OpenOptions::new().read_only(true), &path);
    assert_eq!(err.kind(), ErrorKind::Encrypted);
    assert_eq!(bytes(&path), before, "byte for byte unchanged");
    let siblings: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(siblings.len(), 1, "no -wal, -shm or journal left behind");
    assert!(Database::is_encrypted(&path).unwrap());

    // A key for a plain file is refused too.
    let plain = legacy_file(dir.path(), "plain.sqlite", true, "");
    let err = refused(keyed("right"), &plain);
    assert_eq!(err.kind(), ErrorKind::NotEncrypted, "{err}");
    assert!(!Database::is_encrypted(&plain).unwrap());
}

#[test]
fn a_raw_key_opens_like_a_passphrase() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("raw.sqlite");
    migrate(
        &mut keyed(RAW_KEY).open(&path).unwrap(),
        MigrateOptions::new(),
    )
    .unwrap();
    assert!(!plain_header(&path));
    let mut conn = keyed(RAW_KEY).open(&path).unwrap();
    assert!(conn.check().unwrap().ok());
    let other = RAW_KEY.replace("2DD2", "2DD3");
    assert_eq!(refused(keyed(&other), &path).kind(), ErrorKind::WrongKey);
}

#[test]
fn an_encrypted_legacy_file_migrates_and_rolls_back_encrypted() {
    let dir = TempDir::new().unwrap();
    let path = encrypted_legacy(dir.path(), "k");
    let mut conn = keyed("k").open(&path).unwrap();
    let before = whole_dump(&mut conn);
    let report = migrate(&mut conn, MigrateOptions::new()).unwrap();
    assert!(report.adopted_legacy);
    assert_eq!(report.active_did.as_deref(), Some(DID_B));
    assert_eq!(
        conn.store().unwrap().quarantined_items().unwrap().len(),
        1,
        "the duplicate DID is quarantined"
    );
    assert!(!plain_header(&path));
    rollback(&mut conn, &RollbackOptions::new()).unwrap();
    assert_eq!(
        whole_dump(&mut conn),
        before,
        "every row and schema text back"
    );
    migrate(&mut conn, MigrateOptions::new()).unwrap();
    assert!(!plain_header(&path));
    assert_eq!(files_holding(dir.path(), DID_A), Vec::<PathBuf>::new());
}

#[test]
fn backups_of_an_encrypted_file_are_encrypted_with_its_key() {
    let dir = TempDir::new().unwrap();
    let path = encrypted_legacy(dir.path(), "k");
    let mut conn = keyed("k").open(&path).unwrap();
    let backup = dir.path().join("backup.sqlite");
    conn.backup_to(&backup).unwrap();
    assert!(!plain_header(&backup));
    let mut copy = keyed("k").open(&backup).unwrap();
    assert_eq!(whole_dump(&mut copy), whole_dump(&mut conn));
    assert_eq!(
        refused(OpenOptions::new(), &backup).kind(),
        ErrorKind::Encrypted
    );
}

#[test]
fn encrypt_rekey_and_decrypt_keep_every_row_of_every_table() {
    let dir = TempDir::new().unwrap();
    let path = legacy_file(dir.path(), "app.sqlite", true, &account_sql(1, DID_A, "a"));
    migrate(&mut Database::open(&path).unwrap(), MigrateOptions::new()).unwrap();
    let original = whole_dump(&mut Database::open(&path).unwrap());
    let dump_with = |options: OpenOptions| whole_dump(&mut options.open(&path).unwrap());

    let done = Database::convert(
        &path,
        &OpenOptions::new(),
        &ConvertOptions::new(Some(key("one"))),
    )
    .unwrap();
    assert!(done.encrypted && done.tables >= 10, "{done:?}");
    assert!(!plain_header(&path));
    assert_eq!(dump_with(keyed("one")), original);

    Database::convert(
        &path,
        &keyed("one"),
        &ConvertOptions::new(Some(key(RAW_KEY))),
    )
    .unwrap();
    assert_eq!(refused(keyed("one"), &path).kind(), ErrorKind::WrongKey);
    assert_eq!(dump_with(keyed(RAW_KEY)), original);

    let done = Database::convert(&path, &keyed(RAW_KEY), &ConvertOptions::new(None)).unwrap();
    assert!(!done.encrypted);
    assert!(plain_header(&path));
    assert_eq!(dump_with(OpenOptions::new()), original);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("convert"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_conversion_refuses_a_file_another_connection_has_open() {
    let dir = TempDir::new().unwrap();
    let path = encrypted_legacy(dir.path(), "k");
    let mut other = keyed("k").open(&path).unwrap();
    migrate(&mut other, MigrateOptions::new()).unwrap();
    let before = whole_dump(&mut other);
    let err =
        Database::convert(&path, &keyed("k"), &ConvertOptions::new(Some(key("new")))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InUse, "{err}");
    assert_eq!(whole_dump(&mut other), before);
    drop(other);
    assert!(keyed("k").open(&path).is_ok(), "still under its old key");
}

#[cfg(feature = "pool")]
#[test]
fn pooled_connections_are_keyed_like_single_ones() {
    let dir = TempDir::new().unwrap();
    let path = encrypted_legacy(dir.path(), "k");
    migrate(&mut keyed("k").open(&path).unwrap(), MigrateOptions::new()).unwrap();
    let pool = idstore_repo::pool::Pool::open(&path, keyed("k"), 2).unwrap();
    let mut conns = [pool.get().unwrap(), pool.get().unwrap()];
    for conn in &mut conns {
        assert_eq!(
            conn.store()
                .unwrap()
                .active_identity()
                .unwrap()
                .active_did
                .unwrap()
                .as_str(),
            DID_B
        );
    }
    assert_eq!(
        idstore_repo::pool::Pool::open(&path, keyed("wrong"), 1)
            .unwrap_err()
            .kind(),
        ErrorKind::WrongKey
    );
}

#[test]
fn diesels_own_harness_runs_the_migrations_on_an_encrypted_file() {
    use diesel_migrations::MigrationHarness;
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("harness.sqlite");
    let mut conn = keyed("k").open(&path).unwrap();
    conn.raw().run_pending_migrations(MIGRATIONS).unwrap();
    conn.raw().revert_last_migration(MIGRATIONS).unwrap();
    conn.raw().run_pending_migrations(MIGRATIONS).unwrap();
    drop(conn);
    assert!(!plain_header(&path));
    let mut conn = keyed("k").open(&path).unwrap();
    assert!(!conn.status().unwrap().needs_migration());
}

#[test]
fn a_sqlcipher_3_file_is_found_by_its_key_alone_and_stays_sqlcipher_3() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("v3.sqlite");
    let v3 = || keyed("old").sqlcipher_compatibility(CipherFormat::Sqlcipher3);
    migrate(&mut v3().open(&path).unwrap(), MigrateOptions::new()).unwrap();
    // Forced to SQLCipher 4's settings, the key does not open it…
    assert_eq!(
        refused(
            keyed("old").sqlcipher_compatibility(CipherFormat::Sqlcipher4),
            &path
        )
        .kind(),
        ErrorKind::WrongKey
    );
    // …but without a setting its format is found, and kept for every later use.
    let mut conn = keyed("old").open(&path).unwrap();
    assert_eq!(conn.cipher_format(), Some(CipherFormat::Sqlcipher3));
    assert!(conn.check().unwrap().ok());
    let page_size: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT page_size FROM pragma_page_size)",
    ))
    .get_result(conn.raw())
    .unwrap();
    assert_eq!(page_size, 1024, "SQLCipher 3's page size");
    // A backup is a SQLCipher 3 file under the same key.
    let backup = dir.path().join("v3-backup.sqlite");
    conn.backup_to(&backup).unwrap();
    let mut copy = v3().read_only(true).open(&backup).unwrap();
    assert_eq!(whole_dump(&mut copy), whole_dump(&mut conn));
    assert_eq!(
        refused(
            keyed("old").sqlcipher_compatibility(CipherFormat::Sqlcipher4),
            &backup
        )
        .kind(),
        ErrorKind::WrongKey
    );
    let plain = keyed("old").open(&dir.path().join("v4.sqlite")).unwrap();
    assert_eq!(plain.cipher_format(), Some(CipherFormat::Sqlcipher4));
}

/// `OpenOptions`' calls work in any order: a SQLCipher format given before the key
/// is kept, as one given after it is.
#[test]
fn the_cipher_format_given_before_the_key_is_kept() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("v4.sqlite");
    migrate(&mut keyed("k").open(&path).unwrap(), MigrateOptions::new()).unwrap();
    let before = OpenOptions::new()
        .sqlcipher_compatibility(CipherFormat::Sqlcipher3)
        .key(Some(key("k")));
    let after = keyed("k").sqlcipher_compatibility(CipherFormat::Sqlcipher3);
    for (order, options) in [("before", before), ("after", after)] {
        // Fixed to SQLCipher 3, the key cannot open a SQLCipher 4 file.
        assert_eq!(
            refused(options, &path).kind(),
            ErrorKind::WrongKey,
            "{order}"
        );
    }
    let found = OpenOptions::new()
        .sqlcipher_compatibility(CipherFormat::Sqlcipher4)
        .key(Some(key("k")))
        .open(&path)
        .unwrap();
    assert_eq!(found.cipher_format(), Some(CipherFormat::Sqlcipher4));
}
