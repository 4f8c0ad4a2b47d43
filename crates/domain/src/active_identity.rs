//! The active identity pointer.

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::did::Did;

/// Which identity is active (`active_identity`, the single row `id = 1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveIdentity {
    /// The active DID; `None` when no identity is selected.
    pub active_did: Option<Did>,
    /// When the pointer last changed (UTC); `None` when the pointer row is missing
    /// (`check` reports that, and the next write heals it).
    pub last_updated: Option<NaiveDateTime>,
}
