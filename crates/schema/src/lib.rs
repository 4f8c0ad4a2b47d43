//! Diesel's view of an idstore database: the `table!` definitions that
//! `diesel print-schema` generates (in [`schema`], never edited by hand) and the
//! joins Diesel cannot infer from them.
//!
//! `active_identity.activeDid` references `accounts(did)`, which is not the accounts
//! primary key, so print-schema emits no `joinable!` for it; [`joins`] spells the
//! join out once so no caller writes the `ON` clause.

#[allow(missing_docs, non_snake_case)]
pub mod schema;

pub mod joins;

pub use schema::*;
