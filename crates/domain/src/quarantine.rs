//! References to quarantined items (`account:4`, `pointer:1`), as they are written
//! on a command line and in reports.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Which quarantine an item is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineKind {
    /// An account row in `accounts_quarantine`.
    Account,
    /// A pointer value in `active_did_quarantine`.
    Pointer,
}

impl QuarantineKind {
    /// The kind as items are written (`account`, `pointer`).
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineKind::Account => "account",
            QuarantineKind::Pointer => "pointer",
        }
    }
}

/// One quarantined item: its kind and row id, written `account:4` or `pointer:1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuarantineRef {
    /// Which quarantine.
    pub kind: QuarantineKind,
    /// The row id there (for an account, its own account id).
    pub id: i32,
}

impl fmt::Display for QuarantineRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}

impl Serialize for QuarantineRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a `KIND:ID` text is not a [`QuarantineRef`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{text:?} is not a quarantined item: write KIND:ID, KIND being account or pointer (account:4, pointer:1)"
)]
pub struct ParseQuarantineRefError {
    /// The text given (shortened).
    pub text: String,
}

impl FromStr for QuarantineRef {
    type Err = ParseQuarantineRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseQuarantineRefError {
            text: s.chars().take(40).collect(),
        };
        let (kind, id) = s.split_once(':').ok_or_else(bad)?;
        let kind = match kind {
            "account" => QuarantineKind::Account,
            "pointer" => QuarantineKind::Pointer,
            _ => return Err(bad()),
        };
        let id = id.parse::<i32>().map_err(|_| bad())?;
        Ok(QuarantineRef { kind, id })
    }
}
