//! Plain idstore types and the rules over them, with no I/O: parsed [`Did`]s,
//! [`Settings`] (declared once, in [`settings_list!`]) and the override-merge rule,
//! [`SettingsChange`], [`Account`] and [`ActiveIdentity`], and [`QuarantineRef`]
//! (which quarantined item), each also at the crate root.

pub mod account;
pub mod active_identity;
pub mod did;
pub mod display;
pub mod quarantine;
pub mod settings;

/// The date and time types in public fields (`NaiveDateTime`, UTC), re-exported so
/// callers use the same version.
pub use chrono;

pub use account::{Account, AccountError, AccountInfo, NewAccount, Secret};
pub use active_identity::ActiveIdentity;
pub use did::{Did, DidError};
pub use quarantine::{ParseQuarantineRefError, QuarantineKind, QuarantineRef};
pub use settings::{
    BoundingBox, Change, SearchBox, Settings, SettingsChange, SettingsError, SettingsField,
};
