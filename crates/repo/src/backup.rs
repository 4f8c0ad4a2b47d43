//! Backup copies: a consistent copy of the open database beside it, owner-only,
//! under the same key and format when it is encrypted, refused up front when the
//! disk has no room for it, and never left half-written.

use std::io;
use std::path::Path;

use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::error::{Detail, Error, ErrorKind, human};
use crate::files::folder_of;
use crate::storage::{database_bytes, free_space};

/// Writes a consistent copy of the open database to `dest` (which must not exist),
/// owner-only, with `VACUUM INTO`: safe while other connections write, and a valid
/// database on its own (no `-wal` file needed). An encrypted database is copied
/// under its own key and SQLCipher settings (see [`crate::encryption::export_copy`]).
///
/// Refuses before creating anything when the disk holding `dest` has less free space
/// than the copy needs. On any failure nothing is left behind: no partial copy and no
/// journal of one.
pub(crate) fn backup_to(
    conn: &mut SqliteConnection,
    keying: Option<&crate::hooks::Keying>,
    dest: &Path,
) -> Result<(), Error> {
    let target = dest.to_str().ok_or_else(|| {
        Error::io(
            dest,
            io::Error::new(io::ErrorKind::InvalidInput, "backup path is not UTF-8"),
        )
    })?;
    let backup_err = |source: diesel::result::Error| -> Error {
        Error::at(
            crate::error::classify(&source),
            dest,
            format!(
                "could not write a backup to {} (the database was not changed)",
                dest.display()
            ),
        )
        .caused_by(source)
    };
    let needed = database_bytes(conn).map_err(backup_err)?;
    let folder = folder_of(dest);
    if let Some(free) = free_space(folder)
        && free < needed
    {
        return Err(no_room(dest, needed, Some(free)));
    }
    crate::files::create_private(dest).map_err(|source| Error::io(dest, source))?;
    let copied = match keying {
        #[cfg(feature = "encryption")]
        Some(keying) => crate::encryption::export_copy(conn, target, keying),
        _ => diesel::sql_query("VACUUM INTO ?")
            .bind::<Text, _>(target)
            .execute(conn)
            .map(drop),
    };
    copied.map_err(|source| {
        crate::files::remove_with_journals(dest);
        if crate::error::classify(&source) == ErrorKind::DiskFull {
            no_room(dest, needed, free_space(folder))
        } else {
            backup_err(source)
        }
    })
}

/// The refusal of a backup the disk has no room for.
pub(crate) fn no_room(dest: &Path, needed: u64, free: Option<u64>) -> Error {
    Error::at(
        ErrorKind::DiskFull,
        dest,
        format!(
            "no room for the backup {}: it needs about {}{}; nothing was written and the database was not changed; free some space there, or go without a backup",
            dest.display(),
            human(needed),
            free.map(|f| format!(", {} is free", human(f)))
                .unwrap_or_default()
        ),
    )
    .with_detail(Detail::WithoutBackup(0))
}
