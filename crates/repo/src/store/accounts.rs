//! Accounts: add, list, look up, and delete without leaving the pointer dangling.

use diesel::connection::DefaultLoadingMode;
use diesel::prelude::*;
use idstore_domain::{Account, AccountInfo, Did, NewAccount, Secret};
use idstore_schema::{accounts, active_identity, settings};
use serde::Serialize;

use super::Store;
use crate::error::{Error, ErrorKind};
use crate::sql::StoredText;
use crate::sql::queries::{account_exists, parse_stored_did, unknown_account, write_pointer};

/// An account's row without its secrets, its text read as bytes: a value that is
/// not UTF-8 is an error naming its row and column, never a bare decoding failure.
#[derive(QueryableByName)]
struct InfoRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    id: i32,
    #[diesel(sql_type = diesel::sql_types::Binary)]
    date_created: StoredText,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Binary>)]
    derivation_path: Option<StoredText>,
    #[diesel(sql_type = diesel::sql_types::Binary)]
    did: StoredText,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Binary>)]
    passkey_cred_id_hex: Option<StoredText>,
    #[diesel(sql_type = diesel::sql_types::Binary)]
    public_key_hex: StoredText,
}

/// The columns of [`InfoRow`], by name, from `accounts`.
const INFO_COLUMNS: &str = "id, dateCreated AS date_created,
    derivationPath AS derivation_path, did,
    passkeyCredIdHex AS passkey_cred_id_hex,
    publicKeyHex AS public_key_hex";

impl InfoRow {
    fn into_info(self) -> Result<AccountInfo, Error> {
        let id = self.id;
        let text = |column: &str, stored: StoredText| -> Result<String, Error> {
            match stored.why_undecodable() {
                Some(why) => Err(Error::stored_value(
                    format_args!("accounts row {id}, column {column}"),
                    why,
                )),
                None => Ok(stored.lossless()),
            }
        };
        Ok(AccountInfo {
            id,
            date_created: text("dateCreated", self.date_created)?,
            derivation_path: self
                .derivation_path
                .map(|v| text("derivationPath", v))
                .transpose()?,
            did: {
                let did = text("did", self.did)?;
                Did::try_from(did.clone()).map_err(|e| {
                    Error::stored_value(
                        format_args!(
                            "accounts row {id}, column did ({})",
                            idstore_domain::display::Shown::quoted(&did)
                        ),
                        e,
                    )
                })?
            },
            passkey_cred_id_hex: self
                .passkey_cred_id_hex
                .map(|v| text("passkeyCredIdHex", v))
                .transpose()?,
            public_key_hex: text("publicKeyHex", self.public_key_hex)?,
        })
    }
}

/// What [`Store::delete_account`](crate::Store::delete_account) does when the
/// account is the file's last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenLast {
    /// Refuse, with [`ErrorKind::LastAccount`];
    /// nothing changes.
    #[default]
    Refuse,
    /// Delete it, leaving no account and no active identity.
    Delete,
}

/// What [`Store::delete_account`] did (in JSON, by the app's names:
/// `removed`, `activeDid`, `wasActive`, `settingsRowsRemoved`).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountRemoval {
    /// The deleted identity.
    pub removed: Did,
    /// The active identity afterwards.
    pub active_did: Option<Did>,
    /// Whether the deleted identity was the active one (the pointer moved).
    pub was_active: bool,
    /// How many override settings rows of the identity were deleted with it.
    pub settings_rows_removed: usize,
}

impl Store<'_> {
    /// Adds an identity. Its DID must be new; a public key (hex) and an RFC 3339
    /// `dateCreated` are required.
    pub fn add_account(&mut self, new: &NewAccount) -> Result<AccountInfo, Error> {
        new.validate()?;
        self.write(|conn| {
            if account_exists(conn, new.did.as_str())? {
                return Err(Error::new(
                    ErrorKind::AccountExists,
                    format!(
                        "an account with DID {} already exists; nothing was changed (delete it first to replace it)",
                        new.did
                    ),
                ));
            }
            let id = diesel::insert_into(accounts::table)
                .values((
                    accounts::dateCreated.eq(&new.date_created),
                    accounts::derivationPath.eq(&new.derivation_path),
                    accounts::did.eq(new.did.as_str()),
                    accounts::identityEncrBase64
                        .eq(new.identity_encr_base64.as_ref().map(Secret::expose)),
                    accounts::mnemonicEncrBase64
                        .eq(new.mnemonic_encr_base64.as_ref().map(Secret::expose)),
                    accounts::passkeyCredIdHex.eq(&new.passkey_cred_id_hex),
                    accounts::publicKeyHex.eq(&new.public_key_hex),
                ))
                .returning(accounts::id)
                .get_result::<i32>(conn)?;
            Ok(AccountInfo {
                id,
                date_created: new.date_created.clone(),
                derivation_path: new.derivation_path.clone(),
                did: new.did.clone(),
                passkey_cred_id_hex: new.passkey_cred_id_hex.clone(),
                public_key_hex: new.public_key_hex.clone(),
            })
        })
    }

    /// Every identity, oldest first (by `dateCreated`, then DID), without secret
    /// material, read one row at a time: memory stays flat however many there are.
    /// A row that cannot be read is an error naming it.
    ///
    /// ```
    /// # fn main() -> Result<(), idstore_repo::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let mut db = idstore_repo::Database::open(&dir.path().join("a.sqlite"))?;
    /// # db.migrate(&Default::default())?;
    /// let mut store = db.store()?;
    /// let dids: Vec<_> = store.accounts()?.map(|a| a.map(|a| a.did)).collect::<Result<_, _>>()?;
    /// assert!(dids.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn accounts(
        &mut self,
    ) -> Result<impl Iterator<Item = Result<AccountInfo, Error>> + '_, Error> {
        let (conn, context) = self.split();
        let rows = diesel::sql_query(format!(
            "SELECT {INFO_COLUMNS} FROM accounts ORDER BY dateCreated, did"
        ))
        .load_iter::<InfoRow, DefaultLoadingMode>(conn);
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => return Err(context.explain(e.into())),
        };
        // Each row's error as any other call's: a lock names its holders and wait.
        Ok(rows.map(move |row| {
            row.map_err(Error::from)
                .and_then(InfoRow::into_info)
                .map_err(|e| context.explain(e))
        }))
    }

    /// One identity, without secret material.
    pub fn account(&mut self, did: &Did) -> Result<AccountInfo, Error> {
        self.read(|conn| {
            diesel::sql_query(format!("SELECT {INFO_COLUMNS} FROM accounts WHERE did = ?"))
                .bind::<diesel::sql_types::Text, _>(did.as_str())
                .get_result::<InfoRow>(conn)
                .optional()?
                .ok_or_else(|| unknown_account(did))?
                .into_info()
        })
    }

    /// One identity with its encrypted key material (a separate call on purpose).
    pub fn account_with_secrets(&mut self, did: &Did) -> Result<Account, Error> {
        type Row = (
            i32,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
        );
        let row: Option<Row> = match accounts::table
            .filter(accounts::did.eq(did.as_str()))
            .select((
                accounts::id,
                accounts::dateCreated,
                accounts::derivationPath,
                accounts::identityEncrBase64,
                accounts::mnemonicEncrBase64,
                accounts::passkeyCredIdHex,
                accounts::publicKeyHex,
            ))
            .get_result(self.conn())
            .optional()
        {
            Ok(row) => row,
            Err(e) => return Err(self.explain(e.into())),
        };
        let row = row.ok_or_else(|| self.context(unknown_account(did)))?;
        let (id, date_created, derivation_path, identity, mnemonic, passkey, public_key_hex) = row;
        Ok(Account {
            id,
            date_created,
            derivation_path,
            did: did.clone(),
            identity_encr_base64: identity.map(Secret::new),
            mnemonic_encr_base64: mnemonic.map(Secret::new),
            passkey_cred_id_hex: passkey,
            public_key_hex,
        })
    }

    /// Deletes an identity and its override settings rows. When it is the active one,
    /// the pointer moves, in the same transaction, to the next identity by
    /// (`dateCreated`, DID) after it, or to the first when it was the last. Deleting
    /// the last identity is refused ([`ErrorKind::LastAccount`](crate::ErrorKind))
    /// unless `last` is [`WhenLast::Delete`], which leaves no active identity.
    pub fn delete_account(&mut self, did: &Did, last: WhenLast) -> Result<AccountRemoval, Error> {
        self.write(|conn| {
            let created: String = accounts::table
                .filter(accounts::did.eq(did.as_str()))
                .select(accounts::dateCreated)
                .get_result(conn)
                .optional()?
                .ok_or_else(|| unknown_account(did))?;
            // The next identity by (dateCreated, did) after this one, wrapping round.
            let after: Option<String> = accounts::table
                .filter(
                    accounts::dateCreated.gt(&created).or(accounts::dateCreated
                        .eq(&created)
                        .and(accounts::did.gt(did.as_str()))),
                )
                .order((accounts::dateCreated, accounts::did))
                .select(accounts::did)
                .load_iter::<_, DefaultLoadingMode>(conn)?
                .next()
                .transpose()?;
            let others = match after {
                Some(next) => Some(next),
                None => accounts::table
                    .filter(accounts::did.ne(did.as_str()))
                    .order((accounts::dateCreated, accounts::did))
                    .select(accounts::did)
                    .load_iter::<_, DefaultLoadingMode>(conn)?
                    .next()
                    .transpose()?,
            };
            if others.is_none() && last == WhenLast::Refuse {
                return Err(Error::new(
                    ErrorKind::LastAccount,
                    format!(
                        "{did} is the last account; deleting it leaves no identity, so it must be allowed explicitly (WhenLast::Delete); nothing was changed"
                    ),
                ));
            }
            let active: Option<String> = active_identity::table
                .find(1)
                .select(active_identity::activeDid)
                .get_result::<Option<String>>(conn)
                .optional()?
                .flatten();
            let was_active = active.as_deref() == Some(did.as_str());
            let active_did = if was_active {
                let next = parse_stored_did("the account DID", others)?;
                write_pointer(conn, next.as_ref())?;
                next
            } else {
                parse_stored_did("the active identity", active)?
            };
            let settings_rows_removed = diesel::delete(
                settings::table.filter(
                    settings::accountDid
                        .eq(did.as_str())
                        .and(settings::id.ne(1)),
                ),
            )
            .execute(conn)?;
            diesel::delete(accounts::table.filter(accounts::did.eq(did.as_str()))).execute(conn)?;
            Ok(AccountRemoval {
                removed: did.clone(),
                active_did,
                was_active,
                settings_rows_removed,
            })
        })
    }
}
