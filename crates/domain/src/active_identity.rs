//! The active identity pointer.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::did::Did;

/// Which identity is active (`active_identity`, the single row `id = 1`). In
/// JSON, the app's names and an RFC 3339 time with its offset:
/// `{"activeDid": "did:…", "lastUpdated": "2026-12-06T21:22:51.443Z"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveIdentity {
    /// The active DID; `None` when no identity is selected.
    pub active_did: Option<Did>,
    /// When the pointer last changed; `None` when the pointer row is missing
    /// (`check` reports that, and the next write heals it).
    pub last_updated: Option<DateTime<Utc>>,
}
