//! A crash-simulating VFS in the manner of SQLite's `test6.c`: it wraps the default
//! VFS, passes every call through, and while a recording is on for the thread it
//! notes every create, write, truncate, sync and delete SQLite makes to a named
//! file, so the model can drop, keep or tear what was not synced.
//!
//! The unix VFS syncs a journal's (or log's) folder the first time it syncs a
//! journal it created, and a delete's folder when asked to (`synchronous = EXTRA`
//! in rollback-journal mode): both are noted as folder syncs, as they happen.
//! Shared memory (`-shm`) is not durable state and is not noted.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_void};
use std::path::PathBuf;
use std::sync::Once;

use libsqlite3_sys as ffi;

use super::{Step, note};

/// The wrapped default VFS (the unix one), found before this one registers.
static mut REAL: *mut ffi::sqlite3_vfs = std::ptr::null_mut();
/// This VFS.
static mut SHIM: std::mem::MaybeUninit<ffi::sqlite3_vfs> = std::mem::MaybeUninit::uninit();

/// A file of this VFS: SQLite's base (its methods), and the real file.
#[repr(C)]
struct ShimFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// Its name, when it has one and is not a temporary file.
    path: Option<PathBuf>,
    /// The unix VFS syncs the folder at this file's first sync (a journal or log
    /// it created).
    folder_sync_pending: bool,
}

/// Registers the VFS as SQLite's default, once per process. Connections opened
/// afterwards go through it; it records only on threads with a recording on.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registration happens once, before any use of the statics; the
        // VFS struct copies the real one's fields and overrides the calls it notes.
        unsafe {
            let real = ffi::sqlite3_vfs_find(std::ptr::null());
            assert!(!real.is_null(), "SQLite has a default VFS");
            REAL = real;
            let mut shim: ffi::sqlite3_vfs = *real;
            shim.szOsFile = std::mem::size_of::<ShimFile>() as c_int;
            shim.zName = c"idstore-crash".as_ptr();
            shim.pNext = std::ptr::null_mut();
            shim.pAppData = std::ptr::null_mut();
            shim.xOpen = Some(x_open);
            shim.xDelete = Some(x_delete);
            let slot = std::ptr::addr_of_mut!(SHIM);
            (*slot).write(shim);
            let rc = ffi::sqlite3_vfs_register((*slot).as_mut_ptr(), 1);
            assert_eq!(rc, ffi::SQLITE_OK, "the crash VFS registers");
        }
    });
}

/// Whether the crash VFS is SQLite's default now (it registers with the bundled
/// SQLCipher build as with plain SQLite).
pub fn is_default() -> bool {
    // SAFETY: the default VFS's name is a static C string.
    unsafe {
        let v = ffi::sqlite3_vfs_find(std::ptr::null());
        !v.is_null() && CStr::from_ptr((*v).zName).to_bytes() == b"idstore-crash"
    }
}

fn real_vfs() -> *mut ffi::sqlite3_vfs {
    // SAFETY: written once in `install`, before this VFS can be called.
    unsafe { REAL }
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite hands over `szOsFile` bytes for `file` and a valid (or null)
    // name; the real file gets an allocation of its own VFS's size.
    unsafe {
        let shim = file.cast::<ShimFile>();
        (*shim).base.pMethods = std::ptr::null();
        let real_vfs = real_vfs();
        let size = usize::try_from((*real_vfs).szOsFile).unwrap_or(0);
        let layout = std::alloc::Layout::from_size_align(size.max(8), 8).unwrap();
        let real = std::alloc::alloc_zeroed(layout).cast::<ffi::sqlite3_file>();
        let path = (!name.is_null() && flags & ffi::SQLITE_OPEN_DELETEONCLOSE == 0)
            .then(|| PathBuf::from(CStr::from_ptr(name).to_string_lossy().into_owned()));
        let existed = path.as_ref().is_some_and(|p| p.exists());
        let open = (*real_vfs).xOpen.expect("the real VFS opens files");
        let rc = open(real_vfs, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            if !(*real).pMethods.is_null() {
                ((*(*real).pMethods).xClose.unwrap())(real);
            }
            std::alloc::dealloc(real.cast(), layout);
            return rc;
        }
        let created = path.is_some() && !existed && flags & ffi::SQLITE_OPEN_CREATE != 0;
        if created {
            note(|| Step::Create {
                path: path.clone().unwrap(),
            });
        }
        let journal = flags
            & (ffi::SQLITE_OPEN_MAIN_JOURNAL
                | ffi::SQLITE_OPEN_SUPER_JOURNAL
                | ffi::SQLITE_OPEN_WAL)
            != 0;
        std::ptr::write(
            shim,
            ShimFile {
                base: ffi::sqlite3_file { pMethods: &METHODS },
                real,
                path,
                folder_sync_pending: created && journal,
            },
        );
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_delete(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    // SAFETY: forwarded as given; the name is a valid C string.
    unsafe {
        let real_vfs = real_vfs();
        let rc = ((*real_vfs).xDelete.unwrap())(real_vfs, name, sync_dir);
        if rc == ffi::SQLITE_OK {
            let path = PathBuf::from(CStr::from_ptr(name).to_string_lossy().into_owned());
            let folder = path.parent().map(|p| p.to_owned());
            note(|| Step::Remove { path });
            if sync_dir & 1 != 0
                && let Some(folder) = folder
            {
                note(|| Step::SyncFolder {
                    path: folder,
                    protects: "a deleted journal (the commit, synchronous EXTRA)",
                });
            }
        }
        rc
    }
}

/// The real file and its methods.
///
/// # Safety
/// `f` is a file this VFS opened.
unsafe fn real(
    f: *mut ffi::sqlite3_file,
) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
    // SAFETY: the caller's promise; the real file's methods live as long as it does.
    unsafe {
        let real = (*f.cast::<ShimFile>()).real;
        (real, &*(*real).pMethods)
    }
}

unsafe extern "C" fn x_close(f: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: `f` is open; it is closed once, then its real file freed.
    unsafe {
        let (r, m) = real(f);
        let rc = (m.xClose.unwrap())(r);
        let real_vfs = real_vfs();
        let size = usize::try_from((*real_vfs).szOsFile).unwrap_or(0);
        let layout = std::alloc::Layout::from_size_align(size.max(8), 8).unwrap();
        std::alloc::dealloc(r.cast(), layout);
        std::ptr::drop_in_place(std::ptr::addr_of_mut!((*f.cast::<ShimFile>()).path));
        rc
    }
}

unsafe extern "C" fn x_read(
    f: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    n: c_int,
    off: i64,
) -> c_int {
    // SAFETY: forwarded as given.
    unsafe {
        let (r, m) = real(f);
        (m.xRead.unwrap())(r, buf, n, off)
    }
}

unsafe extern "C" fn x_write(
    f: *mut ffi::sqlite3_file,
    buf: *const c_void,
    n: c_int,
    off: i64,
) -> c_int {
    // SAFETY: forwarded as given; `buf` holds `n` bytes.
    unsafe {
        let (r, m) = real(f);
        let rc = (m.xWrite.unwrap())(r, buf, n, off);
        if rc == ffi::SQLITE_OK
            && let Some(path) = &(*f.cast::<ShimFile>()).path
        {
            note(|| Step::Write {
                path: path.clone(),
                offset: u64::try_from(off).unwrap_or(0),
                data: std::slice::from_raw_parts(buf.cast::<u8>(), usize::try_from(n).unwrap_or(0))
                    .to_vec(),
            });
        }
        rc
    }
}

unsafe extern "C" fn x_truncate(f: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: forwarded as given.
    unsafe {
        let (r, m) = real(f);
        let rc = (m.xTruncate.unwrap())(r, size);
        if rc == ffi::SQLITE_OK
            && let Some(path) = &(*f.cast::<ShimFile>()).path
        {
            note(|| Step::Truncate {
                path: path.clone(),
                len: u64::try_from(size).unwrap_or(0),
            });
        }
        rc
    }
}

unsafe extern "C" fn x_sync(f: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: forwarded as given.
    unsafe {
        let (r, m) = real(f);
        let rc = (m.xSync.unwrap())(r, flags);
        let shim = &mut *f.cast::<ShimFile>();
        if rc == ffi::SQLITE_OK
            && let Some(path) = &shim.path
        {
            note(|| Step::Sync {
                path: path.clone(),
                protects: "SQLite's own (journal, log or database)",
            });
            if shim.folder_sync_pending {
                shim.folder_sync_pending = false;
                if let Some(folder) = path.parent() {
                    note(|| Step::SyncFolder {
                        path: folder.to_owned(),
                        protects: "a journal's or log's new name (the unix VFS, at its first sync)",
                    });
                }
            }
        }
        rc
    }
}

macro_rules! forward {
    ($name:ident, $field:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        unsafe extern "C" fn $name(f: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> $ret {
            // SAFETY: forwarded as given.
            unsafe {
                let (r, m) = real(f);
                (m.$field.unwrap())(r $(, $arg)*)
            }
        }
    };
}

forward!(x_file_size, xFileSize, (size: *mut i64) -> c_int);
forward!(x_lock, xLock, (level: c_int) -> c_int);
forward!(x_unlock, xUnlock, (level: c_int) -> c_int);
forward!(x_check_reserved, xCheckReservedLock, (out: *mut c_int) -> c_int);
forward!(x_file_control, xFileControl, (op: c_int, arg: *mut c_void) -> c_int);
forward!(x_sector_size, xSectorSize, () -> c_int);
forward!(x_device, xDeviceCharacteristics, () -> c_int);
forward!(x_shm_map, xShmMap, (page: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int);
forward!(x_shm_lock, xShmLock, (offset: c_int, n: c_int, flags: c_int) -> c_int);
forward!(x_shm_unmap, xShmUnmap, (delete: c_int) -> c_int);
forward!(x_fetch, xFetch, (offset: i64, n: c_int, out: *mut *mut c_void) -> c_int);
forward!(x_unfetch, xUnfetch, (offset: i64, p: *mut c_void) -> c_int);

unsafe extern "C" fn x_shm_barrier(f: *mut ffi::sqlite3_file) {
    // SAFETY: forwarded as given.
    unsafe {
        let (r, m) = real(f);
        (m.xShmBarrier.unwrap())(r)
    }
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: Some(x_fetch),
    xUnfetch: Some(x_unfetch),
};
