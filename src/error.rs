//! Errors as the command reports them: one line (each cause once, then the hint for
//! the error's kind), the exit status for the kind, and the `--json` document. The
//! library's messages name no flag of this command; the hints here do.

use idstore_repo::{Error, ErrorKind};

/// The error and its causes on one line, then what to do about it here.
pub fn one_line(e: &Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        parts.push(c.to_string());
        cause = c.source();
    }
    let mut line = parts.join(": ").replace(['\n', '\r'], " ");
    if let Some(hint) = hint(e) {
        line.push_str("; ");
        line.push_str(&hint);
    }
    line
}

/// The exit status of a failure: 2 for a usage error (a setting or a DID that is not
/// valid), 1 for anything else.
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidSetting | ErrorKind::InvalidDid => 2,
        _ => 1,
    }
}

/// What `--json` prints on stdout for a failure.
pub fn json(e: &Error) -> serde_json::Value {
    serde_json::json!({ "error": { "kind": e.kind().as_str(), "message": one_line(e) } })
}

/// The command that helps with an error of this kind.
fn hint(e: &Error) -> Option<String> {
    let hint = match e.kind() {
        // (A missing database, not the command's own refusal of a dangling symlink.)
        ErrorKind::NotFound if e.path().is_some() => {
            "check the path, or run `idstore migrate` to create a database there"
        }
        ErrorKind::NeedsMigration => "run `idstore migrate`",
        ErrorKind::UnknownAccount => "`idstore account list` shows the known ones",
        ErrorKind::LastAccount => "pass --allow-last to delete it anyway",
        ErrorKind::InvalidStoredValue => "`idstore check` lists every such value",
        ErrorKind::NeedsRepair => "`idstore repair` re-creates it",
        ErrorKind::Encrypted => "give its key with IDSTORE_KEY or --key-file",
        ErrorKind::WrongKey => {
            "check IDSTORE_KEY or --key-file (a SQLCipher 3 file is found by itself; --sqlcipher-compat fixes the format)"
        }
        ErrorKind::NotEncrypted => {
            "unset IDSTORE_KEY and drop --key-file, or encrypt it with `idstore encrypt`"
        }
        ErrorKind::BaselineNotIncluded => "pass --include-baseline to really do that",
        ErrorKind::DecisionsWouldBeUndone => "or pass --forget-decisions to roll back anyway",
        ErrorKind::NeedsForce => "pass --force with --forget, or --export PATH to keep a copy",
        ErrorKind::Locked => {
            "another program kept it locked past the busy timeout: close it, or retry with a longer --busy-timeout"
        }
        ErrorKind::DiskFull if e.needed_without_backup().is_some() => {
            "or pass --no-backup to go without a backup"
        }
        ErrorKind::ReadOnly if e.path().is_some_and(|p| p.exists()) => {
            "read commands (`status`, `check`, `account list`, `settings show`) still work there"
        }
        _ => return None,
    };
    Some(hint.to_owned())
}
