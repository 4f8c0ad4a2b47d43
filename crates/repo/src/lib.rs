//! idstore's data layer: the one way to open a database, the embedded migrations
//! and the runner that applies, validates and rolls them back, and every read and
//! write of identities, settings and the active identity.

pub mod accounts;
pub mod connection;
pub mod error;
pub mod health;
pub mod legacy;
pub mod migrations;
#[cfg(feature = "pool")]
pub mod pool;
mod rows;
mod sql;
pub mod store;

/// The connection type every function here takes.
pub use diesel::SqliteConnection;

pub use accounts::AccountRemoval;
pub use connection::{BUSY_TIMEOUT, OpenOptions, backup_to, configure, open};
pub use error::{MigrateError, OpenError, RepoError};
pub use health::{HealthReport, Problem, ProblemKind, RepairReport, check_database};
pub use migrations::{
    ACTIVE_IDENTITY_VERSION, BASELINE_VERSION, CLEANUP_VERSION, ExtraCheck, MIGRATIONS,
    MigrateOptions, MigrationStatus, Progress, RollbackOptions, RollbackReport, RollbackTarget,
    known_versions, migrate, rollback, rollback_plan, status,
};
pub use store::{AccountSettings, Database, DefaultAccountSettings, Store, ensure_migrated};
