//! Helpers shared by idstore's own test suites (the command's and the repo crate's):
//! the DIDs the tests use, the loud skip of a test whose tool is missing, and what
//! "the file is unchanged" compares. Dev-only; not published.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};

use diesel::prelude::*;

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
