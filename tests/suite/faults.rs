//! Storage faults injected into real runs: a full disk (`ENOSPC`) or an I/O error
//! (`EIO`) at every fsync and at write points spread evenly over the whole run of
//! each command (strace's syscall fault injection; `IDSTORE_LONG=1` covers every
//! write). After each fault the file is sound and either as it was or fully changed,
//! the error names the real cause (never a rollback's "outside of a transaction"),
//! and nothing half-written is left beside it. A small filesystem shows a full disk
//! refused up front, with the space needed and free.
//!
//! These tests need Debian's `strace` and, for the small filesystem, `unshare` and
//! `mount` from util-linux with user namespaces (or root); without them they say
//! loudly that they skipped (CI installs them and sets IDSTORE_REQUIRE_TOOLS=1).

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use crate::common::*;
use assert_cmd::cargo::cargo_bin;
use tempfile::TempDir;

/// Whether strace can trace and inject here.
fn has_strace(test: &str) -> bool {
    tool_available(
        test,
        "strace",
        runs("strace", &["-qq", "-e", "trace=none", "true"]),
        "Debian's strace",
    )
}

fn long_mode() -> bool {
    std::env::var_os("IDSTORE_LONG").is_some()
}

fn fresh_copy(from: &Path, dir: &Path) -> PathBuf {
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let to = dir.join("db.sqlite");
    std::fs::copy(from, &to).unwrap();
    to
}

/// `strace` runs `idstore --db DB ARGS`, tracing `syscalls`, with `inject` (or
/// nothing) and writing its trace to `log` (or nowhere).
fn traced(
    case: &Case<'_>,
    db: &Path,
    syscalls: &str,
    inject: Option<&str>,
    log: Option<&Path>,
) -> std::process::Output {
    traced_on(case, db, syscalls, inject, log, &[])
}

/// [`traced`], tracing (and injecting into) only the calls on the files `only`
/// when any are given.
fn traced_on(
    case: &Case<'_>,
    db: &Path,
    syscalls: &str,
    inject: Option<&str>,
    log: Option<&Path>,
    only: &[PathBuf],
) -> std::process::Output {
    let mut cmd = StdCommand::new("strace");
    cmd.args(["-f", "-qq", "-e", &format!("trace={syscalls}")]);
    for path in only {
        cmd.arg("-P").arg(path);
    }
    if let Some(spec) = inject {
        cmd.args(["-e", &format!("inject={spec}")]);
    }
    cmd.arg("-o")
        .arg(log.unwrap_or(Path::new("/dev/null")))
        .arg(cargo_bin("idstore"))
        .arg("--db")
        .arg(db)
        .args(case.args)
        .env_remove("IDSTORE_DB");
    case.keys(&mut cmd);
    cmd.output()
        .expect("strace runs (Debian's strace package; CI installs it)")
}

/// How many times the run calls each of `pwrite64`, `fsync` and `fdatasync`.
fn count_calls(case: &Case<'_>, work: &Path) -> (usize, usize, usize) {
    let db = fresh_copy(case.start, work);
    let log = work.parent().unwrap().join("calls.log");
    let out = traced(case, &db, "pwrite64,fsync,fdatasync", None, Some(&log));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let count = |name: &str| {
        text.lines()
            .filter(|l| l.contains(&format!("{name}(")))
            .count()
    };
    (count("pwrite64"), count("fsync"), count("fdatasync"))
}

/// Up to `n` points from 1 to `total`, evenly spread, the last included.
fn spread(total: usize, n: usize) -> Vec<usize> {
    if total <= n {
        return (1..=total).collect();
    }
    let mut points: Vec<usize> = (0..n).map(|i| 1 + i * (total - 1) / (n - 1)).collect();
    points.dedup();
    points
}

struct Case<'a> {
    what: &'a str,
    start: &'a Path,
    args: &'a [&'a str],
    /// The file's key (IDSTORE_KEY), when it is encrypted.
    key: Option<&'a str>,
    /// For `encrypt`, `rekey` and `decrypt`: the key afterwards (none: plain).
    converts_to: Option<Option<&'a str>>,
}

impl Case<'_> {
    /// A plain file, changed by the run.
    fn plain<'a>(what: &'a str, start: &'a Path, args: &'a [&'a str]) -> Case<'a> {
        Case {
            what,
            start,
            args,
            key: None,
            converts_to: None,
        }
    }

    /// Gives the run its keys through the environment.
    fn keys(&self, cmd: &mut StdCommand) {
        cmd.env_remove("IDSTORE_KEY").env_remove("IDSTORE_NEW_KEY");
        if let Some(key) = self.key {
            cmd.env("IDSTORE_KEY", key);
        }
        if let Some(Some(key)) = self.converts_to {
            cmd.env("IDSTORE_NEW_KEY", key);
        }
    }

    /// The file's rows and whether it is the new one: read with the key it has after
    /// a conversion when that opens it, else with the one it had.
    fn read(&self, db: &Path) -> (Rows, bool) {
        if let Some(after) = self.converts_to
            && let Some(rows) = keyed_rows(db, after)
        {
            return (rows, true);
        }
        let rows = keyed_rows(db, self.key)
            .unwrap_or_else(|| panic!("{}: opens with neither key", self.what));
        (rows, false)
    }
}

/// Injects every fault into `case`'s run and checks each outcome; returns the figures line.
fn inject_everywhere(case: &Case<'_>, root: &Path) -> String {
    let work = root.join(case.what);
    std::fs::create_dir_all(&work).unwrap();
    let (before, _) = case.read(&fresh_copy(case.start, &work));
    let after = {
        let db = fresh_copy(case.start, &work);
        let mut cmd = StdCommand::new(cargo_bin("idstore"));
        cmd.arg("--db")
            .arg(&db)
            .args(case.args)
            .env_remove("IDSTORE_DB");
        case.keys(&mut cmd);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            case.what,
            String::from_utf8_lossy(&out.stderr)
        );
        let (rows, converted) = case.read(&db);
        assert_eq!(converted, case.converts_to.is_some(), "{}", case.what);
        rows
    };
    if case.converts_to.is_some() {
        assert_eq!(before, after, "{} keeps every row", case.what);
    } else {
        assert_ne!(before, after, "{} changes something", case.what);
    }
    let (writes, fsyncs, fdatasyncs) = count_calls(case, &work);
    assert!(
        writes > 0 && fsyncs + fdatasyncs > 0,
        "{}: {writes} writes, {fsyncs} fsyncs",
        case.what
    );

    let write_points = if long_mode() { writes } else { 25 };
    let mut faults: Vec<(String, &str)> = Vec::new();
    for n in spread(writes, write_points) {
        faults.push((format!("pwrite64:error=ENOSPC:when={n}+"), "full"));
    }
    for n in spread(writes, if long_mode() { writes } else { 6 }) {
        faults.push((format!("pwrite64:error=EIO:when={n}"), "I/O error"));
    }
    for (call, total) in [("fsync", fsyncs), ("fdatasync", fdatasyncs)] {
        for n in 1..=total {
            faults.push((format!("{call}:error=EIO:when={n}"), "I/O error"));
        }
    }
    let (mut failed, mut old, mut new) = (0, 0, 0);
    for (spec, cause) in &faults {
        let db = fresh_copy(case.start, &work);
        let syscall = spec.split(':').next().unwrap();
        let out = traced(case, &db, syscall, Some(spec), None);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let code = out.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "{} {spec}: exit {code:?} (a panic or a signal): {stderr}",
            case.what
        );
        if code == Some(1) {
            failed += 1;
            assert!(
                stderr.starts_with("error: "),
                "{} {spec}: {stderr}",
                case.what
            );
            assert!(
                !stderr.contains("outside of a transaction")
                    && !stderr.contains("no transaction is active"),
                "{} {spec}: a rollback's error hid the cause: {stderr}",
                case.what
            );
            // SQLite reports some writes that ran out of room as I/O errors (growing
            // the -shm file); the small-filesystem test shows those named "full".
            let named = stderr.contains(cause)
                || (*cause == "full"
                    && (stderr.contains("no room") || stderr.contains("I/O error")));
            assert!(
                named,
                "{} {spec}: the cause ({cause}) is not named: {stderr}",
                case.what
            );
            assert!(
                stderr.contains("not changed")
                    || stderr.contains("rolled back")
                    || stderr.contains("nothing was")
                    || stderr.contains("was converted, but")
                    || stderr.contains("was made, but"),
                "{} {spec}: does not say the file is as it was: {stderr}",
                case.what
            );
        }
        // A failure leaves the file as it was; a success leaves it fully changed. (A
        // conversion whose rename could not be made durable says so: it is the new one.)
        let (now, converted) = case.read(&db);
        let not_durable = stderr.contains("was converted") || stderr.contains("was made, but");
        assert_eq!(
            converted,
            case.converts_to.is_some() && (code == Some(0) || not_durable),
            "{} {spec}: the file's key does not match the outcome: {stderr}",
            case.what
        );
        if code == Some(1) && !not_durable {
            assert_eq!(
                now, before,
                "{} {spec}: failed, yet changed: {stderr}",
                case.what
            );
            old += 1;
        } else {
            assert_eq!(
                now, after,
                "{} {spec}: succeeded, yet not fully changed",
                case.what
            );
            new += 1;
        }
        // Nothing half-written beside it: a backup that is there is whole.
        for entry in std::fs::read_dir(&work).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.contains(".backup-") {
                assert!(
                    name.ends_with(".sqlite"),
                    "{} {spec}: a backup's journal was left: {name}",
                    case.what
                );
                // A conversion's backup is under the new key when there is one.
                let backup_key = match case.converts_to {
                    Some(Some(new_key)) => Some(new_key),
                    _ => case.key,
                };
                assert_eq!(
                    keyed_rows(&path, backup_key),
                    Some(before.clone()),
                    "{} {spec}: a partial backup",
                    case.what
                );
            } else if name.contains(".before-recovery-") {
                // A failed run left a hot journal, and reading the file back recovered
                // it: the file and journal as they were are kept aside, as promised.
                assert!(
                    name.ends_with(".sqlite") || name.ends_with(".sqlite-journal"),
                    "{} {spec}: {name}",
                    case.what
                );
            } else {
                assert!(
                    [
                        "db.sqlite",
                        "db.sqlite-wal",
                        "db.sqlite-shm",
                        "db.sqlite-journal"
                    ]
                    .contains(&name.as_str()),
                    "{} {spec}: left behind {name}",
                    case.what
                );
            }
        }
    }
    format!(
        "figures: faults in {}: {writes} writes, {fsyncs} fsync + {fdatasyncs} fdatasync calls; {} faults injected, {failed} runs failed with the cause named, {old} files found as before, {new} fully changed, 0 torn, 0 half-written files",
        case.what,
        faults.len()
    )
}

/// The starting files: a legacy file with 2,000 override rows, and a migrated copy.
fn legacy_and_migrated(dir: &Path) -> (PathBuf, PathBuf) {
    let legacy = legacy_with_rows(dir, 2_000);
    let migrated = dir.join("migrated.sqlite");
    std::fs::copy(&legacy, &migrated).unwrap();
    idstore(&migrated)
        .args(["migrate", "--no-backup", "-q"])
        .assert()
        .success();
    (legacy, migrated)
}

#[test]
fn faults_at_every_fsync_and_spread_write_points_leave_the_old_file_or_the_new() {
    if !has_strace("faults_at_every_fsync_and_spread_write_points_leave_the_old_file_or_the_new") {
        return;
    }
    let dir = TempDir::new().unwrap();
    let (legacy, migrated) = legacy_and_migrated(dir.path());
    let damaged = dir.path().join("damaged.sqlite");
    std::fs::copy(&migrated, &damaged).unwrap();
    unguarded(
        &damaged,
        &format!("DELETE FROM accounts WHERE did = '{DID_B}';"),
    );
    let root = dir.path().join("runs");
    let cases = [
        Case::plain("migrate with its backup", &legacy, &["migrate"]),
        Case::plain("rollback with its backup", &migrated, &["rollback"]),
        Case::plain("repair", &damaged, &["repair"]),
        Case::plain(
            "active set (an API write)",
            &migrated,
            &["active", "set", DID_A],
        ),
        Case::plain(
            "settings set (an API write)",
            &migrated,
            &["settings", "set", "firstName=Fault", "--account", DID_A],
        ),
    ];
    for case in &cases {
        eprintln!("{}", inject_everywhere(case, &root));
    }
}

/// The same faults in runs on an encrypted file, and in the conversions: after each,
/// the file opens with the key it had and holds what it held, or with the new key and
/// holds the same rows; never plain by accident, never half converted. (Raw keys: no
/// key derivation to slow the hundreds of runs.)
#[test]
fn faults_on_encrypted_files_and_conversions_leave_the_old_file_or_the_new() {
    if !has_strace("faults_on_encrypted_files_and_conversions_leave_the_old_file_or_the_new") {
        return;
    }
    let dir = TempDir::new().unwrap();
    let (legacy, migrated) = legacy_and_migrated(dir.path());
    let encrypt = |from: &Path, name: &str| {
        let to = dir.path().join(name);
        std::fs::copy(from, &to).unwrap();
        let key = idstore_repo::encryption::Key::new(KEY_1).unwrap();
        idstore_repo::Database::convert(
            &to,
            &idstore_repo::OpenOptions::new(),
            &idstore_repo::encryption::ConvertOptions::new(Some(key)),
        )
        .unwrap();
        to
    };
    let encrypted_legacy = encrypt(&legacy, "encrypted-legacy.sqlite");
    let encrypted = encrypt(&migrated, "encrypted.sqlite");
    let root = dir.path().join("runs");
    let cases = [
        Case {
            key: Some(KEY_1),
            ..Case::plain(
                "migrate an encrypted file with its backup",
                &encrypted_legacy,
                &["migrate"],
            )
        },
        Case {
            converts_to: Some(Some(KEY_1)),
            ..Case::plain("encrypt with its backup", &migrated, &["encrypt"])
        },
        Case {
            key: Some(KEY_1),
            converts_to: Some(Some(KEY_2)),
            ..Case::plain("rekey with its backup", &encrypted, &["rekey"])
        },
        Case {
            key: Some(KEY_1),
            converts_to: Some(None),
            ..Case::plain("decrypt with its backup", &encrypted, &["decrypt"])
        },
    ];
    for case in &cases {
        eprintln!("{}", inject_everywhere(case, &root));
    }
}

/// Creating a database (`migrate` where no file is) with a full disk or an I/O
/// error at every write and sync of the run, and at the file's creation itself:
/// each failure leaves no file behind (no database, `-wal`, `-shm` or journal),
/// names the cause, and never says the file "was not changed"; the retry then
/// works. Each success leaves a whole, migrated database.
#[test]
fn faults_while_creating_a_database_leave_no_file_behind() {
    if !has_strace("faults_while_creating_a_database_leave_no_file_behind") {
        return;
    }
    let dir = TempDir::new().unwrap();
    let work = dir.path().join("create");
    std::fs::create_dir(&work).unwrap();
    let db = work.join("new.sqlite");
    let case = Case::plain("create", &db, &["migrate"]);
    let clear = || {
        for entry in std::fs::read_dir(&work).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
    };
    let log = dir.path().join("calls.log");
    let files: Vec<PathBuf> = ["", "-journal", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .collect();
    let out = traced_on(
        &case,
        &db,
        "pwrite64,fsync,fdatasync,openat",
        None,
        Some(&log),
        &files,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created = keyed_rows(&db, None).unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let count = |name: &str| {
        text.lines()
            .filter(|l| l.contains(&format!("{name}(")))
            .count()
    };
    let opens = count("openat");
    let creates = text
        .lines()
        .filter(|l| l.contains("openat(") && l.contains("O_CREAT"))
        .count();
    let (writes, fsyncs, fdatasyncs) = (count("pwrite64"), count("fsync"), count("fdatasync"));
    assert!(
        writes > 0 && creates > 0,
        "{writes} writes, {creates} creates"
    );

    let mut faults = Vec::new();
    for n in spread(writes, if long_mode() { writes } else { 20 }) {
        faults.push((format!("pwrite64:error=ENOSPC:when={n}+"), "full"));
        faults.push((format!("pwrite64:error=EIO:when={n}"), "I/O error"));
    }
    for (call, total) in [("fsync", fsyncs), ("fdatasync", fdatasyncs)] {
        for n in 1..=total {
            faults.push((format!("{call}:error=EIO:when={n}"), "I/O error"));
        }
    }
    // Opening (and creating) the database, its journal and its log.
    // (SQLite reports a journal or log it could not create as "unable to open
    // database file", without the system's reason.)
    for n in 1..=opens {
        faults.push((format!("openat:error=ENOSPC:when={n}+"), "open"));
    }
    let (mut failed, mut succeeded) = (0, 0);
    for (spec, cause) in &faults {
        clear();
        let syscall = spec.split(':').next().unwrap();
        let only = if syscall == "openat" { &files[..] } else { &[] };
        let out = traced_on(&case, &db, syscall, Some(spec), None, only);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        match out.status.code() {
            Some(0) => {
                succeeded += 1;
                assert_eq!(keyed_rows(&db, None).as_ref(), Some(&created), "{spec}");
                continue;
            }
            Some(1) => failed += 1,
            code => panic!("{spec}: exit {code:?} (a panic or a signal): {stderr}"),
        }
        let left: Vec<_> = std::fs::read_dir(&work)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.is_empty(), "{spec}: left behind {left:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && !stderr.contains("not changed"),
            "{spec}: {stderr}"
        );
        let named = stderr.contains(cause)
            || (*cause == "full" && (stderr.contains("no room") || stderr.contains("I/O error")))
            || (*cause == "open" && stderr.contains("No space left on device"));
        assert!(named, "{spec}: the cause ({cause}) is not named: {stderr}");
        assert!(
            stderr.contains("no file was left behind"),
            "{spec}: {stderr}"
        );
        // Once the fault is gone, the retry is not refused.
        idstore(&db).args(["migrate", "-q"]).assert().success();
    }
    assert!(failed > 0, "no fault made the run fail");
    eprintln!(
        "figures: faults while creating a database: {writes} writes, {fsyncs} fsync + {fdatasyncs} fdatasync calls, {opens} opens of which {creates} create; {} faults injected, {failed} runs failed with no file left, {succeeded} succeeded whole",
        faults.len()
    );
}

/// A legacy file like [`legacy`]'s with `rows` override rows more, so runs write
/// enough pages to spread faults over.
fn legacy_with_rows(dir: &Path, rows: usize) -> PathBuf {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    let path = legacy(dir, "faults-legacy.sqlite");
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    conn.batch_execute(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
         INSERT INTO settings (accountDid, firstName, searchBoxes)
         SELECT CASE WHEN i % 2 = 0 THEN '{DID_A}' ELSE '{DID_B}' END, 'row ' || i, '[]' FROM n;"
    ))
    .unwrap();
    path
}

/// On a small filesystem: `migrate` that would not fit is refused before anything is
/// written, saying how much it needs, how much is free and where; and a disk too
/// full for the write-ahead log is named as such. The file is byte for byte as it was.
#[test]
fn a_full_disk_is_refused_up_front_with_the_space_needed_and_free() {
    if !has_private_mounts("a_full_disk_is_refused_up_front_with_the_space_needed_and_free") {
        return;
    }
    let dir = TempDir::new().unwrap();
    let legacy = legacy_with_rows(dir.path(), 20_000);
    let size = std::fs::metadata(&legacy).unwrap().len();
    let bin = cargo_bin("idstore");
    let mnt = dir.path().join("small");

    // Room for the file and half as much again: far less than a backup and the run.
    let out = on_small_fs(
        &mnt,
        size + size / 2 + 64 * 1024,
        &format!(
            "cp '{src}' db.sqlite && '{bin}' --db db.sqlite migrate; echo \"exit $?\"; \
             cmp db.sqlite '{src}' && echo SAME; ls -a",
            src = legacy.display(),
            bin = bin.display()
        ),
    );
    assert!(out.contains("exit 1"), "{out}");
    assert!(
        out.contains("error: not enough free space beside "),
        "{out}"
    );
    assert!(out.contains("migrate needs about"), "{out}");
    assert!(out.contains("is free"), "{out}");
    assert!(out.contains("--no-backup"), "{out}");
    assert!(
        out.contains("SAME"),
        "the file is byte for byte as it was: {out}"
    );
    assert!(!out.contains(".backup-") && !out.contains("-wal"), "{out}");

    // Filled to the brim: even the write-ahead log cannot be created.
    let migrated = dir.path().join("migrated.sqlite");
    std::fs::copy(&legacy, &migrated).unwrap();
    idstore(&migrated)
        .args(["migrate", "-q", "--no-backup"])
        .assert()
        .success();
    let out = on_small_fs(
        &mnt,
        std::fs::metadata(&migrated).unwrap().len() + 256 * 1024,
        &format!(
            "cp '{src}' db.sqlite && (dd if=/dev/zero of=fill bs=4k 2>/dev/null; true) && \
             '{bin}' --db db.sqlite active set {DID_A}; echo \"exit $?\"; \
             cmp db.sqlite '{src}' && echo SAME",
            src = migrated.display(),
            bin = bin.display()
        ),
    );
    assert!(out.contains("exit 1"), "{out}");
    assert!(
        out.contains("error: could not switch") || out.contains("is full"),
        "{out}"
    );
    assert!(out.contains("free some space"), "{out}");
    assert!(out.contains("SAME"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
}
