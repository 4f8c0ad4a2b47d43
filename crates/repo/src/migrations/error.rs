//! Why a migration, rollback or status read failed.

use super::MigrationReport;

/// Why a migration, rollback or status read failed. On every error the transaction
/// was rolled back: the database is as it was.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database records migrations this build does not have.
    #[error(
        "the database has migrations this build of idstore does not know ({}): it was written by a newer idstore; upgrade idstore before touching it",
        versions.join(", ")
    )]
    UnknownVersions {
        /// The unknown versions.
        versions: Vec<String>,
    },
    /// A requested target version does not exist.
    #[error("no migration has version {version}; known versions: {}", known.join(", "))]
    UnknownTarget {
        /// The requested version.
        version: String,
        /// Every known version.
        known: Vec<String>,
    },
    /// A legacy file whose tables do not have the shape idstore can adopt losslessly.
    #[error("this file does not have the legacy shape idstore can adopt without loss: {}", problems.join("; "))]
    LegacyShape {
        /// What is wrong.
        problems: Vec<String>,
    },
    /// The app's own active_identity table can only be adopted by a run that creates
    /// idstore's.
    #[error(
        "the file holds the app's own active_identity table; migrate at least to version {needed} to adopt it"
    )]
    TargetTooLowForAdoption {
        /// The version that creates idstore's active_identity.
        needed: String,
    },
    /// The file has an object under a name idstore's migrations create, and it is not
    /// equivalent to idstore's; nothing was written.
    #[error(
        "the file already has a {kind} named {name} and {why}; idstore would create its own under that name: rename or drop the file's {kind} first (nothing was changed)"
    )]
    NameCollision {
        /// `table`, `index` or `trigger`.
        kind: String,
        /// Its name.
        name: String,
        /// How it differs.
        why: String,
    },
    /// Rolling back would revert the baseline, which drops the user's tables.
    #[error(
        "rolling back the baseline drops the accounts and settings tables; pass include_baseline (`--include-baseline`) to really do that"
    )]
    BaselineNeedsFlag,
    /// Rolling back would drop restore decisions that a later `migrate` would undo
    /// (it keeps the lowest id of each DID again).
    #[error(
        "rolling back drops the record of restore decisions ({}) that a later migrate would undo, keeping the replaced accounts instead; discard the replaced accounts first, or pass forget_decisions (`--forget-decisions`) to roll back anyway",
        items.join(", ")
    )]
    DecisionsWouldBeUndone {
        /// The restored items (`account:4`).
        items: Vec<String>,
    },
    /// The file was damaged before the run: the check of its input failed, and
    /// nothing was written.
    #[error(
        "the database is damaged, so nothing was migrated: {}; restore it from a backup",
        problems.join("; ")
    )]
    DamagedInput {
        /// What SQLite's `quick_check` found.
        problems: Vec<String>,
    },
    /// The migrated data failed validation; everything was rolled back.
    #[error("validation failed, everything was rolled back: {}", report.errors.join("; "))]
    ValidationFailed {
        /// The report of the rolled-back run, with its `errors`.
        report: Box<MigrationReport>,
    },
    /// One step's SQL failed; everything was rolled back.
    #[error("migration {version} failed, everything was rolled back")]
    Step {
        /// The step.
        version: String,
        /// SQLite's error.
        #[source]
        source: diesel::result::Error,
    },
    /// The storage refused a write (a full disk, an I/O error); everything was
    /// rolled back.
    #[error(transparent)]
    Storage(crate::fault::StorageFault),
    /// Not enough free space for the run, found before writing anything.
    #[error(
        "not enough free space beside {}: {operation} needs about {} there ({}write-ahead log and rebuilt tables), and {} is free; nothing was changed; free some space there and retry{}",
        path.display(),
        crate::fault::human(*needed),
        if without_backup.is_some() { "backup, " } else { "" },
        crate::fault::human(*free),
        without_backup.map(|n| format!(" (without a backup, --no-backup, it needs about {})", crate::fault::human(n))).unwrap_or_default()
    )]
    NotEnoughSpace {
        /// What was about to run (`migrate`, `rollback`).
        operation: &'static str,
        /// The database.
        path: std::path::PathBuf,
        /// Bytes needed (estimated).
        needed: u64,
        /// Bytes free.
        free: u64,
        /// Bytes needed without the backup, when a backup was counted in.
        without_backup: Option<u64>,
    },
    /// A database error.
    #[error(transparent)]
    Diesel(#[from] diesel::result::Error),
}

impl MigrateError {
    /// A stable name for the kind of error, for scripts (`--json`'s `error.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            MigrateError::UnknownVersions { .. } => "newer_database",
            MigrateError::UnknownTarget { .. } => "unknown_version",
            MigrateError::LegacyShape { .. } => "legacy_shape",
            MigrateError::TargetTooLowForAdoption { .. } => "target_too_low",
            MigrateError::NameCollision { .. } => "name_collision",
            MigrateError::BaselineNeedsFlag => "baseline_needs_flag",
            MigrateError::DecisionsWouldBeUndone { .. } => "decisions_would_be_undone",
            MigrateError::DamagedInput { .. } => "damaged_input",
            MigrateError::ValidationFailed { .. } => "validation_failed",
            MigrateError::Storage(f) => f.kind_name(),
            MigrateError::NotEnoughSpace { .. } => "disk_full",
            MigrateError::Step { source, .. } | MigrateError::Diesel(source)
                if crate::connection::is_locked(source) =>
            {
                "locked"
            }
            MigrateError::Step { .. } => "migration_failed",
            MigrateError::Diesel(_) => "database_error",
        }
    }
}
