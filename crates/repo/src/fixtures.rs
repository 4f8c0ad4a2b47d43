//! Test fixtures (feature `fixtures`; not part of the data layer's API): the legacy
//! app's schema, the demo legacy file, and every table's rows in a canonical, typed
//! text form, which "nothing was lost" and "the file is as it was" are checked
//! against.

use std::collections::BTreeMap;

use diesel::prelude::*;

/// The connection under `db`, for tests that set up or inspect a file with SQL of
/// their own.
pub fn raw_connection(db: &mut crate::Database) -> &mut SqliteConnection {
    db.conn()
}

pub use crate::demo::{LEGACY_APP_SCHEMA, LEGACY_DEMO_DATA, write_legacy_demo};

/// Columns that hold clocks (when a row was quarantined, archived, updated or decided, when a
/// migration ran) rather than user data: [`table_rows`] callers usually skip them.
pub const CLOCK_COLUMNS: &[&str] = crate::sql::CLOCK_COLUMNS;

/// Every table's rows (`sqlite_sequence` included), each row a JSON array of its
/// columns' SQL literals (`quote()`, so `1`, `'1'` and `X'01'` differ), sorted, by
/// table name. Columns named in `skip` are left out.
pub fn table_rows(
    conn: &mut SqliteConnection,
    skip: &[&str],
) -> QueryResult<BTreeMap<String, Vec<String>>> {
    Ok(crate::sql::table_rows(conn, skip)?
        .into_iter()
        .map(|(table, (_, rows))| (table, rows))
        .collect())
}

pub use crate::files::seam::{FileStep, ObserverGuard, Protects};

/// Calls `observe` with every file step idstore takes outside SQLite on this thread
/// (creates, writes, syncs, renames, links, removals: see [`FileStep`]) until the
/// guard is dropped. The power-loss tests replay a crash after each one.
pub fn observe_file_steps(observe: impl FnMut(&FileStep) + 'static) -> ObserverGuard {
    crate::files::seam::observe(observe)
}
