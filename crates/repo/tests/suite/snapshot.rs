//! `OpenOptions::snapshot`: a consistent copy taken without creating or writing
//! anything at or beside the file, and `OpenOptions::scratch`, the copy worked on
//! without a sync.

use std::path::Path;

use crate::common::*;
use diesel::connection::SimpleConnection;
use idstore_repo::{ErrorKind, MigrateOptions, OpenOptions};
use tempfile::TempDir;

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A file a writer was killed in the middle of writing (its pages in the file, its
/// hot journal beside it): the snapshot takes both, the original and its journal
/// stay byte for byte as they were, and the copy's first open recovers the
/// committed rows.
#[test]
fn a_snapshot_takes_an_interrupted_write_with_its_journal_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let private = TempDir::new().unwrap();
    let file = legacy_file(dir.path(), "app.sqlite", true, &account_sql(1, DID_A, "a"));
    let committed = dump(&mut raw(&file));
    let mut writer = raw(&file);
    writer
        .batch_execute(
            "PRAGMA cache_size = 2; BEGIN IMMEDIATE;
             UPDATE accounts SET publicKeyHex = hex(randomblob(4000));
             INSERT INTO accounts (dateCreated, did, publicKeyHex)
               SELECT '2024', 'did:ethr:0x' || hex(randomblob(20)), hex(randomblob(2000))
               FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) SELECT i FROM n);",
        )
        .unwrap();
    // The writer dies here: its journal is hot once no one holds its lock.
    let journal = bytes(&beside(&file, "-journal"));
    let main = bytes(&file);
    let hot = dir.path().join("hot.sqlite");
    std::fs::copy(&file, &hot).unwrap();
    std::fs::write(beside(&hot, "-journal"), &journal).unwrap();
    writer.batch_execute("ROLLBACK;").unwrap();
    drop(writer);
    let before = names(dir.path());

    let copy = private.path().join("copy.sqlite");
    OpenOptions::new().snapshot(&hot, &copy).unwrap();
    assert_eq!(bytes(&hot), main, "the original is as it was");
    assert_eq!(bytes(&beside(&hot, "-journal")), journal, "its journal too");
    assert_eq!(names(dir.path()), before, "nothing new beside it");
    assert!(
        beside(&copy, "-journal").exists(),
        "the journal came with the copy"
    );
    let mut db = OpenOptions::new()
        .create(false)
        .scratch(true)
        .open(&copy)
        .unwrap();
    db.migrate(&MigrateOptions::new()).unwrap();
    drop(db);
    let mut recovered = raw(&copy);
    assert_eq!(
        dump(&mut recovered)["accounts"],
        committed["accounts"],
        "the copy holds the committed rows"
    );
}

/// A link or a FIFO at the name is refused without being followed or opened.
#[test]
fn a_snapshot_refuses_a_link_or_a_fifo_at_the_name() {
    let dir = TempDir::new().unwrap();
    let private = TempDir::new().unwrap();
    let file = legacy_file(dir.path(), "app.sqlite", true, "");
    let link = dir.path().join("link.sqlite");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let fifo = dir.path().join("fifo.sqlite");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for (path, kind) in [(&link, ErrorKind::NotAFile), (&fifo, ErrorKind::NotAFile)] {
        let err = OpenOptions::new()
            .snapshot(path, &private.path().join("copy.sqlite"))
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert!(!private.path().join("copy.sqlite").exists());
    }
}
