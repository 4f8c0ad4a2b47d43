//! The demo legacy file, as the legacy app writes one: for the fixtures of this
//! crate's tests and for a service's own ([`crate::testing::TestDatabase::legacy_demo`]).

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

/// The tables the legacy app creates (its `001_initial` and later additive
/// migrations), before the later `hasBackedUpSeed` column, with its own migration
/// bookkeeping and the tables idstore never touches. No rows.
pub const LEGACY_APP_SCHEMA: &str = include_str!("../fixtures/legacy_app_schema.sql");

/// The demo file's rows (see [`write_legacy_demo`]).
pub const LEGACY_DEMO_DATA: &str = include_str!("../fixtures/legacy_demo_data.sql");

/// Writes the demo legacy file at `path` (which must not exist) as the legacy app
/// would: a plain connection, no WAL, foreign keys off, the app's tables and the
/// demo's rows.
pub fn write_legacy_demo(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    if path.exists() {
        return Err(format!("{} exists", path.display()).into());
    }
    let mut conn = SqliteConnection::establish(path.to_str().ok_or("the demo path is not UTF-8")?)?;
    conn.batch_execute("PRAGMA foreign_keys = OFF; BEGIN;")?;
    conn.batch_execute(LEGACY_APP_SCHEMA)?;
    conn.batch_execute(LEGACY_DEMO_DATA)?;
    conn.batch_execute("COMMIT;")?;
    Ok(())
}
