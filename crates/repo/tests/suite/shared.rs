//! Other processes writing beside idstore: what a run backs up is exactly what it
//! changes.

use std::time::Duration;

use crate::common::*;
use idstore_repo::{MigrateOptions, OpenOptions, RollbackOptions};
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
