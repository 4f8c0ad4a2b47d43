//! Helpers shared by idstore's own test suites (the command's and the repo crate's):
//! the DIDs the tests use, the loud skip of a test whose tool is missing, and what
//! "the file is unchanged" compares. Dev-only; not published.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};

use diesel::prelude::*;

pub mod power;

pub const DID_A: &str = "did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01";
pub const DID_B: &str = "did:ethr:0x1234567890AbCdEf1234567890aBcDeF12345678";
pub const DID_C: &str = "did:peer:0z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
/// A well-formed DID no account has.
pub const UNKNOWN: &str = "did:ethr:0x00000000000000000000000000000000DeadBeef";

/// Whether the tool a test needs beyond the README's prerequisites is there. When it
/// is not, the test says so loudly (straight to the terminal, past the test
/// harness's capture) and should return; with `IDSTORE_REQUIRE_TOOLS=1`, as CI
/// sets it, a missing tool fails the test instead, so CI skips nothing.
pub fn tool_available(test: &str, tool: &str, available: bool, install: &str) -> bool {
    if available {
        return true;
    }
    if std::env::var_os("IDSTORE_REQUIRE_TOOLS").is_some_and(|v| v == "1") {
        panic!(
            "{test} needs {tool}, which is missing ({install}); IDSTORE_REQUIRE_TOOLS=1 makes that a failure"
        );
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: it needs {tool}, which is missing ({install}) ***\n"
    );
    false
}

/// Whether this is the process in which the test `name` (its path in the test
/// binary, `module::test`) runs alone. A test of process-wide state (the threads
/// a process has, SQLite's configuration) runs itself again, alone, in a process of
/// its own: outside that process this starts it, asserts the test passed there,
/// and returns false (the caller returns); inside it, true (the caller goes on).
pub fn alone(name: &str) -> bool {
    const ALONE: &str = "IDSTORE_TEST_ALONE";
    if std::env::var(ALONE).as_deref() == Ok(name) {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ALONE, name)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("1 passed"),
        "{name}, alone: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// Whether `program` runs (`program ARGS` exits 0).
pub fn runs(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The file beside `path` whose name ends in `suffix` (`-wal`, `-journal`).
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The main file and the frames of its WAL, if any: what "the file is unchanged"
/// compares. An empty log (SQLite creates one when a connection opens a WAL file,
/// and removes it when the last read-write one closes) holds nothing and counts as
/// none.
pub fn snapshot(db: &Path) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        std::fs::read(db).unwrap(),
        std::fs::read(beside(db, "-wal"))
            .ok()
            .filter(|w| !w.is_empty()),
    )
}

/// Asserts that `db` is as `before` (a [`snapshot`]) says, without printing both
/// files whole when it is not.
#[track_caller]
pub fn assert_unchanged(db: &Path, before: &(Vec<u8>, Option<Vec<u8>>), what: &str) {
    let now = snapshot(db);
    if &now != before {
        let first = now
            .0
            .iter()
            .zip(&before.0)
            .position(|(a, b)| a != b)
            .unwrap_or(now.0.len().min(before.0.len()));
        panic!(
            "{what}: the file changed (main file {} bytes, was {}; first difference at byte {first}; log {:?} bytes, was {:?})",
            now.0.len(),
            before.0.len(),
            now.1.as_ref().map(Vec::len),
            before.1.as_ref().map(Vec::len)
        );
    }
}

/// A plain connection to `path`, as the legacy app or a tool would have it: no
/// pragmas set.
pub fn raw(path: &Path) -> SqliteConnection {
    SqliteConnection::establish(path.to_str().expect("utf-8 temp path")).expect("open raw")
}

/// Two users of this machine's for tests of shared folders: ids with no account
/// (`setpriv` needs none), so nothing is added to the system.
pub const USER_A: u32 = 41001;
/// The second.
pub const USER_B: u32 = 41002;

/// Whether this process can run programs as other users: it is root, and
/// `setpriv` (util-linux) is there. Says so loudly when not (see
/// [`tool_available`]).
pub fn can_switch_users(test: &str) -> bool {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    tool_available(test, "root", root, "run the tests as root, as CI does")
        && tool_available(
            test,
            "`setpriv` from util-linux",
            runs(
                "setpriv",
                &["--reuid=41001", "--regid=41001", "--clear-groups", "true"],
            ),
            "Debian's util-linux",
        )
}

/// `program` run as the user `uid` (its group `uid` too, no other group).
pub fn as_user(uid: u32, program: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(program);
    cmd
}

/// Gives `path` to `uid` (and its group `uid`) with `mode`.
pub fn give(path: &Path, uid: u32, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every name in `dir` with its owner's uid, sorted.
pub fn names_and_owners(dir: &Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut v: Vec<(String, u32)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::symlink_metadata(e.path()).unwrap().uid(),
            )
        })
        .collect();
    v.sort();
    v
}
