//! The typed repository: settings, the active identity and accounts, so no caller
//! writes SQL and no caller can corrupt the active identity.
//!
//! Every write runs in one `BEGIN IMMEDIATE` transaction (validation and change
//! together, so nothing is half-applied and no concurrent writer slips in between);
//! the busy timeout set by [`crate::configure`] absorbs ordinary contention.

use std::path::Path;

use diesel::connection::DefaultLoadingMode;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use idstore_domain::{ActiveIdentity, Did, Settings, SettingsChange};
use idstore_schema::{active_identity, settings};
use serde::Serialize;

use crate::connection::OpenOptions;
use crate::error::RepoError;
use crate::queries::{
    clear_dangling_pointer, dangling_pointer, ensure_master_row, parse_stored_did, require_account,
    write_pointer,
};
use crate::rows::{SettingsChangeset, SettingsRow};
use crate::sql::UpdateById;

/// The one statement behind [`Store::account_settings`]: the master row, the pointer,
/// and the override row of the given DID (else of the active one), typed as
/// (`settings`, nullable `settings`, nullable text).
///
/// Written as its own query fragment, not with the DSL, because on this hottest call
/// Diesel's walk of a 60-node select clause (done on every call to find the cache
/// entry and collect binds) cost a fifth of the time; this walk pushes one string.
struct AccountSettingsQuery<'a> {
    target: Option<&'a str>,
}

/// The statement's SQL before and after its one bound parameter.
static ACCOUNT_SETTINGS_SQL: std::sync::LazyLock<(String, String)> =
    std::sync::LazyLock::new(|| {
        let columns = |alias: &str| {
            crate::rows::SETTINGS_COLUMNS
                .iter()
                .map(|c| format!("{alias}.\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let head = format!(
            "SELECT {}, {}, p.\"activeDid\" FROM \"settings\" AS m \
         LEFT JOIN \"active_identity\" AS p ON p.\"id\" = 1 \
         LEFT JOIN \"settings\" AS o ON o.\"accountDid\" = coalesce(",
            columns("m"),
            columns("o")
        );
        let tail = ", p.\"activeDid\") AND o.\"id\" <> 1 WHERE m.\"id\" = 1 ORDER BY o.\"id\"";
        (head, tail.to_owned())
    });

/// The [`QueryId`](diesel::query_builder::QueryId) of [`AccountSettingsQuery`].
struct AccountSettingsQueryId;

impl diesel::query_builder::QueryId for AccountSettingsQuery<'_> {
    type QueryId = AccountSettingsQueryId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for AccountSettingsQuery<'_> {
    type SqlType = (
        settings::SqlType,
        Nullable<settings::SqlType>,
        Nullable<Text>,
    );
}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for AccountSettingsQuery<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        let (head, tail) = &*ACCOUNT_SETTINGS_SQL;
        out.push_sql(head);
        out.push_bind_param::<Nullable<Text>, _>(&self.target)?;
        out.push_sql(tail);
        Ok(())
    }
}

impl RunQueryDsl<SqliteConnection> for AccountSettingsQuery<'_> {}

/// An owned connection to a migrated database: `Database::open(path)?.store()`.
pub struct Database {
    conn: SqliteConnection,
}

impl Database {
    /// Opens an existing database (it is never created here) and refuses one that
    /// still needs migrating.
    pub fn open(path: &Path) -> Result<Self, RepoError> {
        Self::from_connection(OpenOptions::new().create(false).open(path)?)
    }

    /// Wraps a configured connection, refusing a database that needs migrating.
    pub fn from_connection(mut conn: SqliteConnection) -> Result<Self, RepoError> {
        ensure_migrated(&mut conn)?;
        Ok(Database { conn })
    }

    /// The repository over this connection.
    pub fn store(&mut self) -> Store<'_> {
        Store {
            conn: &mut self.conn,
        }
    }
}

/// Refuses a database the repository cannot serve: one from a newer idstore, or one
/// below the latest migration that is not stopped at a pause point
/// ([`crate::migrations::PAUSE_POINTS`]; a legacy file not adopted yet, say).
pub fn ensure_migrated(conn: &mut SqliteConnection) -> Result<(), RepoError> {
    let st = crate::migrations::status(conn)?;
    st.refuse_unknown()?;
    if !st.servable() {
        return Err(RepoError::NeedsMigration {
            pending: st.pending,
        });
    }
    Ok(())
}

/// The repository API over a borrowed connection (a plain one or a pooled one).
/// The database must be migrated; [`Database::open`] checks that.
pub struct Store<'c> {
    pub(crate) conn: &'c mut SqliteConnection,
}

/// Settings as one identity sees them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountSettings {
    /// The master row overlaid with the identity's override row.
    pub settings: Settings,
    /// The active identity.
    pub active_did: Option<Did>,
    /// The identity whose override row was looked for (the one asked for, else the
    /// active one); `None` when neither.
    pub account_did: Option<Did>,
    /// Whether an override row for that identity exists.
    pub has_override: bool,
}

/// The master settings with the validated active identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefaultAccountSettings {
    /// The master row's settings.
    pub settings: Settings,
    /// The active identity, checked to name an account.
    pub active_did: Option<Did>,
    /// A pointer that named no account (possible only when another writer had foreign
    /// keys off): it was cleared in the same transaction and kept in
    /// `active_did_quarantine`.
    pub cleared_dangling_pointer: Option<String>,
}

impl<'c> Store<'c> {
    /// The repository over `conn`, which must be migrated (see [`ensure_migrated`]).
    pub fn new(conn: &'c mut SqliteConnection) -> Self {
        Store { conn }
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
    /// # idstore_repo::migrate(&mut idstore_repo::open(&path)?, Default::default())?;
    /// use diesel::prelude::*;
    /// use idstore_schema::settings;
    ///
    /// let mut db = idstore_repo::Database::open(&path)?;
    /// let rows: i64 = db.store().read_only(|conn| settings::table.count().get_result(conn))?;
    /// assert_eq!(rows, 1);
    /// let refused = db.store().read_only(|conn| {
    ///     diesel::delete(settings::table).execute(conn)
    /// });
    /// assert!(refused.is_err());
    /// # Ok(()) }
    /// ```
    pub fn read_only<T>(
        &mut self,
        f: impl FnOnce(&mut SqliteConnection) -> QueryResult<T>,
    ) -> Result<T, RepoError> {
        use diesel::connection::SimpleConnection;
        self.conn.batch_execute("PRAGMA query_only = ON;")?;
        let result = crate::txn::read(self.conn, |conn| f(conn).map_err(RepoError::from));
        let restored = self.conn.batch_execute("PRAGMA query_only = OFF;");
        let value = result?;
        restored?;
        Ok(value)
    }

    /// The master settings merged with the override row of `did`, or of the active
    /// identity when `did` is `None`, plus the active DID: one SQL statement.
    ///
    /// With no master row (a damaged file), the master values are the defaults
    /// (all unset) and the pointer and override are read separately.
    pub fn account_settings(&mut self, did: Option<&Did>) -> Result<AccountSettings, RepoError> {
        let row: Option<(SettingsRow, Option<SettingsRow>, Option<String>)> =
            AccountSettingsQuery {
                target: did.map(Did::as_str),
            }
            .load_iter::<_, DefaultLoadingMode>(self.conn)?
            .next()
            .transpose()?;
        let (master, over, active) = match row {
            Some((master, over, active)) => (Some(master), over, active),
            None => {
                let active = crate::queries::pointer(self.conn)?.flatten();
                let over = match did.map(Did::as_str).or(active.as_deref()) {
                    Some(d) => read_override(self.conn, d)?,
                    None => None,
                };
                (None, over, active)
            }
        };
        let active_did = parse_stored_did("active identity", active)?;
        let account_did = did.cloned().or_else(|| active_did.clone());
        let master = master
            .map(SettingsRow::into_settings)
            .transpose()?
            .unwrap_or_default();
        let has_override = over.is_some();
        let settings = match over {
            Some(o) => master.merged_with(&o.into_settings()?),
            None => master,
        };
        Ok(AccountSettings {
            settings,
            active_did,
            account_did,
            has_override,
        })
    }

    /// The active identity pointer and when it last changed. A missing pointer row
    /// reads as no active identity with no `last_updated`.
    pub fn active_identity(&mut self) -> Result<ActiveIdentity, RepoError> {
        let row: Option<(Option<String>, chrono::NaiveDateTime)> = active_identity::table
            .find(1)
            .select((active_identity::activeDid, active_identity::lastUpdated))
            .get_result(self.conn)
            .optional()?;
        Ok(match row {
            Some((did, at)) => ActiveIdentity {
                active_did: parse_stored_did("active identity", did)?,
                last_updated: Some(at),
            },
            None => ActiveIdentity {
                active_did: None,
                last_updated: None,
            },
        })
    }

    /// The master settings row alone; all unset when the row is missing.
    pub fn master_settings(&mut self) -> Result<Settings, RepoError> {
        Ok(read_master(self.conn)?
            .map(SettingsRow::into_settings)
            .transpose()?
            .unwrap_or_default())
    }

    /// An identity's override row alone (`None` when it has none).
    pub fn override_settings(&mut self, did: &Did) -> Result<Option<Settings>, RepoError> {
        Ok(read_override(self.conn, did.as_str())?
            .map(SettingsRow::into_settings)
            .transpose()?)
    }

    /// The master settings and the active identity, validated: a pointer naming no
    /// account is cleared in the same transaction, kept in `active_did_quarantine`
    /// and reported in the result.
    pub fn settings_for_default_account(&mut self) -> Result<DefaultAccountSettings, RepoError> {
        // The write lock is taken only when there is something to clear.
        let cleared = if dangling_pointer(self.conn)?.is_some() {
            crate::txn::immediate(self.conn, |conn| clear_dangling_pointer(conn, None))?
        } else {
            None
        };
        crate::txn::read(self.conn, |conn| {
            let settings = read_master(conn)?
                .map(SettingsRow::into_settings)
                .transpose()?
                .unwrap_or_default();
            let active = active_identity::table
                .find(1)
                .select(active_identity::activeDid)
                .get_result::<Option<String>>(conn)
                .optional()?
                .flatten();
            Ok(DefaultAccountSettings {
                settings,
                active_did: parse_stored_did("active identity", active)?,
                cleared_dangling_pointer: cleared,
            })
        })
    }

    /// `fallback` overlaid with the master row, then with `account`'s override row
    /// (when given): each set value wins over the one below it.
    pub fn merged_settings(
        &mut self,
        account: Option<&Did>,
        fallback: Settings,
    ) -> Result<Settings, RepoError> {
        let merged = fallback.merged_with(&self.master_settings()?);
        let over = match account {
            Some(did) => self.override_settings(did)?.unwrap_or_default(),
            None => Settings::default(),
        };
        Ok(merged.merged_with(&over))
    }

    /// Switches the active identity (`None` clears it). An unknown DID is a typed error
    /// and changes nothing. The single row is upserted, so a file whose pointer row went
    /// missing heals instead of ignoring the write.
    pub fn set_active_did(&mut self, did: Option<&Did>) -> Result<(), RepoError> {
        crate::txn::immediate(self.conn, |conn| write_pointer(conn, did))
    }

    /// Saves typed changes to the master row (created if missing); a change of the
    /// active identity inside it goes to `active_identity` in the same transaction.
    pub fn save_settings(&mut self, change: &SettingsChange) -> Result<(), RepoError> {
        change.validate()?;
        let columns = SettingsChangeset::from_change(change);
        crate::txn::immediate(self.conn, |conn| {
            match &change.active_did {
                idstore_domain::Change::Keep => {}
                idstore_domain::Change::Set(did) => write_pointer(conn, Some(did))?,
                idstore_domain::Change::Clear => write_pointer(conn, None)?,
            }
            if !columns.is_noop() {
                // The master row is re-created only when the update finds none.
                if UpdateById::new("settings", &columns, 1).execute(conn)? == 0 {
                    ensure_master_row(conn)?;
                    UpdateById::new("settings", &columns, 1).execute(conn)?;
                }
            }
            Ok(())
        })
    }

    /// Saves typed changes to `did`'s override row, creating it if missing. The DID must
    /// name an account; the active identity cannot be changed here.
    pub fn save_account_settings(
        &mut self,
        did: &Did,
        change: &SettingsChange,
    ) -> Result<(), RepoError> {
        if !change.active_did.is_keep() {
            return Err(RepoError::ActiveDidInAccountSettings);
        }
        change.validate()?;
        let columns = SettingsChangeset::from_change(change);
        crate::txn::immediate(self.conn, |conn| {
            require_account(conn, did)?;
            let id = match override_id(conn, did.as_str())? {
                Some(id) => id,
                None => diesel::insert_into(settings::table)
                    .values(settings::accountDid.eq(did.as_str()))
                    .returning(settings::id)
                    .get_result::<i32>(conn)?,
            };
            if !columns.is_noop() {
                UpdateById::new("settings", &columns, id).execute(conn)?;
            }
            Ok(())
        })
    }
}

/// The master settings row, typed.
pub(crate) fn read_master(conn: &mut SqliteConnection) -> QueryResult<Option<SettingsRow>> {
    settings::table
        .find(1)
        .select(SettingsRow::as_select())
        .get_result(conn)
        .optional()
}

// No `.first()` on hot paths: Diesel binds its `LIMIT ?`, and SQLite re-prepares a
// statement whose LIMIT is a bound parameter every time it is bound (measured: 10x
// slower than the cached statement). The first row of an ordered iterator instead.

fn override_id(conn: &mut SqliteConnection, did: &str) -> QueryResult<Option<i32>> {
    settings::table
        .filter(settings::accountDid.eq(did).and(settings::id.ne(1)))
        .order(settings::id)
        .select(settings::id)
        .load_iter::<_, DefaultLoadingMode>(conn)?
        .next()
        .transpose()
}

fn read_override(conn: &mut SqliteConnection, did: &str) -> QueryResult<Option<SettingsRow>> {
    settings::table
        .filter(settings::accountDid.eq(did).and(settings::id.ne(1)))
        .order(settings::id)
        .select(SettingsRow::as_select())
        .load_iter::<_, DefaultLoadingMode>(conn)?
        .next()
        .transpose()
}
