//! Diesel's view of an idstore database: the `table!` definitions that
//! `diesel print-schema` generates (in [`schema`], never edited by hand).
//!
//! `active_identity.activeDid` references `accounts(did)`, which is not the accounts
//! primary key, so print-schema emits no `joinable!` for it: a query joining the two
//! spells out its `ON` clause.

#[allow(missing_docs, non_snake_case)]
pub mod schema;

pub use schema::*;
