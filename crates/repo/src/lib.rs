//! idstore's data layer: the one way to open a database, the embedded migrations
//! and the runner that applies, validates and rolls them back, and every read and
//! write of identities, settings and the active identity.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("app.sqlite");
//! # let mut conn = idstore_repo::open(&path)?;
//! # idstore_repo::migrate(&mut conn, Default::default())?;
//! # idstore_repo::Store::new(&mut conn).add_account(&idstore_domain::NewAccount {
//! #     did: "did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01".parse()?,
//! #     date_created: "2024-03-01T12:00:00.000Z".into(), derivation_path: None,
//! #     identity_encr_base64: None, mnemonic_encr_base64: None, passkey_cred_id_hex: None,
//! #     public_key_hex: "02ab".into() })?;
//! use idstore_domain::{Did, SettingsChange, SettingsField};
//! use idstore_repo::Database;
//!
//! let mut db = Database::open(&path)?; // refuses a file that needs migrating
//! let mut store = db.store();
//! let alice = Did::parse("did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01")?;
//! store.set_active_did(Some(&alice))?; // an unknown DID: typed error, nothing changed
//! let mut change = SettingsChange::default();
//! change.set_from_str(SettingsField::FirstName, "Ada")?;
//! store.save_account_settings(&alice, &change)?;
//! let view = store.account_settings(None)?; // master ⊕ the active identity's override
//! assert_eq!(view.settings.first_name.as_deref(), Some("Ada"));
//! # Ok(()) }
//! ```

pub mod accounts;
mod cipher;
pub mod connection;
pub mod encryption;
pub mod error;
pub mod fault;
pub mod guard;
pub mod health;
pub mod key;
/// Fixtures (feature `fixtures`): the legacy app's schema and a demo file to try idstore on.
#[cfg(feature = "fixtures")]
pub mod legacy;
pub mod migrations;
#[cfg(feature = "pool")]
pub mod pool;
pub mod quarantine;
mod queries;
mod rows;
/// Fixtures (feature `fixtures`): every table's rows in a canonical form, for tests.
#[cfg(feature = "fixtures")]
pub mod snapshot;
mod sql;
pub mod store;
mod txn;

/// The connection type every function here takes.
pub use diesel::SqliteConnection;

pub use accounts::AccountRemoval;
pub use connection::{BUSY_TIMEOUT, OpenOptions, backup_to, configure, is_encrypted, open};
pub use encryption::{ConvertError, Converted, convert};
pub use error::{InvalidAccount, MigrateError, OpenError, RepoError};
pub use health::{HealthReport, Problem, ProblemKind, RepairReport, check_database};
pub use key::{Key, KeyError};
pub use migrations::{
    ACTIVE_IDENTITY_VERSION, BASELINE_VERSION, CLEANUP_VERSION, ExtraCheck, Integrity, MIGRATIONS,
    MigrateOptions, MigrationPlan, MigrationReport, MigrationStatus, MigrationWarning,
    PAUSE_POINTS, Progress, RollbackOptions, RollbackReport, RollbackTarget, check_target,
    known_versions, migrate, plan_migration, rollback, rollback_plan, status, step_summary,
};
pub use quarantine::{
    Decision, DecisionKind, Discard, QuarantineError, QuarantineKind, QuarantineRef,
    QuarantinedAccount, QuarantinedDetail, QuarantinedItem, QuarantinedPointer,
};
pub use store::{AccountSettings, Database, DefaultAccountSettings, Store, ensure_migrated};
