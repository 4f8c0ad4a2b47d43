//! The one place idstore calls SQLCipher's C API: each connection is handed its key
//! as SQLite opens it, straight from the [`Key`]'s own (wiped) memory, so the key
//! never passes through SQL text, Diesel's statement strings or a log. Everything
//! else about encryption is plain SQL.
//!
//! SQLite runs registered auto-extensions inside `sqlite3_open_v2`, on the opening
//! thread; the key for the connection being opened waits in a thread-local slot for
//! exactly that call.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{CString, c_char, c_int, c_void};
use std::sync::Once;

use libsqlite3_sys as ffi;

use crate::key::Key;

/// What a connection is given as it opens.
#[derive(Debug, Clone)]
pub(crate) struct Keying {
    /// Its key.
    pub key: Key,
    /// SQLCipher's `cipher_compatibility` (3 for files written by SQLCipher 3).
    pub compatibility: Option<u8>,
}

thread_local! {
    /// The keying for the connection this thread is opening, if any.
    static OPENING: RefCell<Option<Keying>> = const { RefCell::new(None) };
}

/// Clears the slot however the opening ends, wiping the key copy held there.
struct Clear;

impl Drop for Clear {
    fn drop(&mut self) {
        OPENING.with(|slot| slot.borrow_mut().take());
    }
}

/// Runs `open`, which opens one SQLite connection on this thread, handing that
/// connection `keying` (none: a plain connection) as it opens.
pub(crate) fn opening<T>(keying: Option<&Keying>, open: impl FnOnce() -> T) -> T {
    register();
    OPENING.with(|slot| *slot.borrow_mut() = keying.cloned());
    let _clear = Clear;
    open()
}

/// Runs one statement on a raw connection.
///
/// # Safety
/// `db` must be a connection SQLite is opening or has open.
unsafe fn exec(db: *mut ffi::sqlite3, sql: &str) -> c_int {
    let Ok(sql) = CString::new(sql) else {
        return ffi::SQLITE_MISUSE;
    };
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

/// The auto-extension: keys the connection when this thread is opening a keyed one,
/// then silences SQLCipher's own logging (it writes to stderr by default, `hmac
/// check failed` on a wrong key), so idstore's error is the only output.
unsafe extern "C" fn on_open(
    db: *mut ffi::sqlite3,
    _error: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    OPENING.with(|slot| {
        let slot = slot.borrow();
        let Some(keying) = slot.as_ref() else {
            return ffi::SQLITE_OK;
        };
        let key = keying.key.bytes();
        let Ok(len) = c_int::try_from(key.len()) else {
            return ffi::SQLITE_TOOBIG;
        };
        // SAFETY: `db` is the connection being opened; the key pointer and length
        // describe memory the slot owns for the whole call (SQLCipher copies it).
        let rc = unsafe {
            ffi::sqlite3_key_v2(db, c"main".as_ptr(), key.as_ptr().cast::<c_void>(), len)
        };
        let rc = match (rc, keying.compatibility) {
            (ffi::SQLITE_OK, Some(version)) => {
                // SAFETY: as above.
                unsafe { exec(db, &format!("PRAGMA cipher_compatibility = {version}")) }
            }
            (rc, _) => rc,
        };
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        // After keying: SQLCipher's first keyed connection sets its default logging
        // (WARN, to stderr), which this then turns off for the whole process. A plain
        // connection starts no SQLCipher context, so it has nothing to silence.
        // SAFETY: as above.
        unsafe { exec(db, QUIET) }
    })
}

/// Turns SQLCipher's own logging off (process-wide).
pub(crate) const QUIET: &str = "PRAGMA cipher_log_level = NONE";

/// Registers [`on_open`] once per process, for every connection opened after it.
fn register() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: SQLite declares auto-extension entry points with this exact
        // signature; registering one has no other precondition.
        let rc = unsafe { ffi::sqlite3_auto_extension(Some(on_open)) };
        assert_eq!(rc, ffi::SQLITE_OK, "registering the keying hook");
    });
}
