//! Plain idstore types and the rules over them, with no I/O: parsed [`Did`]s,
//! [`Settings`] and the override-merge rule, [`SettingsChange`], [`Account`],
//! [`ActiveIdentity`] and the [`MigrationReport`].

pub mod account;
pub mod active_identity;
pub mod did;
pub mod report;
pub mod settings;

pub use account::{Account, AccountInfo, NewAccount, Secret};
pub use active_identity::ActiveIdentity;
pub use did::{Did, DidError};
pub use report::{MigrationReport, MigrationWarning};
pub use settings::{
    BoundingBox, Change, SearchBox, Settings, SettingsChange, SettingsError, SettingsField,
};
