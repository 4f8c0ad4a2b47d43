//! Settings: the master row, each identity's override row, and the two merged as
//! the app shows them, read in one statement on the hot path; and the writes to
//! each row, the active identity kept out of a per-account write.

use diesel::connection::DefaultLoadingMode;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use idstore_domain::{Did, Settings, SettingsChange};
use idstore_schema::settings;
use serde::Serialize;

use super::Store;
use super::settings_rows::{SettingsChangeset, SettingsRow};
use crate::error::{Error, ErrorKind};
use crate::sql::UpdateById;
use crate::sql::queries::{ensure_master_row, parse_stored_did, require_account, write_pointer};

/// The one statement behind [`Store::settings`]: the master row, the pointer,
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
            super::settings_rows::SETTINGS_COLUMNS
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

/// Which settings [`Store::settings`] reads.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsScope<'a> {
    /// The master row alone (all unset when it is missing).
    Master,
    /// An identity's override row alone (all unset when it has none); the DID must
    /// name an account.
    Override(&'a Did),
    /// The master row overlaid with the override row of the DID given, else of the
    /// active identity: what the app shows an identity. One SQL statement.
    Merged(Option<&'a Did>),
}

/// Settings as [`Store::settings`] read them. In JSON, one object by the app's
/// names, as the app's own settings object: every setting, `activeDid`, and what
/// the view says of itself, `accountDid` (the identity whose override row was
/// read) and `hasOverride`. Sent back as it is, it reads as a
/// [`SettingsChange`] that changes nothing those rows show (the view's own two
/// keys are passed over).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let test = idstore_repo::testing::TestDatabase::seeded()?;
/// # let mut db = test.open()?;
/// use idstore_repo::domain::SettingsChange;
/// use idstore_repo::SettingsScope;
///
/// let mut store = db.store()?;
/// let view = store.settings(SettingsScope::Master)?;
/// let json = serde_json::to_value(&view)?;
/// assert_eq!(json["firstName"], "Test");
/// assert_eq!(json["activeDid"], idstore_repo::testing::ALICE);
/// let back: SettingsChange = serde_json::from_value(json)?;
/// store.save_settings(&back)?;
/// assert_eq!(store.settings(SettingsScope::Master)?, view);
/// # Ok(()) }
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    /// The settings of the scope asked for.
    #[serde(flatten)]
    pub settings: Settings,
    /// The active identity.
    pub active_did: Option<Did>,
    /// The identity whose override row was read (for `Merged`, the one asked for,
    /// else the active one); `None` for the master row, or when there is neither.
    pub account_did: Option<Did>,
    /// Whether that override row exists.
    pub has_override: bool,
}

impl Store<'_> {
    /// Settings as `scope` says: the master row, an identity's override row, or the
    /// two merged (each set override value wins over the master's), with the active
    /// identity.
    ///
    /// ```
    /// # fn main() -> Result<(), idstore_repo::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let mut db = idstore_repo::Database::open(&dir.path().join("a.sqlite"))?;
    /// # db.migrate(&Default::default())?;
    /// use idstore_repo::SettingsScope;
    ///
    /// let mut store = db.store()?;
    /// let master = store.settings(SettingsScope::Master)?;
    /// assert_eq!(master.settings.api_server.as_deref(), Some("https://api.endorser.ch"));
    /// assert_eq!(store.settings(SettingsScope::Merged(None))?.settings, master.settings);
    /// # Ok(()) }
    /// ```
    pub fn settings(&mut self, scope: SettingsScope<'_>) -> Result<SettingsView, Error> {
        match scope {
            SettingsScope::Merged(did) => self.merged_settings(did),
            SettingsScope::Master => self.read(|conn| {
                let settings = read_master(conn)?
                    .map(SettingsRow::into_settings)
                    .transpose()?
                    .unwrap_or_default();
                Ok(SettingsView {
                    settings,
                    active_did: read_active(conn)?,
                    account_did: None,
                    has_override: false,
                })
            }),
            SettingsScope::Override(did) => self.read(|conn| {
                require_account(conn, did)?;
                let over = read_override(conn, did.as_str())?;
                Ok(SettingsView {
                    has_override: over.is_some(),
                    settings: over
                        .map(SettingsRow::into_settings)
                        .transpose()?
                        .unwrap_or_default(),
                    active_did: read_active(conn)?,
                    account_did: Some(did.clone()),
                })
            }),
        }
    }

    /// The master settings merged with the override row of `did`, or of the active
    /// identity when `did` is `None`, plus the active DID: one SQL statement.
    ///
    /// With no master row (a damaged file), the master values are the defaults
    /// (all unset) and the pointer and override are read separately.
    fn merged_settings(&mut self, did: Option<&Did>) -> Result<SettingsView, Error> {
        let read = self.read_merged(did);
        read.map_err(|e| self.explain(e))
    }

    fn read_merged(&mut self, did: Option<&Did>) -> Result<SettingsView, Error> {
        let conn = self.conn();
        let row: Option<(SettingsRow, Option<SettingsRow>, Option<String>)> =
            AccountSettingsQuery {
                target: did.map(Did::as_str),
            }
            .load_iter::<_, DefaultLoadingMode>(&mut *conn)?
            .next()
            .transpose()?;
        let (master, over, active) = match row {
            Some((master, over, active)) => (Some(master), over, active),
            None => {
                let active = crate::sql::queries::pointer(conn)?.flatten();
                let over = match did.map(Did::as_str).or(active.as_deref()) {
                    Some(d) => read_override(conn, d)?,
                    None => None,
                };
                (None, over, active)
            }
        };
        let active_did = parse_stored_did("the active identity", active)?;
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
        Ok(SettingsView {
            settings,
            active_did,
            account_did,
            has_override,
        })
    }

    /// Saves typed changes to the **master row** (`settings` row 1, created if
    /// missing): the value every identity sees unless its own row sets one. A change
    /// of the active identity inside it goes to `active_identity` in the same
    /// transaction. (See the [`Store`] docs for which call writes which row.)
    pub fn save_settings(&mut self, change: &SettingsChange) -> Result<(), Error> {
        change.validate()?;
        let columns = SettingsChangeset::from_change(change);
        self.write(|conn| {
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

    /// Saves typed changes to **`did`'s own row** (its override row, created if
    /// missing), which wins over the master row for that identity. The DID must
    /// name an account. The active identity cannot be changed here: a change that
    /// names another one is refused, one that names the active identity it already
    /// has (a view sent back) changes nothing there.
    pub fn save_account_settings(
        &mut self,
        did: &Did,
        change: &SettingsChange,
    ) -> Result<(), Error> {
        change.validate()?;
        let columns = SettingsChangeset::from_change(change);
        self.write(|conn| {
            let unchanged = match &change.active_did {
                idstore_domain::Change::Keep => true,
                named => {
                    let now = parse_stored_did(
                        "the active identity",
                        crate::sql::queries::pointer(conn)?.flatten(),
                    )?;
                    match named {
                        idstore_domain::Change::Set(d) => now.as_ref() == Some(d),
                        _ => now.is_none(),
                    }
                }
            };
            if !unchanged {
                return Err(Error::new(
                    ErrorKind::InvalidSetting,
                    "the active identity is not a per-account setting; change it with save_settings or set_active_did",
                )
                .of_input(&"the active identity cannot be changed with one identity's settings"));
            }
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

    /// Saves typed changes to **the active identity's own row** (its override row,
    /// created if missing), in one transaction with reading which identity is
    /// active; returns that identity. What the app shows it
    /// ([`SettingsScope::Merged(None)`](SettingsScope::Merged)) then has every value
    /// the change sets. Refused with
    /// [`ErrorKind::NoActiveIdentity`] when none
    /// is active; the active identity itself is changed as
    /// [`Store::save_account_settings`] says (not at all).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let test = idstore_repo::testing::TestDatabase::seeded()?;
    /// # let mut db = test.open()?;
    /// use idstore_repo::domain::SettingsChange;
    /// use idstore_repo::SettingsScope;
    ///
    /// let change: SettingsChange = serde_json::from_str(r#"{"firstName": "Ada"}"#)?;
    /// let mut store = db.store()?;
    /// let alice = store.save_active_account_settings(&change)?;
    /// assert_eq!(alice.as_str(), idstore_repo::testing::ALICE);
    /// let shown = store.settings(SettingsScope::Merged(None))?;
    /// assert_eq!(shown.settings.first_name.as_deref(), Some("Ada"));
    /// assert_eq!(store.settings(SettingsScope::Master)?.settings.first_name.as_deref(), Some("Test"));
    /// # Ok(()) }
    /// ```
    pub fn save_active_account_settings(&mut self, change: &SettingsChange) -> Result<Did, Error> {
        let path = self.handle.path.clone();
        crate::connection::transaction::immediate(&mut *self.handle, &path, |handle| {
            let mut store = Store::over(handle);
            let active = read_active(store.conn())?.ok_or_else(|| {
                Error::new(
                    ErrorKind::NoActiveIdentity,
                    "no identity is active, so there is no active identity's row to write; nothing was changed: make one active first (set_active_did), or write the master row (save_settings) or a given identity's (save_account_settings)",
                )
            })?;
            store.save_account_settings(&active, change)?;
            Ok(active)
        })
        .map_err(|e| self.context(e))
    }
}

/// The active identity as stored, parsed.
fn read_active(conn: &mut SqliteConnection) -> Result<Option<Did>, Error> {
    parse_stored_did(
        "the active identity",
        crate::sql::queries::pointer(conn)?.flatten(),
    )
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
