//! What every command works with: the database's real path (resolved once, symlinks
//! included, so a command that replaces or creates a file works on the file itself
//! and names it), how to open it, and the output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use idstore_repo::encryption::Key;
use idstore_repo::{Database, Error, ErrorKind, OpenOptions};

use crate::cli::Cli;
use crate::output::Output;

/// What every command needs.
pub struct Ctx {
    pub out: Output,
    pub db: Db,
    pub busy_timeout: Duration,
    /// The database's key (none: a plain file).
    pub key: Option<Key>,
    /// SQLCipher's format, when given (else found by trying).
    pub sqlcipher_compat: Option<idstore_repo::encryption::CipherFormat>,
}

/// The database path.
pub struct Db {
    /// The real file: symlinks resolved, absolute.
    pub path: PathBuf,
    /// Whether it is the default one (created with its folder by the commands that
    /// create).
    pub default: bool,
}

impl Ctx {
    /// The context of `cli`; reads the key only when `keyed` (commands that open
    /// no database take none).
    pub fn new(cli: &Cli, keyed: bool) -> Result<Ctx, Error> {
        let key = if keyed {
            crate::keys::read_key("IDSTORE_KEY", cli.key_file.as_deref(), "--key-file")?
        } else {
            None
        };
        Ok(Ctx {
            out: Output::new(cli.json, cli.quiet, cli.verbose),
            db: resolve_db(cli.db.as_deref())?,
            busy_timeout: Duration::from_millis(cli.busy_timeout),
            key,
            sqlcipher_compat: cli.sqlcipher_compat,
        })
    }

    /// How every database is opened: the busy timeout, the key, the format.
    pub fn options(&self) -> OpenOptions {
        let options = OpenOptions::new()
            .busy_timeout(self.busy_timeout)
            .key(self.key.clone());
        match self.sqlcipher_compat {
            Some(version) => options.sqlcipher_compatibility(version),
            None => options,
        }
    }

    /// Opens read-only, never creating: nothing is written to the file (an
    /// interrupted write is rolled back first where the storage allows it).
    pub fn open_read(&self) -> Result<Database, Error> {
        self.told(self.options().read_only(true).open(&self.db.path))
    }

    /// Opens an existing file to write it: refused, before anything is written, on
    /// read-only storage or without write permission.
    pub fn open_write(&self) -> Result<Database, Error> {
        self.told(self.options().create(false).open(&self.db.path))
    }

    /// Opens to write, creating the file (and, for the default path, its folder).
    pub fn open_creating(&self) -> Result<Database, Error> {
        if let Some(folder) = self.db.path.parent().filter(|_| self.db.default) {
            std::fs::create_dir_all(folder).map_err(|e| {
                Error::with_source(
                    ErrorKind::IoError,
                    format!("could not create {}", folder.display()),
                    e,
                )
            })?;
        }
        self.told(self.options().open(&self.db.path))
    }

    /// Says on stderr (unless `--quiet`) which copies the open kept aside before it
    /// recovered an interrupted write, so the user can find them.
    fn told(&self, opened: Result<Database, Error>) -> Result<Database, Error> {
        if let Ok(db) = &opened
            && !db.kept_aside().is_empty()
            && !self.out.quiet()
        {
            let kept: Vec<String> = db
                .kept_aside()
                .iter()
                .map(|p| crate::output::shown_path(p))
                .collect();
            crate::output::note(&format!(
                "note: {} held an interrupted write, now rolled back; the file and its journal as they were are kept at {} (delete them once the file is known to be good)",
                crate::output::shown_path(&self.db.path),
                kept.join(" and ")
            ));
        }
        opened
    }

    /// `<file>.backup-<UTC time>.sqlite` beside the database.
    pub fn backup_path(&self) -> PathBuf {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ");
        let mut name = self.db.path.file_name().unwrap_or_default().to_owned();
        name.push(format!(".backup-{stamp}.sqlite"));
        self.db.path.with_file_name(name)
    }
}

/// The database path: `--db`/`IDSTORE_DB`, else the platform's data folder; made
/// absolute with every symlink resolved. A symlink whose target is missing is
/// refused, naming the target: creating it would put the database somewhere the
/// user did not name.
fn resolve_db(given: Option<&Path>) -> Result<Db, Error> {
    let (path, default) = match given {
        Some(path) => (path.to_owned(), false),
        None => {
            let data = dirs::data_dir().ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    "no data folder is known for this platform; pass --db PATH",
                )
            })?;
            (data.join("idstore").join("idstore.sqlite"), true)
        }
    };
    Ok(Db {
        path: real_path(&path)?,
        default,
    })
}

/// `path` with its symlinks resolved: the file's own when it exists, else its
/// folder's, joined with its name. Paths that cannot be resolved (a missing folder)
/// are kept as given, for the open to report.
fn real_path(path: &Path) -> Result<PathBuf, Error> {
    if let Ok(real) = std::fs::canonicalize(path) {
        return Ok(real);
    }
    if let Ok(link) = std::fs::read_link(path) {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "{} is a symlink to {}, which does not exist; pass the path of the database itself",
                path.display(),
                link.display()
            ),
        ));
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(folder), path.file_name()) {
        (Ok(folder), Some(name)) => Ok(folder.join(name)),
        _ => Ok(path.to_owned()),
    }
}

/// A file this command is creating: removed, with whatever SQLite put beside it,
/// unless the command succeeds ([`NewFile::keep`]).
pub struct NewFile {
    path: Option<PathBuf>,
}

impl NewFile {
    /// Watches `path`, when it does not exist yet.
    pub fn watch(path: &Path) -> NewFile {
        NewFile {
            path: (!path.exists() && std::fs::symlink_metadata(path).is_err())
                .then(|| path.to_owned()),
        }
    }

    /// Whether the file is new.
    pub fn is_new(&self) -> bool {
        self.path.is_some()
    }

    /// The command succeeded: the file stays.
    pub fn keep(mut self) {
        self.path = None;
    }

    /// An error of the command that was creating the file, phrased for that: nothing
    /// was "changed" in a file that was never there, and nothing is left behind.
    pub fn failed(&self, e: Error) -> Error {
        let Some(path) = &self.path else {
            return e;
        };
        let cause = innermost(&e);
        let what = match e.kind() {
            ErrorKind::DiskFull => "the disk holding it is full".to_owned(),
            ErrorKind::IoError => "a disk I/O error interrupted it".to_owned(),
            _ => e.to_string(),
        };
        Error::new(
            e.kind(),
            format!(
                "could not create {}: {what}; no file was left behind{}",
                path.display(),
                cause.map(|c| format!(" ({c})")).unwrap_or_default()
            ),
        )
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            for suffix in ["-journal", "-wal", "-shm", ""] {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(name));
            }
        }
    }
}

/// SQLite's (or the system's) own words at the bottom of an error's chain.
fn innermost(e: &Error) -> Option<String> {
    let mut cause = std::error::Error::source(e)?;
    while let Some(next) = cause.source() {
        cause = next;
    }
    Some(cause.to_string())
}
