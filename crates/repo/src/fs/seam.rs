//! The seam every file step idstore takes outside SQLite goes through: creating,
//! writing, truncating, syncing, renaming, linking and removing, each reported to an
//! observer when one is installed on this thread (the power-loss tests install one,
//! through `fixtures::observe_file_steps`, and replay a crash after every step).
//! Nothing is observed otherwise, and the cost is one thread-local read a step.
//!
//! Every sync names what it protects ([`Protects`]), so a trace says why each fsync
//! is there, and a test can tell a step that needs one from a step that has one.

use std::cell::RefCell;
use std::path::PathBuf;

/// What an fsync protects: the reason it is there.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protects {
    /// A new database's name in its folder (its first page is SQLite's to sync).
    NewDatabaseName,
    /// A backup's content, before its name is reported.
    BackupContent,
    /// A backup's name in its folder.
    BackupName,
    /// An export's content, before it is linked into place.
    ExportContent,
    /// An export's name in its folder, before the row it holds is deleted.
    ExportName,
    /// A converted copy's content, before it is renamed over the database.
    ConvertedContent,
    /// The rename of a converted copy over the database.
    ConvertedRename,
    /// Zeros written over a plaintext copy, before its name is removed.
    WipedContent,
    /// The removal of a name (a plaintext copy, a leftover, a temporary file).
    Removal,
    /// A copy of a file and its side files kept aside before a recovery.
    KeptAsideContent,
    /// The names of those copies.
    KeptAsideName,
    /// The file put back as it was, after a recovery that failed its check.
    PutBack,
}

/// One file step, as an observer sees it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStep {
    /// A new file was created (empty) at `path`.
    Create {
        /// The new name.
        path: PathBuf,
    },
    /// `data` was written to `path` at `offset`.
    Write {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What.
        data: Vec<u8>,
    },
    /// `path` was cut (or grown) to `len` bytes.
    Truncate {
        /// The file.
        path: PathBuf,
        /// Its new length.
        len: u64,
    },
    /// `path`'s content was synced.
    Sync {
        /// The file.
        path: PathBuf,
        /// Why.
        protects: Protects,
    },
    /// The folder `path` was synced: every create, rename, link and removal in it
    /// so far is durable.
    SyncFolder {
        /// The folder.
        path: PathBuf,
        /// Why.
        protects: Protects,
    },
    /// `from` was renamed to `to` (replacing it).
    Rename {
        /// The old name.
        from: PathBuf,
        /// The new name.
        to: PathBuf,
    },
    /// `to` was made a second name of `from`'s file.
    Link {
        /// The existing name.
        from: PathBuf,
        /// The new name.
        to: PathBuf,
    },
    /// The name `path` was removed.
    Remove {
        /// The name.
        path: PathBuf,
    },
}

type Observer = Box<dyn FnMut(&FileStep)>;

thread_local! {
    static OBSERVER: RefCell<Option<Observer>> = const { RefCell::new(None) };
}

/// Tells the observer of this thread, if any, about a step `step()` describes (it
/// is built only when someone is looking: a write's data is copied for it).
pub(crate) fn note(step: impl FnOnce() -> FileStep) {
    OBSERVER.with(|o| {
        if let Ok(mut o) = o.try_borrow_mut()
            && let Some(observe) = o.as_mut()
        {
            observe(&step());
        }
    });
}

/// Installs `observe` for this thread until the guard is dropped.
#[cfg(feature = "fixtures")]
pub(crate) fn observe(observe: impl FnMut(&FileStep) + 'static) -> ObserverGuard {
    let previous = OBSERVER.with(|o| o.borrow_mut().replace(Box::new(observe)));
    ObserverGuard { previous }
}

/// Removes the file-step observer it was returned for (putting back any earlier one).
#[cfg(feature = "fixtures")]
pub struct ObserverGuard {
    previous: Option<Observer>,
}

#[cfg(feature = "fixtures")]
impl Drop for ObserverGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        OBSERVER.with(|o| *o.borrow_mut() = previous);
    }
}
