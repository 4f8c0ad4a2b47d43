//! How the command reports: one JSON document on stdout under `--json`, text
//! otherwise (values from the database escaped and capped), nothing but errors
//! under `-q`; errors as one `error:` line on stderr.

use std::cell::Cell;
use std::io::Write;

pub use idstore_repo::domain::display::Shown;

/// Where and how the command prints; remembers whether writing to stdout failed.
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub verbose: bool,
    failed: Cell<bool>,
}

impl Output {
    /// Reporting as the flags say.
    pub fn new(json: bool, quiet: bool, verbose: bool) -> Self {
        Output {
            json,
            quiet,
            verbose,
            failed: Cell::new(false),
        }
    }

    /// Whether `--quiet` asked for nothing but errors.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// Prints `doc` when `--json`, else `text()` unless `--quiet`.
    pub fn emit(&self, doc: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            self.line(&doc.to_string());
        } else if !self.quiet {
            let t = text();
            if !t.is_empty() {
                self.line(&t);
            }
        }
    }

    /// Prints `value` as one JSON document when `--json` (written straight to
    /// stdout, with no copy of it in between: a large value costs no more than
    /// itself), else `text()` unless `--quiet`.
    pub fn emit_serialized<T: serde::Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        if !self.json {
            if !self.quiet {
                self.line(&text());
            }
            return;
        }
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let written = serde_json::to_writer(&mut out, value)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush());
        self.check_written(written);
    }

    /// Prints text lines unless `--json` or `--quiet`.
    pub fn text(&self, text: &str) {
        if !self.json && !self.quiet {
            self.line(text);
        }
    }

    /// Writes one line to stdout. A reader that went away (`idstore … | head -1`)
    /// ends the output quietly, as `ls` and ripgrep do: no panic, no error line, and
    /// the command's own exit status. Any other write error is reported once and
    /// makes the exit status 1.
    pub fn line(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        self.check_written(writeln!(out, "{line}").and_then(|()| out.flush()));
    }

    /// A reader that went away ends the output quietly; any other write error is
    /// reported once (see [`Output::line`]).
    fn check_written(&self, written: std::io::Result<()>) {
        if let Err(e) = written
            && e.kind() != std::io::ErrorKind::BrokenPipe
            && !self.failed.replace(true)
        {
            error_line(&format!("could not write the output: {e}"));
        }
    }

    /// Whether a write to stdout failed (other than a closed pipe).
    pub fn failed(&self) -> bool {
        self.failed.get()
    }
}

/// Writes `error: …` to stderr, ignoring a stderr that is gone (nothing is left to tell).
pub fn error_line(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "error: {message}");
}

/// Writes a line to stderr, ignoring a stderr that is gone.
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// A path as text shows it: escaped and capped like any value (a file name may
/// hold control characters).
pub fn shown_path(path: &std::path::Path) -> String {
    Shown(&path.display().to_string()).to_string()
}

/// An optional value from the database as text shows it, `none` when absent.
pub fn shown_or_none(value: Option<&str>) -> String {
    value.map_or_else(|| "none".to_owned(), |v| Shown(v).to_string())
}
