//! Errors as the command reports them: one line (each cause once, then the hint for
//! the error's kind), the exit status for the kind, and the `--json` document. The
//! library's messages name no flag of this command; the hints here do.

use idstore_repo::{Error, ErrorKind};

/// The error and its causes on one line, then what to do about it here.
pub fn one_line(e: &Error) -> String {
    let mut line = chain(e);
    if let Some(hint) = hint(e) {
        line.push_str("; ");
        line.push_str(&hint);
    }
    line
}

/// The error and its causes on one line.
pub fn chain(e: &Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        parts.push(c.to_string());
        cause = c.source();
    }
    parts.join(": ").replace(['\n', '\r'], " ")
}

/// The exit status of a failure: 2 for a usage error (a setting or a DID that is not
/// valid), 1 for anything else.
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidSetting | ErrorKind::InvalidDid => 2,
        _ => 1,
    }
}

/// A command line that does not parse: help and the version print as clap prints
/// them; anything else is one `error:` line on stderr (and with `--json`, one JSON
/// document on stdout whose kind is `invalid_did`, `invalid_setting` or `usage`),
/// exit status 2.
pub fn usage(e: &clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind as Clap;
    if matches!(e.kind(), Clap::DisplayHelp | Clap::DisplayVersion) {
        let _ = e.print();
        return std::process::ExitCode::SUCCESS;
    }
    // Clap's words up to its usage block, on one line.
    let rendered = e.render().to_string();
    let said: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
        .collect();
    let joined = said.join(" ");
    let first = joined.strip_prefix("error: ").unwrap_or(&joined).trim();
    let first = if first.is_empty() {
        "the command line could not be read"
    } else {
        first
    };
    let kind = usage_kind(e);
    let message = format!("{first}; `idstore help` lists the commands and their arguments");
    crate::output::error_line(&message);
    if json_asked() {
        let doc = serde_json::json!({ "error": { "kind": kind, "message": message } });
        crate::output::Output::new(true, false, false).line(&doc.to_string());
    }
    std::process::ExitCode::from(2)
}

/// The kind of a usage error: what its value failed to parse as.
fn usage_kind(e: &clap::Error) -> &'static str {
    let source = std::error::Error::source(e);
    match source {
        Some(s) if s.downcast_ref::<idstore_repo::domain::DidError>().is_some() => "invalid_did",
        Some(s)
            if s.downcast_ref::<idstore_repo::domain::SettingsError>()
                .is_some()
                || s.downcast_ref::<crate::cli::AssignmentError>().is_some() =>
        {
            "invalid_setting"
        }
        _ => "usage",
    }
}

/// Whether `--json` is on the command line (before any `--`): asked for when the
/// rest of it did not parse.
fn json_asked() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// What `--json` prints on stdout for a failure: its kind and message, and for a
/// refusal of one of idstore's steps, the stable token the app's service sees too.
pub fn json(e: &Error) -> serde_json::Value {
    let mut error = serde_json::json!({ "kind": e.kind().as_str(), "message": one_line(e) });
    if let Some(token) = e.token() {
        error["token"] = token.into();
    }
    serde_json::json!({ "error": error })
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
        // (The command runs no closure of a caller's and no async call, so it meets
        // `panicked` only through a bug of its own, and never `queue_full` or
        // `cancelled`.)
        ErrorKind::Panicked => "this is a bug in idstore: please report it with this message",
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
