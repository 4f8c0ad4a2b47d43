//! Other processes writing beside idstore: what a run backs up is exactly what it
//! changes.

use std::time::Duration;

use crate::common::*;
use idstore_repo::migrations::RollbackOptions;
use idstore_repo::{MigrateOptions, OpenOptions};
use tempfile::TempDir;

/// Another program commits just as `migrate` (or `rollback`) starts: the run waits
/// for its lock, and its backup, taken under that same lock, holds the program's
/// write. (A backup taken before the lock would have missed it, and restoring it
/// would lose that write.)
#[test]
fn the_backup_is_exactly_the_state_that_was_changed() {
    for rollback in [false, true] {
        let dir = TempDir::new().unwrap();
        let data = format!(
            "{} INSERT INTO settings (id, apiServer) VALUES (1, 'https://api.endorser.ch');",
            account_sql(1, DID_A, "a")
        );
        let path = legacy_file(dir.path(), "app.sqlite", true, &data);
        if rollback {
            migrate(&mut open(&path).unwrap(), MigrateOptions::new()).unwrap();
        }
        let dest = dir.path().join("backup.sqlite");
        let mut app = raw(&path);
        exec(
            &mut app,
            "BEGIN IMMEDIATE; UPDATE settings SET firstName = 'written just before' WHERE id = 1;",
        );
        let run = {
            let (path, dest) = (path.clone(), dest.clone());
            std::thread::spawn(move || {
                let mut db = OpenOptions::new()
                    .busy_timeout(Duration::from_secs(20))
                    .open(&path)
                    .unwrap();
                if rollback {
                    db.rollback(&RollbackOptions::new().backup_to(&dest))
                        .map(drop)
                } else {
                    db.migrate(&MigrateOptions::new().backup_to(&dest))
                        .map(drop)
                }
            })
        };
        std::thread::sleep(Duration::from_millis(400));
        exec(&mut app, "COMMIT;");
        let expected = dump(&mut app);
        drop(app);
        run.join().unwrap().unwrap();
        let backup = dump(&mut raw(&dest));
        assert_eq!(
            backup, expected,
            "rollback {rollback}: the backup is the state the run started from"
        );
        assert!(
            text(
                &mut raw(&dest),
                "SELECT firstName AS value FROM settings WHERE id = 1"
            )
            .is_some_and(|v| v == "written just before")
        );
    }
}

/// A backup never reads or writes a name beside its own: a journal, log or index
/// already at the new backup's side names (here a hard link to another file) is
/// refused before anything is created, and left as it was; and the copy itself is
/// written without a journal file (`journal_mode = OFF` is a silent no-op under the
/// defensive mode every connection runs with, so the copy uses `MEMORY`).
#[test]
fn a_backup_reads_and_writes_nothing_beside_its_own_name() {
    for suffix in ["-journal", "-wal", "-shm"] {
        let dir = TempDir::new().unwrap();
        let path = legacy_file(dir.path(), "app.sqlite", true, &account_sql(1, DID_A, "a"));
        let before = std::fs::read(&path).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"another file's bytes").unwrap();
        let dest = dir.path().join("backup.sqlite");
        let planted = dir.path().join(format!("backup.sqlite{suffix}"));
        std::fs::hard_link(&victim, &planted).unwrap();
        let err = migrate(
            &mut open(&path).unwrap(),
            MigrateOptions::new().backup_to(&dest),
        )
        .unwrap_err();
        assert_eq!(err.kind(), idstore_repo::ErrorKind::UntrustedFile, "{err}");
        assert!(
            err.to_string().contains(&format!("backup.sqlite{suffix}")),
            "{err}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"another file's bytes");
        assert!(
            planted.exists(),
            "{suffix}: the planted name is left where it was"
        );
        assert!(!dest.exists(), "{suffix}: no backup is created");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "{suffix}: not migrated"
        );
    }
    // With nothing planted, the copy is written without a journal: a recorded
    // run (SQLite's file steps through the crash VFS, idstore's through its seam)
    // names no side file of the backup.
    let dir = TempDir::new().unwrap();
    let path = legacy_file(dir.path(), "app.sqlite", false, &account_sql(1, DID_A, "a"));
    let dest = dir.path().join("backup.sqlite");
    let (done, recording) = idstore_testkit::power::record(dir.path(), || {
        migrate(
            &mut open(&path).unwrap(),
            MigrateOptions::new().backup_to(&dest),
        )
    });
    done.unwrap();
    let beside: Vec<_> = recording
        .steps
        .iter()
        .filter(|step| format!("{step:?}").contains("backup.sqlite-"))
        .collect();
    assert!(
        beside.is_empty(),
        "the backup's own side files: {beside:#?}"
    );
    assert!(
        recording
            .steps
            .iter()
            .any(|step| format!("{step:?}").contains("backup.sqlite\""))
    );
}
