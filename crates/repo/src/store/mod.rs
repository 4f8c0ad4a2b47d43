//! The store: the typed repository API over a served file (settings, accounts,
//! the active identity, and through `quarantine/` the quarantine decisions), so
//! no caller writes SQL and no caller can corrupt the active identity.
//!
//! - `mod.rs`: [`Store`] itself, how its reads and writes run, and the active
//!   identity;
//! - `settings.rs`: the settings, read (master, override, merged as the app shows
//!   them) and written, with their row types generated from the domain's one list
//!   of settings (`settings_rows.rs`);
//! - `accounts.rs`: accounts added, listed, looked up, and deleted without leaving
//!   the pointer dangling;
//! - `undecodable.rs`: values a file holds that cannot be read as what they should
//!   be, named by row and column.
//!
//! **Rule:** every write runs in one `BEGIN IMMEDIATE` transaction (validation and
//! change together, so nothing is half-applied and no concurrent writer slips in
//! between), a savepoint of it inside a unit of work; the busy timeout absorbs
//! ordinary contention. A store is handed out only for a file the repository can
//! serve (see `Database::store`), and its queries use the generated `table!`
//! definitions, which describe that file.

use diesel::prelude::*;
use idstore_domain::{ActiveIdentity, Did};
use idstore_schema::active_identity;

use crate::connection::Handle;
use crate::error::Error;
use crate::sql::queries::{parse_stored_did, write_pointer};

mod accounts;
mod settings;
pub(crate) mod settings_rows;
pub(crate) mod undecodable;

pub use accounts::{AccountRemoval, WhenLast};
pub(crate) use settings::read_master;
pub use settings::{SettingsScope, SettingsView};

/// The repository API: settings, accounts, the active identity and quarantine
/// decisions, so no caller writes SQL and no caller can corrupt the active
/// identity. Get one from [`Database::store`](crate::Database::store), or for
/// several calls in one transaction from
/// [`Database::transaction`](crate::Database::transaction).
///
/// **Which row a settings write goes to.** The app keeps settings in two places:
/// the master row, and a row of each identity's own that overrides it for that
/// identity ([`SettingsScope::Merged`] reads the two together, as the app shows
/// them).
///
/// | call | writes |
/// |---|---|
/// | [`save_settings`](Store::save_settings) | the master row (and `activeDid`, when the change has it, to `active_identity`) |
/// | [`save_account_settings`](Store::save_account_settings)`(did, …)` | `did`'s own row |
/// | [`save_active_account_settings`](Store::save_active_account_settings) | the active identity's own row |
/// | [`set_active_did`](Store::set_active_did) | `active_identity` only |
///
/// A value in an identity's own row hides the master's for that identity: to
/// change what one identity sees, write its own row; to change the default for
/// every identity that has no value of its own, the master row.
pub struct Store<'c> {
    handle: &'c mut Handle,
}

impl std::fmt::Debug for Store<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.handle.path)
            .finish_non_exhaustive()
    }
}

impl<'c> Store<'c> {
    pub(crate) fn over(handle: &'c mut Handle) -> Self {
        Store { handle }
    }

    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.handle.conn
    }

    /// The connection, and what puts its errors in context, borrowed apart.
    pub(crate) fn split(&mut self) -> (&mut SqliteConnection, crate::connection::ErrorContext<'_>) {
        self.handle.split()
    }

    /// The quarantine exports of the unit of work this store runs in, if any.
    pub(crate) fn unit_exports(&mut self) -> Option<&mut Vec<std::path::PathBuf>> {
        self.handle.unit_exports.as_mut()
    }

    /// Runs a write in one immediate transaction (see [`Handle::write`]).
    pub(crate) fn write<T>(
        &mut self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let done = self.handle.write(f);
        done.map_err(|e| self.explain(e))
    }

    /// Runs a write that must survive a power cut once it returns (a quarantine
    /// decision): committed at `synchronous = EXTRA` whatever the handle's setting
    /// ([`Handle::durably`]). Inside a unit of work the unit's own commit decides.
    pub(crate) fn write_durably<T>(
        &mut self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if self.handle.unit_exports.is_some() {
            return self.write(f);
        }
        let done = self.handle.durably(|handle| handle.write(f));
        done.map_err(|e| self.explain(e))
    }

    /// An error of this store's file, in context (see [`Handle::context`]).
    pub(crate) fn context(&self, e: Error) -> Error {
        self.handle.context(e)
    }

    /// Runs a read in one read transaction.
    pub(crate) fn read<T>(
        &mut self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let done =
            crate::connection::transaction::read(&mut self.handle.conn, &self.handle.path, f);
        done.map_err(|e| self.explain(e))
    }

    /// A read that failed on a stored value it could not decode, with the row and
    /// column named (see [`undecodable::explain`]).
    pub(crate) fn explain(&mut self, e: Error) -> Error {
        let e = undecodable::explain(&mut self.handle.conn, e, &undecodable::READ_TABLES);
        self.handle.context(e)
    }

    /// Runs a read-only query of your own: `f` gets the connection inside a read
    /// transaction with `PRAGMA query_only` on, so a write it attempts fails
    /// (`attempt to write a readonly database`) instead of bypassing the store's
    /// rules. Writes go through the store's methods.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("app.sqlite");
    /// use idstore_repo::diesel::prelude::*;
    /// use idstore_schema::settings;
    ///
    /// let mut db = idstore_repo::Database::open(&path)?;
    /// db.migrate(&Default::default())?;
    /// let mut store = db.store()?;
    /// let rows: i64 = store.read_only(|conn| settings::table.count().get_result(conn))?;
    /// assert_eq!(rows, 1);
    /// let refused = store.read_only(|conn| diesel::delete(settings::table).execute(conn));
    /// assert!(refused.is_err());
    /// # Ok(()) }
    /// ```
    ///
    /// `query_only` is off again however `f` ends, a panic included: a panic is
    /// caught, its read rolled back, and it comes back as
    /// [`ErrorKind::Panicked`](crate::ErrorKind::Panicked).
    pub fn read_only<T>(
        &mut self,
        f: impl FnOnce(&mut SqliteConnection) -> QueryResult<T>,
    ) -> Result<T, Error> {
        self.handle.read_query_only(f)
    }

    /// The active identity pointer and when it last changed. A missing pointer row
    /// reads as no active identity with no `last_updated`.
    pub fn active_identity(&mut self) -> Result<ActiveIdentity, Error> {
        let row: Option<(Option<String>, chrono::NaiveDateTime)> = match active_identity::table
            .find(1)
            .select((active_identity::activeDid, active_identity::lastUpdated))
            .get_result(self.conn())
            .optional()
        {
            Ok(row) => row,
            Err(e) => return Err(self.explain(e.into())),
        };
        Ok(match row {
            Some((did, at)) => ActiveIdentity {
                active_did: parse_stored_did("the active identity", did)?,
                last_updated: Some(at.and_utc()),
            },
            None => ActiveIdentity {
                active_did: None,
                last_updated: None,
            },
        })
    }

    /// Switches the active identity (`None` clears it). An unknown DID is a typed error
    /// and changes nothing. The single row is upserted, so a file whose pointer row went
    /// missing heals instead of ignoring the write.
    pub fn set_active_did(&mut self, did: Option<&Did>) -> Result<(), Error> {
        self.write(|conn| write_pointer(conn, did))
    }
}
