//! Test fixtures (feature `fixtures`; not part of the data layer's API, and hidden
//! from its docs): the preview build's steps, every table's rows in a canonical,
//! typed text form, which "nothing was lost" and "the file is as it was" are
//! checked against, the raw connection under a `Database`, the observer of every
//! file step the power-loss tests replay, and the fuzz targets' entry points.

use std::collections::BTreeMap;

use diesel::prelude::*;

/// The connection under `db`, for tests that set up or inspect a file with SQL of
/// their own.
pub fn raw_connection(db: &mut crate::Database) -> &mut SqliteConnection {
    db.conn()
}

/// The steps of idstore's preview build (its steps of 2026-11-25, replaced before
/// any release): version, folder, up.sql, as that build ran them. Files that build
/// migrated are still in the field; idstore upgrades them in place.
pub const PREVIEW_STEPS: [(&str, &str, &str); 3] = [
    (
        "20261125000001",
        "2026-11-25-000001_active_identity",
        include_str!("../fixtures/preview/2026-11-25-000001_active_identity/up.sql"),
    ),
    (
        "202611250000011",
        "2026-11-25-000001-1_empty_active_did_means_none",
        include_str!("../fixtures/preview/2026-11-25-000001-1_empty_active_did_means_none/up.sql"),
    ),
    (
        "20261125000002",
        "2026-11-25-000002_drop_settings_active_did",
        include_str!("../fixtures/preview/2026-11-25-000002_drop_settings_active_did/up.sql"),
    ),
];

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

pub use crate::fs::seam::{FileStep, ObserverGuard, Protects};

/// Calls `observe` with every file step idstore takes outside SQLite on this thread
/// (creates, writes, syncs, renames, links, removals: see [`FileStep`]) until the
/// guard is dropped. The power-loss tests replay a crash after each one.
pub fn observe_file_steps(observe: impl FnMut(&FileStep) + 'static) -> ObserverGuard {
    crate::fs::seam::observe(observe)
}

/// Every reader of SQL text read from a file (the tokenizer, the checks of a stored
/// definition, a trigger's event, kept `INSERT` rows, idstore's own scripts), run on
/// `input`: the fuzz target `sqltext`'s entry point (fuzz/). Panics where a reader
/// breaks its promise (a token's span outside the input, a definition accepted as
/// one `CREATE` that does not start with `CREATE`).
pub fn fuzz_sqltext(input: &str) {
    crate::sql::fuzz::every_reader(input)
}
