//! The one place idstore calls SQLite's C API (the crate's only `unsafe` code). On
//! each of its connections as SQLite opens it (an auto-extension runs inside
//! `sqlite3_open_v2`, on the opening thread, before the file is read; it is
//! registered only while one of idstore's opens is under way, and takes no part in
//! any other connection's):
//!
//! - SQLite's defensive settings: `SQLITE_DBCONFIG_DEFENSIVE` (no `writable_schema`,
//!   no writes to shadow tables or `sqlite_dbpage`) and `trusted_schema` off (the
//!   file's triggers, views and defaults may call no function or virtual table that
//!   is not marked harmless). A file is data: nothing in it gets more power than
//!   its own rows.
//! - The busy handler: waits for another program's lock as `PRAGMA busy_timeout`
//!   does, and reports through `tracing` once that it is waiting.
//! - The progress handler: a statement of a cancelled call (an async handle's
//!   call whose future was dropped) stops, whenever the cancellation came.
//! - With the `encryption` feature, the key, straight from the [`Key`]'s own (wiped)
//!   memory, so it never passes through SQL text, Diesel's statement strings or a log.
//!
//! What a connection is given waits in a thread-local slot for exactly that open.
//! Connections opened elsewhere in the process (a caller's own) are left alone, and
//! so is SQLite's process-wide configuration: no `sqlite3_config`, no auto-extension
//! left registered, SQLCipher's log level put back as it was found.
//!
//! Also here: the connection's own handle kept for the calls Diesel does not offer
//! ([`RawDb`]: the online backup API), reading a file's first bytes through
//! SQLite's VFS, and the descriptor SQLite opened, read to check that it is the file
//! idstore checked before (`descriptor_entry`).
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void};
use std::time::Duration;

use libsqlite3_sys as ffi;

use crate::encryption::key::Key;
use crate::fs::{DbFile, Entry};

/// The key a connection is given as it opens, and the SQLCipher settings to use.
/// (Without the `encryption` feature a keyed open is refused before SQLite opens.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keying {
    /// Its key.
    pub key: Key,
    /// SQLCipher's `cipher_compatibility` (3 for files written by SQLCipher 3).
    pub compatibility: Option<u8>,
}

/// What an idstore connection is given as it opens.
struct Opening {
    keying: Option<Keying>,
    busy_timeout: Duration,
    /// The connection's handle, once SQLite has made it.
    opened: Option<RawDb>,
}

/// An idstore connection's own SQLite handle, for the C calls Diesel does not offer.
/// It is valid while the connection it came from is open, and is used only through
/// that connection's owner (`&mut` access), never from two threads at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawDb(std::ptr::NonNull<ffi::sqlite3>);

// SAFETY: a connection handle may move between threads (SQLite is built
// threadsafe); idstore uses it only while it has the connection to itself.
unsafe impl Send for RawDb {}

impl RawDb {
    /// Whether the connection has a transaction open (SQLite is not in autocommit
    /// mode): after a call, one left open means the call broke the connection.
    #[cfg(any(feature = "tokio", feature = "pool"))]
    pub(crate) fn in_transaction(self) -> bool {
        // SAFETY: the connection is open (see the type's promise).
        unsafe { ffi::sqlite3_get_autocommit(self.0.as_ptr()) == 0 }
    }

    /// Interrupts the statement the connection runs (`SQLITE_INTERRUPT`, its
    /// transaction rolled back); none running, nothing happens. Unlike the rest,
    /// called from another thread than the one using the connection, as SQLite
    /// allows, by a caller that keeps the connection from closing meanwhile.
    #[cfg(feature = "tokio")]
    pub(crate) fn interrupt(self) {
        // SAFETY: the connection is open and stays open for the call (the caller's
        // promise); sqlite3_interrupt may be called from any thread.
        unsafe { ffi::sqlite3_interrupt(self.0.as_ptr()) }
    }

    /// The file the connection's main database has open, as its descriptor tells
    /// (see [`descriptor_entry`]); `None` when that cannot be read (no file open,
    /// or a VFS other than SQLite's unix one).
    pub(crate) fn main_file(self) -> Option<std::io::Result<Entry>> {
        let db = self.0.as_ptr();
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        let mut vfs: *mut ffi::sqlite3_vfs = std::ptr::null_mut();
        // SAFETY: the connection is open (see the type's promise); each call writes
        // one pointer of the type given, valid while the connection stays open.
        unsafe {
            let asked = |op: c_int, out: *mut c_void| {
                ffi::sqlite3_file_control(db, c"main".as_ptr(), op, out) == ffi::SQLITE_OK
            };
            if !asked(ffi::SQLITE_FCNTL_FILE_POINTER, (&raw mut file).cast())
                || !asked(ffi::SQLITE_FCNTL_VFS_POINTER, (&raw mut vfs).cast())
                || file.is_null()
                || vfs.is_null()
                || (*file).pMethods.is_null()
            {
                return None;
            }
            descriptor_entry(vfs, file)
        }
    }
}

/// The head of the file object of SQLite's unix VFSes (`struct unixFile` in
/// os_unix.c, unchanged since SQLite 3.7, SQLCipher's included): its methods, its
/// VFS, its inode record, then its descriptor.
#[repr(C)]
struct UnixFileHead {
    methods: *const ffi::sqlite3_io_methods,
    vfs: *const ffi::sqlite3_vfs,
    inode: *const c_void,
    fd: c_int,
}

/// What the descriptor of a file SQLite opened refers to (`fstat`), so that a name
/// checked before SQLite opened it is verified on the descriptor SQLite uses: a
/// name swapped between the check and the open is caught. `None` when `file` is not
/// a unix VFS's (its layout unknown: `vfs` is not one of SQLite's own unix VFSes, or
/// the object's VFS field is not `vfs`).
///
/// # Safety
///
/// `file` is open (its methods set) and was opened by `vfs`, which is registered.
unsafe fn descriptor_entry(
    vfs: *const ffi::sqlite3_vfs,
    file: *const ffi::sqlite3_file,
) -> Option<std::io::Result<Entry>> {
    // SQLite's own unix VFSes, by their registered pointers (never by a name another
    // VFS could also take).
    let unix = [c"unix", c"unix-excl", c"unix-dotfile", c"unix-none"]
        .iter()
        // SAFETY: each name is NUL-terminated; SQLite returns a registered VFS or null.
        .any(|name| std::ptr::eq(unsafe { ffi::sqlite3_vfs_find(name.as_ptr()) }, vfs));
    // SAFETY: `vfs` is registered (the caller's promise): its object size is set.
    let size = unsafe { (*vfs).szOsFile };
    let fits = usize::try_from(size).is_ok_and(|s| s >= std::mem::size_of::<UnixFileHead>());
    if !unix || !fits {
        return None;
    }
    // SAFETY: a unix VFS's file object starts with this head (the object is at
    // least that large, 8-aligned); its VFS field, checked, confirms the layout.
    let head = unsafe { &*file.cast::<UnixFileHead>() };
    if !std::ptr::eq(head.vfs, vfs) || head.fd < 0 {
        return None;
    }
    // SAFETY: the descriptor stays open while `file` is (the caller's promise);
    // it is only read here, never closed.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(head.fd) };
    Some(crate::fs::entry_of_descriptor(fd))
}

thread_local! {
    /// The settings for the connection this thread is opening, if it is idstore's.
    static OPENING: RefCell<Option<Opening>> = const { RefCell::new(None) };
}

/// Clears the slot however the opening ends, wiping the key copy held there.
struct Clear;

impl Drop for Clear {
    fn drop(&mut self) {
        OPENING.with(|slot| slot.borrow_mut().take());
    }
}

/// Runs `open`, which opens one SQLite connection on this thread, giving that
/// connection the defensive settings, the busy handler and `keying` (none: a plain
/// connection) as it opens; returns what `open` did and the connection's handle.
pub(crate) fn opening<T>(
    keying: Option<&Keying>,
    busy_timeout: Duration,
    open: impl FnOnce() -> T,
) -> (T, Option<RawDb>) {
    let _hook = Hook::register();
    OPENING.with(|slot| {
        *slot.borrow_mut() = Some(Opening {
            keying: keying.cloned(),
            busy_timeout,
            opened: None,
        })
    });
    let _clear = Clear;
    let done = open();
    let raw = OPENING.with(|slot| slot.borrow().as_ref().and_then(|o| o.opened));
    (done, raw)
}

/// Runs one statement on a raw connection.
///
/// # Safety
/// `db` must be a connection SQLite is opening or has open.
#[cfg(feature = "encryption")]
unsafe fn exec(db: *mut ffi::sqlite3, sql: &std::ffi::CStr) -> c_int {
    // SAFETY: `db` is valid (the caller's promise) and `sql` is a NUL-terminated
    // string that outlives the call; no callback and no error message are asked for.
    unsafe {
        ffi::sqlite3_exec(
            db,
            sql.as_ptr(),
            None,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }
}

/// The auto-extension: on an idstore connection, the defensive settings and the
/// busy handler, then the key when there is one.
unsafe extern "C" fn on_open(
    db: *mut ffi::sqlite3,
    _error: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    OPENING.with(|slot| {
        let mut slot = slot.borrow_mut();
        let Some(opening) = slot.as_mut() else {
            return ffi::SQLITE_OK;
        };
        opening.opened = std::ptr::NonNull::new(db).map(RawDb);
        for option in [
            ffi::SQLITE_DBCONFIG_DEFENSIVE,
            ffi::SQLITE_DBCONFIG_TRUSTED_SCHEMA,
        ] {
            let on = c_int::from(option == ffi::SQLITE_DBCONFIG_DEFENSIVE);
            // SAFETY: `db` is the connection being opened; these two options take an
            // int and an optional int pointer for the resulting state (none here).
            let rc =
                unsafe { ffi::sqlite3_db_config(db, option, on, std::ptr::null_mut::<c_int>()) };
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        let millis = u32::try_from(opening.busy_timeout.as_millis()).unwrap_or(u32::MAX);
        // SAFETY: `db` is the connection being opened; the handler's argument is the
        // timeout itself, carried in the pointer value, never dereferenced.
        let rc =
            unsafe { ffi::sqlite3_busy_handler(db, Some(on_busy), millis as usize as *mut c_void) };
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        // SAFETY: as above; the handler takes no argument.
        unsafe {
            ffi::sqlite3_progress_handler(
                db,
                PROGRESS_STEPS,
                Some(on_progress),
                std::ptr::null_mut(),
            )
        };
        match &opening.keying {
            None => ffi::SQLITE_OK,
            #[cfg(feature = "encryption")]
            // SAFETY: as above.
            Some(keying) => unsafe { key(db, keying) },
            #[cfg(not(feature = "encryption"))]
            Some(_) => ffi::SQLITE_MISUSE,
        }
    })
}

/// Keys the connection, then silences SQLCipher's own logging for the open under
/// way (it writes to stderr by default, `hmac check failed` on a wrong key or a
/// format tried first), so idstore's error is the only output; see [`Quiet`].
///
/// # Safety
/// `db` must be the connection being opened.
#[cfg(feature = "encryption")]
unsafe fn key(db: *mut ffi::sqlite3, keying: &Keying) -> c_int {
    let key = keying.key.bytes();
    let Ok(len) = c_int::try_from(key.len()) else {
        return ffi::SQLITE_TOOBIG;
    };
    // SAFETY: the key pointer and length describe memory the slot owns for the whole
    // call (SQLCipher copies it).
    let rc =
        unsafe { ffi::sqlite3_key_v2(db, c"main".as_ptr(), key.as_ptr().cast::<c_void>(), len) };
    let rc = match (rc, keying.compatibility) {
        // SAFETY: as above.
        (ffi::SQLITE_OK, Some(3)) => unsafe { exec(db, c"PRAGMA cipher_compatibility = 3") },
        // SAFETY: as above.
        (ffi::SQLITE_OK, Some(4)) => unsafe { exec(db, c"PRAGMA cipher_compatibility = 4") },
        (ffi::SQLITE_OK, Some(_)) => ffi::SQLITE_MISUSE,
        (rc, _) => rc,
    };
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    // After keying: SQLCipher's first keyed connection in the process sets its
    // default logging (WARN, to stderr) before this reads the level to put back.
    // SAFETY: as above.
    unsafe { silence(db) };
    ffi::SQLITE_OK
}

/// SQLCipher's log level is process-wide: idstore turns it off only while one of its
/// opens tries a key (a [`Quiet`] alive), and the last of those puts back the
/// level it found.
#[cfg(feature = "encryption")]
struct QuietState {
    /// The opens under way.
    opens: usize,
    /// The level found by the first of them that keyed a connection.
    found: Option<std::ffi::CString>,
}

#[cfg(feature = "encryption")]
static QUIET: std::sync::Mutex<QuietState> = std::sync::Mutex::new(QuietState {
    opens: 0,
    found: None,
});

/// One open that may try a key: SQLCipher's logging stays off from its first
/// keying until the last such open under way ends, then is as it was found.
pub(crate) struct Quiet;

impl Quiet {
    /// Begins one.
    pub(crate) fn begin() -> Quiet {
        #[cfg(feature = "encryption")]
        {
            QUIET.lock().unwrap_or_else(|e| e.into_inner()).opens += 1;
        }
        Quiet
    }
}

#[cfg(feature = "encryption")]
impl Drop for Quiet {
    fn drop(&mut self) {
        let mut state = QUIET.lock().unwrap_or_else(|e| e.into_inner());
        state.opens -= 1;
        if state.opens > 0 {
            return;
        }
        // SQLCipher's own names for its levels; anything else is not put back.
        let set = match state.found.take().as_ref().map(|f| f.to_bytes()) {
            Some(b"NONE") => c"PRAGMA cipher_log_level = NONE",
            Some(b"ERROR") => c"PRAGMA cipher_log_level = ERROR",
            Some(b"WARN") => c"PRAGMA cipher_log_level = WARN",
            Some(b"INFO") => c"PRAGMA cipher_log_level = INFO",
            Some(b"DEBUG") => c"PRAGMA cipher_log_level = DEBUG",
            Some(b"TRACE") => c"PRAGMA cipher_log_level = TRACE",
            _ => return,
        };
        // On a private connection of its own (the pragma is process-wide): the
        // connection opened may be gone, or never opened.
        let mut db = std::ptr::null_mut();
        // SAFETY: a NUL-terminated name and a pointer for the new handle; the handle
        // is closed whatever the open did (SQLite may allocate one on failure).
        unsafe {
            let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_MEMORY;
            if ffi::sqlite3_open_v2(c":memory:".as_ptr(), &mut db, flags, std::ptr::null())
                == ffi::SQLITE_OK
            {
                exec(db, set);
            }
            ffi::sqlite3_close(db);
        }
    }
}

/// Turns SQLCipher's logging off for the opens under way, remembering the level
/// the first of them found.
///
/// # Safety
/// `db` must be a connection SQLite is opening or has open, with SQLCipher keyed
/// (so SQLCipher has set its default level).
#[cfg(feature = "encryption")]
unsafe fn silence(db: *mut ffi::sqlite3) {
    let mut state = QUIET.lock().unwrap_or_else(|e| e.into_inner());
    if state.found.is_none() {
        // SAFETY: as the caller promises.
        state.found = unsafe { pragma_text(db, c"PRAGMA cipher_log_level") };
    }
    // SAFETY: as the caller promises.
    unsafe { exec(db, c"PRAGMA cipher_log_level = NONE") };
}

/// The first column of the first row `sql` returns, as text.
///
/// # Safety
/// `db` must be a connection SQLite is opening or has open.
#[cfg(feature = "encryption")]
unsafe fn pragma_text(db: *mut ffi::sqlite3, sql: &std::ffi::CStr) -> Option<std::ffi::CString> {
    let mut stmt = std::ptr::null_mut();
    // SAFETY: `db` is valid (the caller's promise); `sql` is NUL-terminated; the
    // statement is finalized before returning, and its text copied out first.
    unsafe {
        if ffi::sqlite3_prepare_v2(db, sql.as_ptr(), -1, &mut stmt, std::ptr::null_mut())
            != ffi::SQLITE_OK
        {
            return None;
        }
        let text = if ffi::sqlite3_step(stmt) == ffi::SQLITE_ROW {
            let p = ffi::sqlite3_column_text(stmt, 0);
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p.cast()).to_owned())
        } else {
            None
        };
        ffi::sqlite3_finalize(stmt);
        text
    }
}

/// The busy handler: sleeps as SQLite's own default handler does (short waits
/// first, then 100 ms at a time) until the timeout carried in `timeout` has passed,
/// or the call waiting is cancelled; reports once, on the first wait, that another
/// program holds a lock.
unsafe extern "C" fn on_busy(timeout: *mut c_void, count: c_int) -> c_int {
    if crate::connection::transaction::cancelled() {
        // The call waiting was cancelled: it stops waiting, and rolls back.
        return 0;
    }
    const DELAYS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];
    let timeout = timeout as usize as u64;
    let count = usize::try_from(count).unwrap_or(0);
    let (delay, waited) = match DELAYS.get(count) {
        Some(&d) => (d, DELAYS[..count].iter().sum::<u64>()),
        None => (
            100,
            DELAYS.iter().sum::<u64>() + 100 * (count - DELAYS.len()) as u64,
        ),
    };
    let delay = delay.min(timeout.saturating_sub(waited));
    if delay == 0 {
        return 0;
    }
    if count == 0 {
        tracing::info!(
            timeout_ms = timeout,
            "another program holds a lock on the database; waiting for it"
        );
    }
    std::thread::sleep(Duration::from_millis(delay));
    1
}

/// How many virtual-machine steps pass between two looks of [`on_progress`]: about
/// a few microseconds of work, so a cancelled call stops at once and the look costs
/// nothing measurable.
const PROGRESS_STEPS: c_int = 1000;

/// The progress handler: stops the statement running (`SQLITE_INTERRUPT`) once the
/// call running it is cancelled. `sqlite3_interrupt` alone cannot be relied on: it
/// is forgotten when it comes between two statements (the next statement to start
/// clears it), so a call cancelled there would run its next statement to the end.
unsafe extern "C" fn on_progress(_: *mut c_void) -> c_int {
    c_int::from(crate::connection::transaction::cancelled())
}

/// How many of idstore's opens are under way: [`on_open`] is registered while
/// any is, and only then.
static OPENS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

/// [`on_open`] registered as an auto-extension for one open: the first of the
/// opens under way registers it, the last one out takes it away again (each
/// under the lock, so no open finds it missing).
struct Hook;

impl Hook {
    fn register() -> Hook {
        let mut opens = OPENS.lock().unwrap_or_else(|e| e.into_inner());
        if *opens == 0 {
            // SAFETY: SQLite declares auto-extension entry points with this exact
            // signature; registering one has no other precondition.
            let rc = unsafe { ffi::sqlite3_auto_extension(Some(on_open)) };
            debug_assert_eq!(rc, ffi::SQLITE_OK, "registering the connection hook");
        }
        *opens += 1;
        Hook
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        let mut opens = OPENS.lock().unwrap_or_else(|e| e.into_inner());
        *opens -= 1;
        if *opens == 0 {
            // SAFETY: the entry point registered above; cancelling one that is not
            // registered (the host reset the list) is harmless.
            unsafe { ffi::sqlite3_cancel_auto_extension(Some(on_open)) };
        }
    }
}

thread_local! {
    /// The extended result codes of the statements that failed on this thread
    /// while [`watch_errors`] looked.
    static FAILED: RefCell<Option<Vec<c_int>>> = const { RefCell::new(None) };
}

/// Notes the extended result code of the statement that just failed on `db` (on
/// this thread) for [`watch_errors`], if it is looking. Called by the connection's
/// instrumentation as the statement reports its failure, before anything else
/// runs on the connection (a rollback would replace the code).
pub(crate) fn note_failure(db: RawDb) {
    FAILED.with(|f| {
        if let Ok(mut f) = f.try_borrow_mut()
            && let Some(codes) = f.as_mut()
        {
            // SAFETY: the connection is open (the type's promise).
            codes.push(unsafe { ffi::sqlite3_extended_errcode(db.0.as_ptr()) });
        }
    });
}

/// The extended result codes of the statements of idstore's connections that
/// failed during `f` on this thread.
pub(crate) fn watch_errors<T>(f: impl FnOnce() -> T) -> (T, Vec<c_int>) {
    let before = FAILED.with(|l| l.borrow_mut().replace(Vec::new()));
    let done = f();
    let codes = FAILED.with(|l| std::mem::replace(&mut *l.borrow_mut(), before));
    (done, codes.unwrap_or_default())
}

/// The extended result code of a failed folder sync after a file was deleted: in a
/// commit, after its commit point.
pub(crate) const IOERR_DIR_FSYNC: c_int = ffi::SQLITE_IOERR_DIR_FSYNC;

/// Reads the first bytes of the file at `path` into `buf` through SQLite's own
/// default VFS; returns how many there were.
///
/// Not through a descriptor of its own: on Unix, closing *any* descriptor on a file
/// drops every POSIX lock the process holds on it, SQLite's included, so a plain
/// read here could silently take away another connection's shared lock (and with it
/// the guarantee that no other process checkpoints and removes the write-ahead log
/// under it). SQLite's VFS shares one record per file among the process's
/// connections and defers a close while any of them holds a lock, so a read through
/// it takes nothing away, and keeps no descriptor open afterwards.
pub(crate) fn read_file_start(db: &DbFile, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io;
    with_vfs_file(db, |file, methods| {
        let mut len: ffi::sqlite3_int64 = 0;
        // SAFETY: `file` is open with these methods (see `with_vfs_file`); the
        // buffer is `buf`, of the length passed.
        unsafe {
            let sized = methods
                .xFileSize
                .map_or(ffi::SQLITE_ERROR, |f| f(file, &mut len));
            let want = usize::try_from(len).unwrap_or(0).min(buf.len());
            if sized != ffi::SQLITE_OK {
                Err(io::Error::other("SQLite could not size the file"))
            } else if want == 0 {
                Ok(0)
            } else {
                match methods.xRead.map_or(ffi::SQLITE_ERROR, |f| {
                    f(file, buf.as_mut_ptr().cast(), want as c_int, 0)
                }) {
                    ffi::SQLITE_OK => Ok(want),
                    _ => Err(io::Error::other("SQLite could not read the file")),
                }
            }
        }
    })
}

/// Whether any connection (of any process) holds the RESERVED lock on the
/// database at `path`: a writer is in the middle of a transaction, so a journal
/// beside the file is its live journal, not an interrupted write (SQLite's own test
/// of a hot journal). Asked through SQLite's VFS, like [`read_file_start`].
pub(crate) fn reserved_lock_held(db: &DbFile) -> std::io::Result<bool> {
    with_vfs_file(db, |file, methods| {
        let mut held: c_int = 0;
        // SAFETY: `file` is open with these methods (see `with_vfs_file`).
        let rc = unsafe {
            methods
                .xCheckReservedLock
                .map_or(ffi::SQLITE_ERROR, |f| f(file, &mut held))
        };
        if rc == ffi::SQLITE_OK {
            Ok(held != 0)
        } else {
            Err(std::io::Error::other(
                "SQLite could not test the file's lock",
            ))
        }
    })
}

/// A database file open read-only through SQLite's VFS and holding SQLite's SHARED
/// lock, as a reader in a transaction does: no writer can change the file until it
/// is released (a writer needs every SHARED lock gone before it writes the file,
/// and a recovery of its journal needs the same).
pub(crate) struct SharedLock<'a> {
    file: *mut ffi::sqlite3_file,
    methods: &'a ffi::sqlite3_io_methods,
}

impl SharedLock<'_> {
    /// The file's size in bytes.
    pub fn size(&self) -> std::io::Result<u64> {
        let mut len: ffi::sqlite3_int64 = 0;
        // SAFETY: `file` is open with these methods for the life of `self`.
        let rc = unsafe {
            self.methods
                .xFileSize
                .map_or(ffi::SQLITE_ERROR, |f| f(self.file, &mut len))
        };
        if rc == ffi::SQLITE_OK {
            Ok(u64::try_from(len).unwrap_or(0))
        } else {
            Err(std::io::Error::other("SQLite could not size the file"))
        }
    }

    /// Fills `buf` from `offset`, which with `buf`'s length must lie within the file.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let (Ok(len), Ok(at)) = (c_int::try_from(buf.len()), i64::try_from(offset)) else {
            return Err(std::io::Error::other("a read too large for SQLite's VFS"));
        };
        // SAFETY: as above; the buffer is `buf`, of the length passed.
        let rc = unsafe {
            self.methods.xRead.map_or(ffi::SQLITE_ERROR, |f| {
                f(self.file, buf.as_mut_ptr().cast(), len, at)
            })
        };
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "SQLite could not read the file (result code {rc})"
            )))
        }
    }

    /// Whether a writer holds the RESERVED lock: it is in the middle of a
    /// transaction, so a journal beside the file is its live one, not a hot one.
    pub fn reserved_held(&self) -> std::io::Result<bool> {
        let mut held: c_int = 0;
        // SAFETY: as above.
        let rc = unsafe {
            self.methods
                .xCheckReservedLock
                .map_or(ffi::SQLITE_ERROR, |f| f(self.file, &mut held))
        };
        if rc == ffi::SQLITE_OK {
            Ok(held != 0)
        } else {
            Err(std::io::Error::other(
                "SQLite could not test the file's lock",
            ))
        }
    }
}

/// Runs `f` on the database `db` while this process holds SQLite's SHARED lock on
/// it (see [`SharedLock`]), waiting up to `timeout` for a writer to finish
/// (`WouldBlock` past it). Taken and released through SQLite's VFS, like
/// [`read_file_start`], so no lock of another connection is dropped.
pub(crate) fn with_shared_lock<T>(
    db: &DbFile,
    timeout: Duration,
    f: impl FnOnce(&SharedLock<'_>) -> std::io::Result<T>,
) -> std::io::Result<T> {
    with_vfs_file(db, |file, methods| {
        let Some(lock) = methods.xLock else {
            return Err(std::io::Error::other("SQLite's VFS cannot lock"));
        };
        let started = std::time::Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            // SAFETY: `file` is open with these methods (see `with_vfs_file`).
            match unsafe { lock(file, ffi::SQLITE_LOCK_SHARED) } {
                ffi::SQLITE_OK => break,
                ffi::SQLITE_BUSY if started.elapsed() < timeout => {
                    // Short pauses: a writer that commits often leaves short gaps.
                    std::thread::sleep(pause.min(timeout.saturating_sub(started.elapsed())));
                    pause = (pause + Duration::from_micros(200)).min(Duration::from_millis(5));
                }
                ffi::SQLITE_BUSY => return Err(std::io::ErrorKind::WouldBlock.into()),
                rc => {
                    return Err(std::io::Error::other(format!(
                        "SQLite could not lock the file (result code {rc})"
                    )));
                }
            }
        }
        let done = f(&SharedLock { file, methods });
        if let Some(unlock) = methods.xUnlock {
            // SAFETY: as above; the lock taken above is released.
            unsafe { unlock(file, ffi::SQLITE_LOCK_NONE) };
        }
        done
    })
}

/// Opens the database `db` read-only through SQLite's default VFS, checks on the
/// descriptor SQLite opened that it is the file `db` found (a name replaced since
/// is refused: [`DbFile::check_opened`]), runs `f` on it, and closes it (a close
/// SQLite defers while another connection of the process holds a lock on the file).
fn with_vfs_file<T>(
    db: &DbFile,
    f: impl FnOnce(*mut ffi::sqlite3_file, &ffi::sqlite3_io_methods) -> std::io::Result<T>,
) -> std::io::Result<T> {
    use std::io;
    let name = path_c_string(&db.path)?;
    // SAFETY: a null name asks for the default VFS (initializing SQLite if needed);
    // the pointer SQLite returns stays valid for the life of the process.
    let vfs = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
    // SAFETY: `vfs`, when not null, points to a registered VFS (see above).
    let Some(open) = (unsafe { vfs.as_ref() }).and_then(|v| v.xOpen) else {
        return Err(io::Error::other("SQLite has no default VFS"));
    };
    // SAFETY: `name` is a NUL-terminated path; the three empty strings and no
    // parameters make the filename layout a VFS expects (freed below).
    let filename = unsafe {
        ffi::sqlite3_create_filename(
            name.as_ptr(),
            c"".as_ptr(),
            c"".as_ptr(),
            0,
            std::ptr::null_mut(),
        )
    };
    if filename.is_null() {
        return Err(io::Error::from(io::ErrorKind::OutOfMemory));
    }
    // The VFS's file object: `szOsFile` bytes, 8-aligned.
    // SAFETY: `vfs` is valid (above).
    let size = usize::try_from(unsafe { (*vfs).szOsFile }).unwrap_or(0);
    let mut storage = vec![0u64; size.div_ceil(8).max(1)];
    let file = storage.as_mut_ptr().cast::<ffi::sqlite3_file>();
    let mut out_flags: c_int = 0;
    // SAFETY: `file` points to `szOsFile` zeroed, aligned bytes that outlive the
    // open file; `filename` stays valid until it is freed after the close.
    let rc = unsafe {
        open(
            vfs,
            filename,
            file,
            ffi::SQLITE_OPEN_READONLY | ffi::SQLITE_OPEN_MAIN_DB,
            &mut out_flags,
        )
    };
    let result = if rc != ffi::SQLITE_OK {
        let os = io::Error::last_os_error();
        Err(if os.raw_os_error().is_some_and(|e| e != 0) {
            os
        } else {
            io::Error::other("SQLite could not open the file")
        })
    } else {
        // SAFETY: a successful xOpen set `pMethods` to the file's methods, valid
        // until xClose.
        unsafe {
            let methods = &*(*file).pMethods;
            let done = db
                .check_opened(descriptor_entry(vfs, file))
                .and_then(|()| f(file, methods));
            if let Some(close) = methods.xClose {
                close(file);
            }
            done
        }
    };
    // SAFETY: made by sqlite3_create_filename above, and the file is closed.
    unsafe { ffi::sqlite3_free_filename(filename) };
    result
}

/// The path as SQLite takes it: its bytes, NUL-terminated.
fn path_c_string(path: &std::path::Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("the path holds a NUL byte"))
}

/// Copies the whole database `from` (the main schema of a connection idstore
/// opened) into `to`, a connection to an empty new file, page by page with SQLite's
/// online backup API, in one step. When `from` has a transaction open, the copy is
/// of what that transaction sees: under a write transaction, exactly the state the
/// next write starts from, which no other program can change meanwhile.
///
/// Returns SQLite's result code and message on failure.
pub(crate) fn backup(from: RawDb, to: RawDb) -> Result<(), (c_int, String)> {
    // SAFETY: both handles belong to open connections the caller holds exclusively;
    // the names are NUL-terminated literals.
    unsafe {
        let b = ffi::sqlite3_backup_init(
            to.0.as_ptr(),
            c"main".as_ptr(),
            from.0.as_ptr(),
            c"main".as_ptr(),
        );
        if b.is_null() {
            return Err(last_error(to));
        }
        let stepped = ffi::sqlite3_backup_step(b, -1);
        let finished = ffi::sqlite3_backup_finish(b);
        match (stepped, finished) {
            (ffi::SQLITE_DONE, ffi::SQLITE_OK) => Ok(()),
            _ => Err(last_error(to)),
        }
    }
}

/// The connection's last error: its extended result code and message.
fn last_error(db: RawDb) -> (c_int, String) {
    // SAFETY: `db` is an open connection; the message is copied out at once.
    unsafe {
        let code = ffi::sqlite3_extended_errcode(db.0.as_ptr());
        let message = ffi::sqlite3_errmsg(db.0.as_ptr());
        let text = if message.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(message)
                .to_string_lossy()
                .into_owned()
        };
        (code, text)
    }
}

#[cfg(test)]
mod tests {
    //! A host program's own SQLite state, left as it was: its error log, its
    //! connections' settings, SQLCipher's log level, and no hook of idstore's left
    //! registered. SQLite's configuration is process-wide and can be set only before
    //! SQLite starts, so each case runs in a process of its own: the test runs
    //! itself again, alone (`idstore_testkit::alone`).

    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The errors SQLite reported to the host's own log.
    static HOST_LOGGED: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn host_log(_arg: *mut c_void, _code: c_int, _message: *const c_char) {
        HOST_LOGGED.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn a_hosts_own_sqlite_state_is_left_alone_when_idstore_opens_first() {
        if idstore_testkit::alone(
            "connection::ffi::tests::a_hosts_own_sqlite_state_is_left_alone_when_idstore_opens_first",
        ) {
            host_case("idstore");
        }
    }

    #[test]
    fn a_hosts_own_sqlite_state_is_left_alone_when_the_host_opens_first() {
        if idstore_testkit::alone(
            "connection::ffi::tests::a_hosts_own_sqlite_state_is_left_alone_when_the_host_opens_first",
        ) {
            host_case("host");
        }
    }

    /// A host error: a statement on a table that does not exist.
    fn provoke(conn: &rusqlite::Connection) {
        let before = HOST_LOGGED.load(Ordering::SeqCst);
        assert!(conn.execute_batch("SELECT * FROM no_such_table").is_err());
        assert!(
            HOST_LOGGED.load(Ordering::SeqCst) > before,
            "the host's log heard of its error"
        );
    }

    /// The host configures SQLite (its error log) before anything starts it, opens
    /// connections of its own before (when `first` is "host") and after idstore's,
    /// and finds everything as it set it.
    fn host_case(first: &str) {
        // SAFETY: SQLite has not started in this process (this test runs alone);
        // the callback has the signature SQLite declares and takes no argument.
        let rc = unsafe {
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_LOG,
                host_log as unsafe extern "C" fn(*mut c_void, c_int, *const c_char),
                std::ptr::null_mut::<c_void>(),
            )
        };
        assert_eq!(rc, ffi::SQLITE_OK, "the host configures SQLite first");
        let dir = tempfile::tempdir().unwrap();
        let host_file = dir.path().join("host.sqlite");
        let before = (first == "host").then(|| {
            let conn = rusqlite::Connection::open(&host_file).unwrap();
            provoke(&conn);
            if cfg!(feature = "encryption") {
                // The host keys a file of its own and picks SQLCipher's log level.
                conn.execute_batch("PRAGMA key = 'host'; PRAGMA cipher_log_level = ERROR;")
                    .unwrap();
            }
            conn
        });

        let path = dir.path().join("idstore.sqlite");
        let mut db = crate::Database::open(&path).unwrap();
        db.migrate(&crate::MigrateOptions::new()).unwrap();
        db.store()
            .unwrap()
            .settings(crate::SettingsScope::Master)
            .unwrap();
        if cfg!(feature = "encryption") {
            let keyed = |k: &str| crate::OpenOptions::new().key(Some(Key::new(k).unwrap()));
            let secret = dir.path().join("secret.sqlite");
            drop(keyed("right").open(&secret).unwrap());
            let wrong = keyed("wrong").open(&secret).unwrap_err();
            assert_eq!(wrong.kind(), crate::ErrorKind::WrongKey);
        }

        let after = rusqlite::Connection::open(dir.path().join("after.sqlite")).unwrap();
        for conn in before.iter().chain([&after]) {
            provoke(conn);
            let trusted: i64 = conn
                .pragma_query_value(None, "trusted_schema", |r| r.get(0))
                .unwrap();
            assert_eq!(trusted, 1, "SQLite's default, not idstore's");
            assert!(
                !conn
                    .db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE)
                    .unwrap()
            );
            if cfg!(feature = "encryption") {
                let level: String = conn
                    .pragma_query_value(None, "cipher_log_level", |r| r.get(0))
                    .unwrap();
                // The host's own choice, or SQLCipher's default once a key was used.
                let expected = if first == "host" { "ERROR" } else { "WARN" };
                assert_eq!(level, expected);
            }
        }
        // SAFETY: cancelling an entry point that is not registered is harmless; it
        // says whether it was.
        let left = unsafe { ffi::sqlite3_cancel_auto_extension(Some(on_open)) };
        assert_eq!(left, 0, "no hook of idstore's left registered");
    }
}
