//! idstore's data layer: the one way to open a database, the embedded migrations
//! and the runner that applies, validates and rolls them back, and every read and
//! write of identities, settings and the active identity.

pub mod connection;
pub mod error;
pub mod migrations;
mod sql;

/// The connection type every function here takes.
pub use diesel::SqliteConnection;

pub use connection::{BUSY_TIMEOUT, OpenOptions, backup_to, configure, open};
pub use error::{MigrateError, OpenError};
pub use migrations::{
    ACTIVE_IDENTITY_VERSION, BASELINE_VERSION, CLEANUP_VERSION, ExtraCheck, MIGRATIONS,
    MigrateOptions, MigrationStatus, RollbackOptions, RollbackReport, RollbackTarget,
    known_versions, migrate, rollback, status,
};
