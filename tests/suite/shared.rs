//! The file is shared: other users in its folder, other processes writing beside
//! idstore, side files that are not its own, paths that are not what they seem.
//! Every name idstore touches beside a database is tried with another user's
//! planted link, hard link, FIFO and own file; reads are tried as another user and
//! in a folder the caller cannot write, in both journal modes, with and without
//! frames in the log.
//!
//! The tests of other users need root and `setpriv` (util-linux); without them they
//! say loudly that they skipped (CI runs them as root).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;
use diesel::connection::SimpleConnection;
use serde_json::Value;
use tempfile::TempDir;

const KEY: &str = "x'2DD29CA851E7B56E4697B0E1F08507293D761A05CE4D1B628663F411A8086D99'";
const VICTIM: &[u8] = b"a file only its owner may write; idstore must never write it";

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("idstore")
}

/// `idstore --db DB ARGS` as user `uid`, with `env`.
fn idstore_as(uid: u32, db: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = as_user(uid, &bin());
    cmd.arg("--db").arg(db).args(args);
    for var in ["IDSTORE_DB", "IDSTORE_KEY", "IDSTORE_NEW_KEY"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// A folder every user may write (as a shared app-data folder is), holding user
/// `owner`'s migrated database `app.sqlite` (mode 0644), and a victim file of
/// root's elsewhere.
fn shared_folder(owner: u32) -> (TempDir, PathBuf, PathBuf) {
    let dir = TempDir::new().unwrap();
    let folder = dir.path().join("shared");
    std::fs::create_dir(&folder).unwrap();
    let db = migrated(&folder);
    give(&folder, 0, 0o1777);
    give(&db, owner, 0o644);
    let victim = dir.path().join("victim");
    std::fs::write(&victim, VICTIM).unwrap();
    give(&victim, 0, 0o600);
    (dir, db, victim)
}

/// Plants `name` beside `db` as user B would: a symlink to the victim, a hard link
/// to it, a FIFO, or a regular file of B's own.
#[derive(Debug, Clone, Copy)]
enum Plant {
    Symlink,
    HardLink,
    Fifo,
    ForeignFile,
}

const PLANTS: [Plant; 4] = [
    Plant::Symlink,
    Plant::HardLink,
    Plant::Fifo,
    Plant::ForeignFile,
];

fn plant(kind: Plant, at: &Path, victim: &Path) {
    match kind {
        Plant::Symlink => std::os::unix::fs::symlink(victim, at).unwrap(),
        Plant::HardLink => std::fs::hard_link(victim, at).unwrap(),
        Plant::Fifo => {
            assert!(runs("mkfifo", &[at.to_str().unwrap()]));
        }
        Plant::ForeignFile => {
            std::fs::write(at, b"user B's own file").unwrap();
            give(at, USER_B, 0o644);
        }
    }
    if matches!(kind, Plant::Symlink | Plant::Fifo) {
        // (A link's own owner: user B made it. A hard link shares its target's.)
        let _ = std::os::unix::fs::lchown(at, Some(USER_B), Some(USER_B));
    }
}

fn victim_intact(victim: &Path, what: &str) {
    assert_eq!(
        std::fs::read(victim).unwrap(),
        VICTIM,
        "{what}: the victim was written"
    );
    assert_eq!(std::fs::metadata(victim).unwrap().uid(), 0, "{what}");
}

/// Runs `f` with a bound on its time: a FIFO opened for reading blocks forever.
fn within_seconds<T: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what}: still running after {secs} s (blocked?)"))
}

/// Cases 1 and 2: a conversion's copy and its journal, planted by another user.
/// Root's `encrypt` and a keyed read never write through them: a link, a hard link
/// or a FIFO is unlinked unwritten; another user's own file is left, and the
/// conversion refuses while it is there.
#[test]
fn planted_conversion_copies_are_never_written_through() {
    let test = "shared::planted_conversion_copies_are_never_written_through";
    if !can_switch_users(test) {
        return;
    }
    for kind in PLANTS {
        for suffix in ["", "-journal"] {
            let what = format!("{kind:?} at .app.sqlite.idstore-convert{suffix}, encrypt");
            let (_dir, db, victim) = shared_folder(0);
            let name = format!(".app.sqlite.idstore-convert{suffix}");
            let planted = db.with_file_name(&name);
            plant(kind, &planted, &victim);
            let out = within_seconds(60, &what, {
                let db = db.clone();
                move || {
                    idstore(&db)
                        .args(["encrypt", "--no-backup"])
                        .env("IDSTORE_NEW_KEY", KEY)
                        .output()
                        .unwrap()
                }
            });
            victim_intact(&victim, &what);
            match kind {
                Plant::ForeignFile => {
                    assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
                    assert!(
                        text(&out).contains("not idstore's"),
                        "{what}: {}",
                        text(&out)
                    );
                    assert_eq!(std::fs::read(&planted).unwrap(), b"user B's own file");
                    assert!(keyed_rows(&db, None).is_some(), "{what}: still plain");
                }
                _ => {
                    assert!(out.status.success(), "{what}: {}", text(&out));
                    assert!(keyed_rows(&db, Some(KEY)).is_some(), "{what}: encrypted");
                    assert!(
                        std::fs::symlink_metadata(&planted).is_err(),
                        "{what}: the planted name is gone"
                    );
                }
            }
        }
    }
    // The same through a read: an encrypted file, a leftover copy of idstore's and a
    // planted journal name beside it; the key is given, so the open cleans up.
    for kind in PLANTS {
        let what = format!("{kind:?} at the copy's journal, keyed status");
        let (_dir, db, victim) = shared_folder(0);
        idstore(&db)
            .args(["encrypt", "--no-backup", "-q"])
            .env("IDSTORE_NEW_KEY", KEY)
            .assert()
            .success();
        let copy = db.with_file_name(".app.sqlite.idstore-convert");
        std::fs::copy(&db, &copy).unwrap();
        plant(
            kind,
            &db.with_file_name(".app.sqlite.idstore-convert-journal"),
            &victim,
        );
        let out = within_seconds(60, &what, {
            let db = db.clone();
            move || {
                idstore(&db)
                    .arg("status")
                    .env("IDSTORE_KEY", KEY)
                    .output()
                    .unwrap()
            }
        });
        assert!(out.status.success(), "{what}: {}", text(&out));
        victim_intact(&victim, &what);
        assert!(!copy.exists(), "{what}: idstore's own leftover is removed");
    }
}

/// Names that look like plaintext copies but are another user's planted names are
/// never wiped: `--remove-plaintext-copies` leaves them and says so.
#[test]
fn plaintext_copy_removal_never_wipes_a_planted_name() {
    let test = "shared::plaintext_copy_removal_never_wipes_a_planted_name";
    if !can_switch_users(test) {
        return;
    }
    for kind in [Plant::Symlink, Plant::HardLink, Plant::ForeignFile] {
        let what = format!("{kind:?} named like a backup");
        let (dir, db, _) = shared_folder(0);
        // The victim is itself a plain SQLite file (a link to it looks like a copy).
        let victim = dir.path().join("victim.sqlite");
        std::fs::copy(&db, &victim).unwrap();
        give(&victim, 0, 0o600);
        let before = std::fs::read(&victim).unwrap();
        let own = db.with_file_name("app.sqlite.backup-20260101T000000000Z.sqlite");
        std::fs::copy(&db, &own).unwrap();
        let planted = db.with_file_name("app.sqlite.backup-20260102T000000000Z.sqlite");
        match kind {
            Plant::ForeignFile => {
                std::fs::copy(&db, &planted).unwrap();
                give(&planted, USER_B, 0o600);
            }
            other => plant(other, &planted, &victim),
        }
        let out = json_of(
            idstore(&db)
                .args(["encrypt", "--no-backup", "--remove-plaintext-copies"])
                .env("IDSTORE_NEW_KEY", KEY),
        );
        assert_eq!(
            std::fs::read(&victim).unwrap(),
            before,
            "{what}: victim written"
        );
        assert!(
            !own.exists(),
            "{what}: idstore's own plaintext backup is removed"
        );
        assert!(
            std::fs::symlink_metadata(&planted).is_ok(),
            "{what}: the planted name is left"
        );
        let left = out["not_removed"].as_array().unwrap();
        assert!(
            left.iter().any(|l| l["path"]
                .as_str()
                .unwrap()
                .ends_with("20260102T000000000Z.sqlite")),
            "{what}: {out}"
        );
    }
}

/// The names SQLite keeps beside the file (`-journal`, `-wal`, `-shm`), planted by
/// another user: every command refuses before SQLite opens anything
/// (`untrusted_file`), and nothing is written through them.
#[test]
fn planted_side_files_are_refused_before_anything_opens_them() {
    let test = "shared::planted_side_files_are_refused_before_anything_opens_them";
    if !can_switch_users(test) {
        return;
    }
    for suffix in ["-journal", "-wal", "-shm"] {
        for kind in PLANTS {
            let what = format!("{kind:?} at app.sqlite{suffix}");
            let (_dir, db, victim) = shared_folder(0);
            let before = std::fs::read(&db).unwrap();
            plant(kind, &beside(&db, suffix), &victim);
            for args in [&["status"][..], &["settings", "set", "firstName=X"]] {
                let out = within_seconds(30, &what, {
                    let db = db.clone();
                    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                    move || idstore(&db).args(&args).arg("--json").output().unwrap()
                });
                assert_eq!(
                    out.status.code(),
                    Some(1),
                    "{what} {args:?}: {}",
                    text(&out)
                );
                let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(doc["error"]["kind"], "untrusted_file", "{what}: {doc}");
                victim_intact(&victim, &what);
                assert_eq!(std::fs::read(&db).unwrap(), before, "{what}: file changed");
            }
        }
    }
}

/// The names idstore creates (a backup, an export) are created new, never through a
/// name that is there: a planted link or FIFO there is refused (`exists`).
#[test]
fn new_files_are_never_created_through_a_planted_name() {
    let test = "shared::new_files_are_never_created_through_a_planted_name";
    if !can_switch_users(test) {
        return;
    }
    for kind in PLANTS {
        let what = format!("{kind:?} at the export path");
        let dir = TempDir::new().unwrap();
        let db = dir.path().join("demo.sqlite");
        idstore(&db)
            .args(["demo", "legacy"])
            .arg(&db)
            .assert()
            .success();
        idstore(&db).args(["migrate", "-q"]).assert().success();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, VICTIM).unwrap();
        let export = dir.path().join("export.json");
        plant(kind, &export, &victim);
        let out = within_seconds(30, &what, {
            let db = db.clone();
            let export = export.clone();
            move || {
                idstore(&db)
                    .args([
                        "quarantine",
                        "discard",
                        "account:4",
                        "--no-backup",
                        "--json",
                        "--export",
                    ])
                    .arg(&export)
                    .output()
                    .unwrap()
            }
        });
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["error"]["kind"], "exists", "{what}: {doc}");
        assert_eq!(std::fs::read(&victim).unwrap(), VICTIM, "{what}");
        let listed = json_of(idstore(&db).args(["quarantine", "list"]));
        assert_eq!(
            listed["items"].as_array().unwrap().len(),
            1,
            "{what}: still there"
        );
    }
    // A backup's name: the library is given it (the command's has a timestamp).
    for kind in PLANTS {
        let what = format!("{kind:?} at the backup path");
        let dir = TempDir::new().unwrap();
        let db = migrated(dir.path());
        let victim = dir.path().join("victim");
        std::fs::write(&victim, VICTIM).unwrap();
        let dest = dir.path().join("backup.sqlite");
        plant(kind, &dest, &victim);
        let err = idstore_repo::Database::open(&db)
            .unwrap()
            .backup_to(&dest)
            .unwrap_err();
        assert_eq!(err.kind(), idstore_repo::ErrorKind::Exists, "{what}: {err}");
        assert_eq!(std::fs::read(&victim).unwrap(), VICTIM, "{what}");
    }
}

/// The states a file of user A's can be in when user B reads it.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// A rollback journal (deleted at each commit): nothing beside it.
    Rollback,
    /// WAL mode, no log or index beside it (the last connection cleaned up).
    WalClean,
    /// WAL mode with frames in the log and its index beside it (the app is running,
    /// or was killed).
    WalFramesIndexed,
    /// WAL mode with frames in the log and no index.
    WalFramesOnly,
}

/// User A's migrated file in `folder`, laid out as `layout` says; the WAL frames
/// hold firstName = 'FromTheLog'.
fn users_file(folder: &Path, layout: Layout) -> PathBuf {
    let work = TempDir::new().unwrap();
    let source = migrated(work.path());
    let db = folder.join("app.sqlite");
    match layout {
        Layout::Rollback => {
            std::fs::copy(&source, &db).unwrap();
        }
        Layout::WalClean => {
            raw(&source)
                .batch_execute("PRAGMA journal_mode = WAL;")
                .unwrap();
            std::fs::copy(&source, &db).unwrap();
        }
        Layout::WalFramesIndexed | Layout::WalFramesOnly => {
            let mut writer = raw(&source);
            writer
                .batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                     UPDATE settings SET firstName = 'FromTheLog' WHERE id = 1;",
                )
                .unwrap();
            let sides: &[&str] = match layout {
                Layout::WalFramesIndexed => &["", "-wal", "-shm"],
                _ => &["", "-wal"],
            };
            for suffix in sides {
                std::fs::copy(beside(&source, suffix), beside(&db, suffix)).unwrap();
            }
            drop(writer);
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        if beside(&db, suffix).exists() {
            give(&beside(&db, suffix), USER_A, 0o644);
        }
    }
    db
}

/// Cases 3 and 4: another user's reads create nothing the owner would then be
/// locked out by, and reads work in a folder the caller cannot write, in both
/// journal modes, with and without frames in the log (frames without their index
/// are refused, saying why, since reading them would create one).
#[test]
fn reads_as_another_user_create_nothing_and_work_without_write_permission() {
    let test = "shared::reads_as_another_user_create_nothing_and_work_without_write_permission";
    if !can_switch_users(test) {
        return;
    }
    let reads: [&[&str]; 5] = [
        &["status"],
        &["check"],
        &["account", "list"],
        &["settings", "show"],
        &["active"],
    ];
    let mut runs = 0;
    for layout in [
        Layout::Rollback,
        Layout::WalClean,
        Layout::WalFramesIndexed,
        Layout::WalFramesOnly,
    ] {
        // A folder B may write (shared), and one only A may (B reads through it).
        for folder_mode in [0o1777, 0o755] {
            let what = format!("{layout:?} in a folder of mode {folder_mode:o}");
            let dir = TempDir::new().unwrap();
            let folder = dir.path().join("a");
            std::fs::create_dir(&folder).unwrap();
            give(dir.path(), 0, 0o755);
            let db = users_file(&folder, layout);
            give(&folder, USER_A, folder_mode);
            let before = names_and_owners(&folder);
            let bytes = snapshot(&db);
            for args in reads {
                let out = idstore_as(USER_B, &db, args, &[]);
                runs += 1;
                if matches!(layout, Layout::WalFramesOnly) {
                    assert_eq!(
                        out.status.code(),
                        Some(1),
                        "{what} {args:?}: {}",
                        text(&out)
                    );
                    let said = text(&out);
                    assert!(
                        said.contains("needs_recovery") || said.contains("interrupted write"),
                        "{what} {args:?}: {said}"
                    );
                    assert!(
                        said.contains("belongs to another user")
                            || said.contains("cannot be written"),
                        "{what}: {said}"
                    );
                } else {
                    assert!(out.status.success(), "{what} {args:?}: {}", text(&out));
                }
                if matches!(layout, Layout::WalFramesIndexed) && args == ["settings", "show"] {
                    assert!(text(&out).contains("FromTheLog"), "{what}: the log is read");
                }
                assert_eq!(
                    names_and_owners(&folder),
                    before,
                    "{what} {args:?}: B's read left something beside A's file"
                );
                assert_unchanged(&db, &bytes, &format!("{what} {args:?}"));
            }
            // A can still write: nothing of B's is in the way.
            let out = idstore_as(USER_A, &db, &["settings", "set", "firstName=Owner"], &[]);
            assert!(
                out.status.success(),
                "{what}: the owner writes: {}",
                text(&out)
            );
        }
    }
    eprintln!("figures: {runs} reads as another user, 0 side files left, 0 bytes written");
}

/// Writing another user's file is refused: its journal and log would be the
/// caller's, and lock the owner out.
#[test]
fn writes_to_another_users_file_are_refused() {
    let test = "shared::writes_to_another_users_file_are_refused";
    if !can_switch_users(test) {
        return;
    }
    let dir = TempDir::new().unwrap();
    let folder = dir.path().join("a");
    std::fs::create_dir(&folder).unwrap();
    let db = users_file(&folder, Layout::Rollback);
    give(&db, USER_A, 0o666);
    give(&folder, USER_A, 0o1777);
    let bytes = snapshot(&db);
    let out = idstore_as(
        USER_B,
        &db,
        &["settings", "set", "firstName=B", "--json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "read_only", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("belongs to another user")
    );
    assert_unchanged(&db, &bytes, "refused");
    assert_eq!(names_and_owners(&folder).len(), 1, "nothing beside it");
}

/// Case 7: a journal that belongs to another file, beside a copy of this one. The
/// recovery is checked: it fails, everything is put back as it was (journal
/// included), and the command refuses (`damaged`), naming the copies it kept.
#[test]
fn a_journal_from_another_file_is_not_applied() {
    let dir = TempDir::new().unwrap();
    let other = legacy_with_contacts(dir.path());
    let hot_other = dir.path().join("other-hot.sqlite");
    killed_mid_write(&other, &hot_other);
    // This file: a migrated one with its own accounts (a different layout).
    let mine_dir = dir.path().join("mine");
    std::fs::create_dir(&mine_dir).unwrap();
    let mine = migrated(&mine_dir);
    raw(&mine)
        .batch_execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
             INSERT INTO accounts (dateCreated, did, publicKeyHex)
             SELECT '2024-01-01T00:00:00Z', printf('did:ethr:0x%040x', i), '02' FROM n;",
        )
        .unwrap();
    std::fs::copy(beside(&hot_other, "-journal"), beside(&mine, "-journal")).unwrap();
    let file_before = std::fs::read(&mine).unwrap();
    let journal_before = std::fs::read(beside(&mine, "-journal")).unwrap();
    for args in [
        &["status"][..],
        &["migrate"],
        &["settings", "set", "firstName=X"],
    ] {
        let out = idstore(&mine).args(args).arg("--json").output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["error"]["kind"], "damaged", "{args:?}: {doc}");
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(message.contains("before-recovery"), "{message}");
        assert_eq!(
            std::fs::read(&mine).unwrap(),
            file_before,
            "{args:?}: put back"
        );
        assert_eq!(
            std::fs::read(beside(&mine, "-journal")).unwrap(),
            journal_before,
            "{args:?}: the journal put back"
        );
    }
    let kept: Vec<String> = std::fs::read_dir(&mine_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".before-recovery-"))
        .collect();
    assert!(kept.len() >= 2, "copies kept aside: {kept:?}");
    for name in &kept {
        let mode = std::fs::metadata(mine_dir.join(name)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name} is owner-only");
    }
}

/// Case 7, the log: frames of another file's log beside this one (in WAL mode) are
/// checked before anything could checkpoint them: refused, file and log unchanged.
#[test]
fn a_log_from_another_file_is_not_applied() {
    let dir = TempDir::new().unwrap();
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = legacy_with_contacts(&other_dir);
    let mut writer = raw(&other);
    writer
        .batch_execute(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
             UPDATE contacts SET name = hex(randomblob(400));",
        )
        .unwrap();
    let wal = std::fs::read(beside(&other, "-wal")).unwrap();
    drop(writer);
    let mine_dir = dir.path().join("mine");
    std::fs::create_dir(&mine_dir).unwrap();
    let mine = migrated(&mine_dir);
    raw(&mine)
        .batch_execute("PRAGMA journal_mode = WAL;")
        .unwrap();
    std::fs::write(beside(&mine, "-wal"), &wal).unwrap();
    let before = snapshot(&mine);
    for args in [&["status"][..], &["settings", "set", "firstName=X"]] {
        let out = idstore(&mine).args(args).arg("--json").output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["error"]["kind"], "damaged", "{args:?}: {doc}");
        assert_unchanged(&mine, &before, &format!("{args:?}"));
    }
}

/// Case 8: UTF-16 files, both byte orders, are read with their encoding and
/// migrated, checked and rolled back like UTF-8 ones, every string kept.
#[test]
fn utf16_files_are_served_like_utf8_ones() {
    for encoding in ["UTF-16le", "UTF-16be"] {
        let dir = TempDir::new().unwrap();
        let db = dir.path().join("app.sqlite");
        let mut conn = raw(&db);
        conn.batch_execute(&format!("PRAGMA encoding = '{encoding}';"))
            .unwrap();
        conn.batch_execute(idstore_repo::testing::LEGACY_APP_SCHEMA)
            .unwrap();
        conn.batch_execute(idstore_repo::testing::LEGACY_DEMO_DATA)
            .unwrap();
        conn.batch_execute(
            "ALTER TABLE settings ADD COLUMN hasBackedUpSeed BOOLEAN DEFAULT FALSE;
             UPDATE settings SET lastName = 'Ünïcödé ✓ 😀' WHERE id = 1;",
        )
        .unwrap();
        drop(conn);
        let before = keyed_rows(&db, None).unwrap();
        let status = json_of(idstore(&db).arg("status"));
        assert_eq!(status["active_did"], DEMO_ACTIVE, "{encoding}: {status}");
        idstore(&db)
            .args(["migrate", "-q", "--no-backup"])
            .assert()
            .success();
        let check = idstore(&db).args(["check", "--json"]).output().unwrap();
        let check: Value = serde_json::from_slice(&check.stdout).unwrap();
        let kinds: Vec<&str> = check["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["kind"].as_str().unwrap())
            .collect();
        assert!(
            kinds.iter().all(|k| *k == "quarantined_account"),
            "{encoding}: only the demo's duplicate waits: {check}"
        );
        let shown = json_of(idstore(&db).args(["settings", "show"]));
        assert_eq!(shown["lastName"], "Ünïcödé ✓ 😀", "{encoding}");
        idstore(&db)
            .args(["rollback", "-q", "--no-backup"])
            .assert()
            .success();
        assert_eq!(
            keyed_rows(&db, None).unwrap(),
            before,
            "{encoding}: round trip"
        );
        let mut conn = raw(&db);
        assert_eq!(
            crate::common::text_value(&mut conn, "SELECT encoding AS value FROM pragma_encoding"),
            Some(encoding.to_owned())
        );
    }
}

/// The demo file's active identity.
const DEMO_ACTIVE: &str = "did:ethr:0x1234567890AbCdEf1234567890aBcDeF12345678";

/// Case 9: the database path must be a regular file (or absent): a FIFO, a device
/// or a socket is refused at once (`not_a_file`), before anything opens it.
#[test]
fn a_path_that_is_not_a_regular_file_is_refused_at_once() {
    let dir = TempDir::new().unwrap();
    let fifo = dir.path().join("fifo.sqlite");
    assert!(runs("mkfifo", &[fifo.to_str().unwrap()]));
    let socket = dir.path().join("socket.sqlite");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    for path in [
        fifo,
        PathBuf::from("/dev/zero"),
        PathBuf::from("/dev/null"),
        socket,
    ] {
        for args in [&["status"][..], &["migrate"], &["check"]] {
            let out = within_seconds(20, &format!("{} {args:?}", path.display()), {
                let path = path.clone();
                let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                move || idstore(&path).args(&args).arg("--json").output().unwrap()
            });
            assert_eq!(out.status.code(), Some(1), "{}", text(&out));
            let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                doc["error"]["kind"],
                "not_a_file",
                "{}: {doc}",
                path.display()
            );
        }
    }
}

/// Case 10: conversions keep the header: `auto_vacuum`, `user_version`,
/// `application_id`, the text encoding and WAL mode survive encrypt and decrypt; a
/// page size SQLCipher's format cannot keep is reported.
#[test]
fn conversions_keep_the_header_or_say_what_changed() {
    for (page_size, auto_vacuum) in [(4096, 1), (4096, 2), (512, 0), (8192, 1), (65536, 2)] {
        let what = format!("page size {page_size}, auto_vacuum {auto_vacuum}");
        let dir = TempDir::new().unwrap();
        let db = dir.path().join("app.sqlite");
        let mut conn = raw(&db);
        conn.batch_execute(&format!(
            "PRAGMA page_size = {page_size}; PRAGMA auto_vacuum = {auto_vacuum};
             PRAGMA user_version = 7; PRAGMA application_id = 1234;"
        ))
        .unwrap();
        conn.batch_execute(idstore_repo::testing::LEGACY_APP_SCHEMA)
            .unwrap();
        conn.batch_execute("PRAGMA journal_mode = WAL;").unwrap();
        drop(conn);
        idstore(&db)
            .args(["migrate", "-q", "--no-backup"])
            .assert()
            .success();
        let header = |conn: &mut diesel::SqliteConnection| {
            [
                "auto_vacuum",
                "user_version",
                "application_id",
                "encoding",
                "journal_mode",
            ]
            .map(|p| {
                crate::common::text_value(
                    conn,
                    &format!("SELECT CAST({p} AS TEXT) AS value FROM pragma_{p}"),
                )
            })
        };
        let before = header(&mut raw(&db));
        let encrypted = json_of(
            idstore(&db)
                .args(["encrypt", "--no-backup"])
                .env("IDSTORE_NEW_KEY", KEY),
        );
        if page_size == 4096 {
            assert!(
                encrypted["page_size_changed"].is_null(),
                "{what}: {encrypted}"
            );
        } else {
            assert_eq!(
                encrypted["page_size_changed"]["before"], page_size,
                "{what}: {encrypted}"
            );
            assert_eq!(encrypted["page_size_changed"]["after"], 4096, "{what}");
        }
        let decrypted = json_of(
            idstore(&db)
                .arg("decrypt")
                .arg("--no-backup")
                .env("IDSTORE_KEY", KEY),
        );
        assert!(
            decrypted["page_size_changed"].is_null(),
            "{what}: {decrypted}"
        );
        assert_eq!(header(&mut raw(&db)), before, "{what}");
        assert_eq!(
            std::fs::read(&db).unwrap()[18],
            2,
            "{what}: WAL in the header"
        );
    }
}

/// Case 11: with `--json`, a usage error prints one JSON document and one stderr
/// line, exit 2 (`-q` keeps stderr to one line too).
#[test]
fn usage_errors_keep_the_json_promise() {
    let dir = TempDir::new().unwrap();
    let db = migrated(dir.path());
    let cases: [(&[&str], &str); 9] = [
        (
            &["account", "add", "did:bad", "--public-key", "02"],
            "invalid_did",
        ),
        (&["settings", "set", "firstName"], "invalid_setting"),
        (
            &["settings", "set", "isRegistered=maybe"],
            "invalid_setting",
        ),
        (&["settings", "unset", "noSuch"], "invalid_setting"),
        (&["quarantine", "show", "bogus"], "usage"),
        (&["account", "add"], "usage"),
        (&["--busy-timeout", "abc", "status"], "usage"),
        (&["nosuchcommand"], "usage"),
        (&["status", "--nosuchflag"], "usage"),
    ];
    for (args, kind) in cases {
        for quiet in [false, true] {
            let mut cmd = idstore(&db);
            cmd.arg("--json").args(args);
            if quiet {
                cmd.arg("-q");
            }
            let out = cmd.output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let doc: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{args:?}: one JSON document: {e}: {}", text(&out)));
            assert_eq!(doc["error"]["kind"], kind, "{args:?}: {doc}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
            assert!(stderr.starts_with("error: "), "{stderr}");
        }
    }
}
