//! Joins between tables that print-schema cannot declare with `joinable!`.

use diesel::dsl::auto_type;
use diesel::prelude::*;

use crate::schema::{accounts, active_identity};

/// `active_identity ⋈ accounts` on `activeDid = did`: the pointer row together with
/// the account it names. Yields no row when no identity is active.
#[auto_type(no_type_alias)]
pub fn active_identity_with_account() -> _ {
    active_identity::table
        .inner_join(accounts::table.on(active_identity::activeDid.eq(accounts::did.nullable())))
}

/// `active_identity ⟕ accounts`: the pointer row and, when it names one, its account.
/// A pointer whose account is missing (possible only if a writer had foreign keys
/// off) shows up as a row with no account.
#[auto_type(no_type_alias)]
pub fn active_identity_left_join_account() -> _ {
    active_identity::table
        .left_join(accounts::table.on(active_identity::activeDid.eq(accounts::did.nullable())))
}
