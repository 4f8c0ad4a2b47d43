//! The command on encrypted files: keys from the environment or a file, every
//! command on an encrypted file, wrong and missing keys, and encrypt/rekey/decrypt.

use std::path::{Path, PathBuf};

use crate::common::*;
use serde_json::Value;
use tempfile::TempDir;

const KEY: &str = "a passphrase nobody types on a command line";

fn plain_header(path: &Path) -> bool {
    std::fs::read(path)
        .unwrap()
        .starts_with(b"SQLite format 3\0")
}

/// Every file in `dir` holding `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            std::fs::read(p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        })
        .collect()
}

/// The legacy file, encrypted in place with `KEY` (no backup).
fn encrypted_legacy(dir: &Path) -> PathBuf {
    let db = legacy(dir, "app.sqlite");
    idstore(&db)
        .env("IDSTORE_NEW_KEY", KEY)
        .args(["encrypt", "--no-backup", "-q"])
        .assert()
        .success();
    assert!(!plain_header(&db));
    db
}

#[test]
fn every_command_works_on_an_encrypted_file_which_stays_encrypted() {
    let dir = TempDir::new().unwrap();
    let db = encrypted_legacy(dir.path());
    let steps: &[&[&str]] = &[
        &["migrate", "--no-backup"],
        &["status"],
        &["account", "list"],
        &["account", "add", DID_C, "--public-key", "02cc"],
        &["active", "set", DID_C],
        &["settings", "set", "firstName=Ada-plaintext-marker-7f3a"],
        &["settings", "show"],
        &["quarantine", "list"],
        &["quarantine", "restore", "account:3"],
        &["check"],
        &["repair"],
        &["rollback", "--no-backup", "--forget-decisions"],
        &["migrate", "--no-backup", "--to", "20261206000001"],
        &["migrate"],
        &["status"],
    ];
    for args in steps {
        let out = with_key(&db, KEY)
            .args(*args)
            .arg("--json")
            .assert()
            .success();
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        serde_json::from_str::<Value>(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(!plain_header(&db), "{args:?} left the header plain");
        assert!(!stdout.contains(KEY), "{args:?} printed the key");
    }
    let status = json_of(with_key(&db, KEY).arg("status"));
    assert_eq!(status["encrypted"], true);
    assert_eq!(status["active_did"], DID_C);
    // No table's content in plaintext anywhere: main file, WAL, backup, temporary files.
    // (Long needles: a short one turns up in random ciphertext by chance.)
    for needle in [DID_A, DID_C, "Ada-plaintext-marker-7f3a"] {
        assert_eq!(
            files_holding(dir.path(), needle),
            Vec::<PathBuf>::new(),
            "{needle}"
        );
    }
    // The backup migrate wrote opens with the same key.
    let backups: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".backup-"))
        .collect();
    assert!(!backups.is_empty());
    for b in &backups {
        assert!(!plain_header(b));
        with_key(b, KEY).arg("status").assert().success();
    }
}

#[test]
fn a_wrong_or_missing_key_says_so_in_one_line_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let db = encrypted_legacy(dir.path());
    let before = snapshot(&db);
    for args in [
        &["migrate"][..],
        &["check"],
        &["account", "list"],
        &["rollback"],
    ] {
        let err = fails(with_key(&db, "not the key").args(args), 1);
        assert_eq!(err.lines().count(), 1, "{args:?}: one line only: {err}");
        assert!(err.contains("the key does not open"), "{args:?}: {err}");
        assert!(
            !err.contains("not the key"),
            "the key is never shown: {err}"
        );
        assert!(
            !err.to_lowercase().contains("hmac"),
            "SQLCipher's own log: {err}"
        );
        let err = fails(idstore(&db).args(args), 1);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("is encrypted") && err.contains("IDSTORE_KEY or --key-file"),
            "{args:?}: {err}"
        );
    }
    let out = with_key(&db, "not the key")
        .args(["check", "--json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let doc: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["error"]["kind"], "wrong_key");
    assert_unchanged(&db, &before, "byte for byte unchanged");
    let entries = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(entries, 1, "nothing written beside it");

    // Without a key, status says what it can.
    let status = json_of(idstore(&db).arg("status"));
    assert_eq!(status["encrypted"], true);
    assert_eq!(status["readable"], false);
    let text = idstore(&db)
        .arg("status")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8_lossy(&text).contains("encrypted: yes"));
}

#[test]
fn keys_come_from_the_environment_or_a_file_and_never_show() {
    let dir = TempDir::new().unwrap();
    let db = encrypted_legacy(dir.path());
    let key_file = dir.path().join("key.txt");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let out = idstore(&db)
        .arg("--key-file")
        .arg(&key_file)
        .args(["migrate", "-v", "--no-backup"])
        .assert()
        .success()
        .get_output()
        .clone();
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(KEY));
    }
    // An empty IDSTORE_KEY is no key.
    let err = fails(with_key(&db, "").arg("check"), 1);
    assert!(err.contains("is encrypted"), "{err}");
    // Two sources at once are refused rather than guessed between.
    let err = fails(
        with_key(&db, KEY)
            .arg("--key-file")
            .arg(&key_file)
            .arg("check"),
        1,
    );
    assert!(err.contains("both"), "{err}");
    // There is no command-line option that takes the key itself.
    idstore(&db).args(["--key", KEY, "check"]).assert().code(2);
    // A new database made with a key is encrypted from its first page.
    let fresh = dir.path().join("fresh.sqlite");
    with_key(&fresh, KEY)
        .args(["migrate", "-q"])
        .assert()
        .success();
    assert!(!plain_header(&fresh));
    assert_eq!(
        json_of(with_key(&fresh, KEY).arg("status"))["pending"],
        serde_json::json!([])
    );
    // A key for a plain file is refused.
    let plain = legacy(dir.path(), "plain.sqlite");
    let err = fails(with_key(&plain, KEY).arg("check"), 1);
    assert!(err.contains("is not encrypted"), "{err}");
}

#[test]
fn encrypt_rekey_and_decrypt_round_trip_every_table() {
    let dir = TempDir::new().unwrap();
    let db = legacy(dir.path(), "app.sqlite");
    idstore(&db)
        .args(["migrate", "-q", "--no-backup"])
        .assert()
        .success();
    let accounts = json_of(idstore(&db).args(["account", "list"]));
    let settings = json_of(idstore(&db).args(["settings", "show"]));

    let done = json_of(idstore(&db).env("IDSTORE_NEW_KEY", KEY).arg("encrypt"));
    assert_eq!(done["encrypted"], true);
    // The backup holds the rows as they were, under the new key: no plaintext copy.
    let backup = PathBuf::from(done["backup"].as_str().unwrap());
    assert_eq!(done["backup_holds"], "encrypted with the new key");
    assert!(!plain_header(&backup), "the backup is encrypted");
    assert!(!backup.to_string_lossy().contains(KEY));
    assert_eq!(
        json_of(with_key(&backup, KEY).args(["account", "list"])),
        accounts
    );
    assert_eq!(
        json_of(with_key(&db, KEY).args(["account", "list"])),
        accounts
    );

    let new_key_file = dir.path().join("new.key");
    std::fs::write(&new_key_file, "second key\n").unwrap();
    let done = json_of(
        with_key(&db, KEY)
            .arg("rekey")
            .arg("--new-key-file")
            .arg(&new_key_file),
    );
    // The re-key's backup is under the new key, not the one rotated away.
    let backup = PathBuf::from(done["backup"].as_str().unwrap());
    assert_eq!(done["backup_holds"], "encrypted with the new key");
    with_key(&backup, "second key")
        .arg("status")
        .assert()
        .success();
    fails(with_key(&backup, KEY).arg("check"), 1);
    fails(with_key(&db, KEY).arg("check"), 1);
    assert_eq!(
        json_of(with_key(&db, "second key").args(["settings", "show"])),
        settings
    );

    // Decrypting keeps its backup encrypted, under the key the file had.
    let done = json_of(with_key(&db, "second key").arg("decrypt"));
    assert_eq!(done["backup_holds"], "encrypted with the key the file had");
    let backup = PathBuf::from(done["backup"].as_str().unwrap());
    assert!(!plain_header(&backup));
    with_key(&backup, "second key")
        .arg("status")
        .assert()
        .success();
    assert!(plain_header(&db));
    assert_eq!(json_of(idstore(&db).args(["account", "list"])), accounts);
    idstore(&db).arg("status").assert().success();
    // Refusals: encrypt needs a plain file, rekey and decrypt a key.
    fails(
        with_key(&db, KEY)
            .env("IDSTORE_NEW_KEY", "x")
            .arg("encrypt"),
        1,
    );
    fails(idstore(&db).env("IDSTORE_NEW_KEY", "x").arg("rekey"), 1);
    fails(idstore(&db).arg("decrypt"), 1);
}

/// Secret material as the app stores it, to look for in every file of a folder.
const MARKER: &str = "mnemonic-marker-51c2e9";

/// A migrated plain file whose accounts hold [`MARKER`] as key material.
fn migrated_with_secrets(dir: &Path) -> PathBuf {
    let db = legacy(dir, "app.sqlite");
    {
        use diesel::connection::SimpleConnection;
        raw(&db)
            .batch_execute(&format!(
                "UPDATE accounts SET mnemonicEncrBase64 = '{MARKER}';"
            ))
            .unwrap();
    }
    idstore(&db)
        .args(["migrate", "-q", "--no-backup"])
        .assert()
        .success();
    db
}

/// A plain copy of the database at `db`, as an interrupted conversion leaves it
/// (`.NAME.idstore-convert` beside it).
fn leave_conversion_copy(db: &Path, plain_source: &Path) -> PathBuf {
    let name = db.file_name().unwrap().to_string_lossy().into_owned();
    let copy = db.with_file_name(format!(".{name}.idstore-convert"));
    std::fs::copy(plain_source, &copy).unwrap();
    copy
}

/// After `encrypt` with its default flags no file in the folder holds the secret in
/// the clear (its backup is encrypted with the new key). Plaintext copies made
/// before (earlier backups, an interrupted conversion's copy) are named in a
/// warning; with `--remove-plaintext-copies` they are overwritten and removed, and
/// the folder holds the secret nowhere.
#[test]
fn encrypt_leaves_no_plaintext_behind_and_names_or_removes_older_copies() {
    let dir = TempDir::new().unwrap();
    let db = migrated_with_secrets(dir.path());
    assert_eq!(files_holding(dir.path(), MARKER), vec![db.clone()]);
    let done = json_of(idstore(&db).env("IDSTORE_NEW_KEY", KEY).arg("encrypt"));
    assert_eq!(done["plaintext_copies"], serde_json::json!([]));
    assert!(
        files_holding(dir.path(), MARKER).is_empty(),
        "plaintext left: {:?}",
        files_holding(dir.path(), MARKER)
    );
    // And after a rekey (its backup under the new key).
    json_of(
        with_key(&db, KEY)
            .env("IDSTORE_NEW_KEY", "the rotated key")
            .arg("rekey"),
    );
    assert!(
        files_holding(dir.path(), MARKER).is_empty(),
        "plaintext left after rekey: {:?}",
        files_holding(dir.path(), MARKER)
    );

    for remove in [false, true] {
        let dir = TempDir::new().unwrap();
        let db = migrated_with_secrets(dir.path());
        let plain = dir.path().join("plain-copy.sqlite");
        std::fs::copy(&db, &plain).unwrap();
        // Two earlier backups (by migrate and by a settings change's rollback path).
        idstore(&db).args(["rollback", "-q"]).assert().success();
        idstore(&db).args(["migrate", "-q"]).assert().success();
        let leftover = leave_conversion_copy(&db, &plain);
        std::fs::remove_file(&plain).unwrap();
        let before = files_holding(dir.path(), MARKER);
        assert_eq!(
            before.len(),
            4,
            "the file, two backups, the copy: {before:?}"
        );
        let mut cmd = idstore(&db);
        cmd.env("IDSTORE_NEW_KEY", KEY).arg("encrypt");
        if remove {
            cmd.arg("--remove-plaintext-copies");
        }
        let out = cmd.output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{stderr}");
        // The leftover copy is removed by the conversion itself either way.
        assert!(!leftover.exists());
        let left = files_holding(dir.path(), MARKER);
        if remove {
            assert!(left.is_empty(), "plaintext left: {left:?}");
            assert_eq!(
                stdout.matches("removed plaintext copy: ").count(),
                2,
                "{stdout}"
            );
            assert!(stdout.contains("copy-on-write"), "{stdout}");
        } else {
            assert_eq!(left.len(), 2, "the two earlier backups: {left:?}");
            assert!(stderr.starts_with("warning: plaintext copies"), "{stderr}");
            for copy in &left {
                assert!(stderr.contains(&copy.display().to_string()), "{stderr}");
            }
            assert!(stderr.contains("--remove-plaintext-copies"), "{stderr}");
        }
    }
}

/// A `decrypt` killed mid-run leaves its plaintext copy beside the file. Without the
/// key, `status` and `check` report it; the next command with the key (any one, a
/// read included) removes it, zeroed first, and the folder holds the secret in the
/// clear nowhere.
#[test]
fn a_killed_conversions_copy_is_reported_then_removed_by_the_next_command() {
    let dir = TempDir::new().unwrap();
    let db = migrated_with_secrets(dir.path());
    let plain = dir.path().join("plain.sqlite");
    std::fs::copy(&db, &plain).unwrap();
    idstore(&db)
        .env("IDSTORE_NEW_KEY", KEY)
        .args(["encrypt", "--no-backup", "-q"])
        .assert()
        .success();
    let copy = leave_conversion_copy(&db, &plain);
    std::fs::remove_file(&plain).unwrap();

    let status = json_of(idstore(&db).arg("status"));
    assert_eq!(
        status["leftover_copies"],
        serde_json::json!([copy.display().to_string()])
    );
    let text = idstore(&db).arg("status").output().unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("may hold the data unencrypted"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    assert!(copy.exists(), "without the key nothing is removed");
    let check = with_key(&db, KEY)
        .arg("--json")
        .arg("check")
        .output()
        .unwrap();
    // (check opens with the key: the copy is gone before it looks.)
    let doc: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert!(!doc.to_string().contains("leftover_copy"), "{doc}");
    assert!(!copy.exists(), "the next command with the key removed it");
    assert!(files_holding(dir.path(), MARKER).is_empty());
}

/// `check` names a leftover copy as a problem while it cannot be removed (another
/// program holds the write lock), and `repair` removes it.
#[test]
fn check_reports_a_leftover_copy_and_repair_removes_it() {
    use diesel::connection::SimpleConnection;
    let dir = TempDir::new().unwrap();
    let db = migrated_with_secrets(dir.path());
    let plain = dir.path().join("plain.sqlite");
    std::fs::copy(&db, &plain).unwrap();
    let copy = leave_conversion_copy(&db, &plain);
    let mut writer = raw(&db);
    writer.batch_execute("BEGIN IMMEDIATE;").unwrap();
    let report = idstore_repo::OpenOptions::new()
        .read_only(true)
        .open(&db)
        .unwrap()
        .check()
        .unwrap();
    assert!(
        report.problems.iter().any(
            |p| p.kind == idstore_repo::health::ProblemKind::LeftoverCopy
                && p.detail.contains(".app.sqlite.idstore-convert")
        ),
        "{report:?}"
    );
    assert!(copy.exists(), "a writer holds the lock: the copy stays");
    writer.batch_execute("ROLLBACK;").unwrap();
    drop(writer);

    let mut open = idstore_repo::Database::open(&db).unwrap();
    assert!(!copy.exists(), "the next read-write open removed it");
    let copy = leave_conversion_copy(&db, &plain);
    let repaired = open.repair().unwrap();
    assert!(
        repaired
            .fixed
            .iter()
            .any(|p| p.kind == idstore_repo::health::ProblemKind::LeftoverCopy),
        "{repaired:?}"
    );
    assert!(!copy.exists());
}

/// A symlink to the database, or to its folder: commands that replace or create a
/// file work on the real file and name it; the link stays a link.
#[test]
fn a_symlinked_path_converts_the_real_file_and_names_it() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let real = migrated_with_secrets(&data);
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let file_link = work.join("link.sqlite");
    std::os::unix::fs::symlink(&real, &file_link).unwrap();
    let folder_link = dir.path().join("folder-link");
    std::os::unix::fs::symlink(&data, &folder_link).unwrap();

    let out = idstore(&file_link)
        .env("IDSTORE_NEW_KEY", KEY)
        .args(["encrypt", "--no-backup"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&real.display().to_string()),
        "names the real file: {text}"
    );
    assert!(
        std::fs::symlink_metadata(&file_link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!plain_header(&real), "the real file is encrypted");
    assert_eq!(
        json_of(with_key(&real, KEY).arg("status"))["encrypted"],
        true
    );

    // Through the folder's link: the backup lands beside the real file, named so.
    let through_folder = folder_link.join("app.sqlite");
    let done = json_of(
        with_key(&through_folder, KEY)
            .env("IDSTORE_NEW_KEY", "another key")
            .arg("rekey"),
    );
    assert_eq!(done["database"], real.display().to_string());
    let backup = PathBuf::from(done["backup"].as_str().unwrap());
    assert_eq!(backup.parent().unwrap(), data.as_path());
    with_key(&real, "another key")
        .arg("status")
        .assert()
        .success();

    // The library follows a link too.
    let key = idstore_repo::encryption::Key::new("a third key").unwrap();
    idstore_repo::Database::convert(
        &file_link,
        &idstore_repo::OpenOptions::new().key(Some(
            idstore_repo::encryption::Key::new("another key").unwrap(),
        )),
        &idstore_repo::encryption::ConvertOptions::new(Some(key)),
    )
    .unwrap();
    assert!(
        std::fs::symlink_metadata(&file_link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    with_key(&real, "a third key")
        .arg("status")
        .assert()
        .success();
}

/// Whether this test runs as root (it gives files away to another user).
fn is_root(test: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1);
    tool_available(test, "root", me == 0, "run the tests as root, as CI does")
}

/// A conversion keeps the file's owner, group and mode: the app that owns it can
/// still open it. One that cannot give the owner back (not root, not the owner)
/// refuses before it writes anything.
#[test]
fn conversions_keep_the_owner_group_and_mode() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let test = "conversions_keep_the_owner_group_and_mode";
    if !is_root(test) {
        return;
    }
    let dir = TempDir::new().unwrap();
    let db = migrated_with_secrets(dir.path());
    std::os::unix::fs::chown(&db, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    let owner = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    for step in ["encrypt", "rekey", "decrypt"] {
        let mut cmd = idstore(&db);
        match step {
            "encrypt" => cmd.env("IDSTORE_NEW_KEY", KEY),
            "rekey" => cmd.env("IDSTORE_KEY", KEY).env("IDSTORE_NEW_KEY", "k2"),
            _ => cmd.env("IDSTORE_KEY", "k2"),
        };
        cmd.args([step, "--no-backup", "-q"]).assert().success();
        assert_eq!(owner(&db), (65534, 65534, 0o640), "after {step}");
    }

    // As nobody, a file root owns (writable by all) cannot be given back to root.
    let setpriv = runs(
        "setpriv",
        &["--reuid=65534", "--regid=65534", "--clear-groups", "true"],
    );
    if !tool_available(
        &format!("{test} (its refusal as another user)"),
        "`setpriv` from util-linux",
        setpriv,
        "Debian's util-linux",
    ) {
        return;
    }
    // (A fresh migrated file, in WAL mode: the refusal must not even switch that.)
    let dir = TempDir::new().unwrap();
    let db = migrated_with_secrets(dir.path());
    diesel::connection::SimpleConnection::batch_execute(
        &mut raw(&db),
        "PRAGMA journal_mode = WAL;",
    )
    .unwrap();
    assert_eq!(std::fs::read(&db).unwrap()[18], 2, "WAL mode");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let before = std::fs::read(&db).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(assert_cmd::cargo::cargo_bin("idstore"))
        .arg("--db")
        .arg(&db)
        .args(["encrypt", "--no-backup", "--json"])
        .env("IDSTORE_NEW_KEY", KEY)
        .env_remove("IDSTORE_DB")
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Another user's file is not this user's to write at all (its journal would be
    // theirs): refused before the conversion starts.
    assert_eq!(doc["error"]["kind"], "read_only", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("belongs to another user"),
        "{doc}"
    );
    assert!(std::fs::read(&db).unwrap() == before, "nothing was changed");
    assert_eq!(owner(&db), (0, 0, 0o666));
    // The user's own file with a group they are not in: the new file could not be
    // given that group, so the conversion refuses before touching anything.
    std::os::unix::fs::chown(&db, Some(65534), Some(0)).unwrap();
    let before = std::fs::read(&db).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(assert_cmd::cargo::cargo_bin("idstore"))
        .arg("--db")
        .arg(&db)
        .args(["encrypt", "--no-backup", "--json"])
        .env("IDSTORE_NEW_KEY", KEY)
        .env_remove("IDSTORE_DB")
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "cannot_keep_owner", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("as the file's owner or as root"),
        "{doc}"
    );
    assert!(std::fs::read(&db).unwrap() == before, "nothing was changed");
    assert_eq!(owner(&db), (65534, 0, 0o666));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["app.sqlite".to_owned()],
        "nothing left beside it"
    );
}

/// A conversion refuses a file another program has open, in rollback-journal mode
/// as in WAL mode, naming the program, and changes nothing.
#[cfg(target_os = "linux")]
#[test]
fn a_conversion_refuses_a_file_another_program_has_open_naming_it() {
    let dir = TempDir::new().unwrap();
    let wal = migrated_with_secrets(dir.path());
    let journal = legacy(dir.path(), "legacy.sqlite");
    for db in [&wal, &journal] {
        let mut holder = std::process::Command::new("sh")
            .args(["-c", "exec 3<\"$1\"; echo ready; exec sleep 30", "sh"])
            .arg(db)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
            &mut ready,
        )
        .unwrap();
        let before = std::fs::read(db).unwrap();
        let out = idstore(db)
            .env("IDSTORE_NEW_KEY", KEY)
            .args(["encrypt", "--json"])
            .output()
            .unwrap();
        holder.kill().unwrap();
        holder.wait().unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["error"]["kind"], "in_use", "{}: {doc}", db.display());
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("sleep (pid") || message.contains("sh (pid"),
            "names the program: {message}"
        );
        assert!(std::fs::read(db).unwrap() == before, "nothing was changed");
        assert!(plain_header(db));
    }
}

/// Runs `cmd` to its end, or fails the test if it is still running after 20 s (a
/// key read that blocks would hang for ever).
fn within_20s(cmd: &mut assert_cmd::Command) -> std::process::Output {
    cmd.timeout(std::time::Duration::from_secs(20))
        .output()
        .expect("finished within 20 s: no key read blocked")
}

/// Keys are taken with care: an environment variable that is not UTF-8 is an error
/// (never "no key", which would make a plaintext database); a key file must be a
/// regular file of at most 4 KiB (a FIFO, a device, a folder or a huge file is
/// refused at once, never read); one others can read gets a warning; and commands
/// that open no database never read one.
#[test]
fn keys_are_taken_with_care() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let fresh = dir.path().join("fresh.sqlite");
    let out = idstore(&fresh)
        .env("IDSTORE_KEY", std::ffi::OsStr::from_bytes(b"not \xff text"))
        .args(["migrate", "--json"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "invalid_key", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not UTF-8")
    );
    assert!(!fresh.exists(), "no plaintext database was made");

    let fifo = dir.path().join("key.fifo");
    assert!(runs("mkfifo", &[fifo.to_str().unwrap()]));
    let huge = dir.path().join("huge.key");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(400 << 20)
        .unwrap();
    let folder = dir.path().join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    let db = encrypted_legacy(dir.path());
    for (file, says) in [
        (fifo.as_path(), "not a regular file"),
        (Path::new("/dev/zero"), "not a regular file"),
        (folder.as_path(), "a folder"),
        (huge.as_path(), "holds at most 4096"),
    ] {
        let out = within_20s(idstore(&db).arg("--key-file").arg(file).arg("status"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", file.display());
        assert!(stderr.contains(says), "{}: {stderr}", file.display());
    }
    // A command that opens no database reads no key, however unreadable.
    let out = within_20s(idstore(&db).args(["--key-file", "/dev/zero", "generate", "man"]));
    assert!(out.status.success());

    let key_file = dir.path().join("db.key");
    std::fs::write(&key_file, KEY).unwrap();
    for (mode, warned) in [(0o644, true), (0o640, true), (0o600, false), (0o400, false)] {
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = idstore(&db)
            .arg("--key-file")
            .arg(&key_file)
            .arg("status")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            stderr.contains("warning: the key file"),
            warned,
            "{mode:o}: {stderr}"
        );
    }
}

/// A process that holds a key turns its core dumps off before reading it: its
/// core size limit is 0 (read from `/proc` while it waits for a lock).
#[cfg(target_os = "linux")]
#[test]
fn a_keyed_process_makes_no_core_dump() {
    let dir = TempDir::new().unwrap();
    let db = encrypted_legacy(dir.path());
    idstore(&db)
        .env("IDSTORE_KEY", KEY)
        .args(["migrate", "-q", "--no-backup"])
        .assert()
        .success();
    let mut holder = idstore_repo::OpenOptions::new()
        .key(Some(idstore_repo::encryption::Key::new(KEY).unwrap()))
        .open(&db)
        .unwrap();
    {
        use diesel::connection::SimpleConnection;
        idstore_repo::fixtures::raw_connection(&mut holder)
            .batch_execute("BEGIN IMMEDIATE;")
            .unwrap();
    }
    let mut run = std::process::Command::new(assert_cmd::cargo::cargo_bin("idstore"))
        .arg("--db")
        .arg(&db)
        .args(["-v", "--busy-timeout", "20000", "active", "set", DID_B])
        .env("IDSTORE_KEY", KEY)
        .env_remove("IDSTORE_DB")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(run.stderr.take().unwrap());
    loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(n > 0, "idstore ended before it waited for the lock");
        if line.contains("waiting for it") {
            break;
        }
    }
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", run.id())).unwrap();
    {
        use diesel::connection::SimpleConnection;
        idstore_repo::fixtures::raw_connection(&mut holder)
            .batch_execute("ROLLBACK;")
            .unwrap();
    }
    assert!(run.wait().unwrap().success());
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
}
