//! Values a file holds that cannot be read as what they should be: text that is not
//! UTF-8, a `searchBoxes` that is not the app's JSON. `check` reports each one as a
//! problem of its row and column; a read that meets one names the row and column
//! instead of failing with a bare deserialization error.

use diesel::connection::DefaultLoadingMode;
use diesel::deserialize::{self, QueryableByName};
use diesel::prelude::*;
use diesel::row::{NamedRow, Row};
use diesel::sql_types::{BigInt, Binary, Nullable};
use diesel::sqlite::Sqlite;

use crate::error::{Error, ErrorKind};

/// One value that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Undecodable {
    pub table: &'static str,
    pub rowid: i64,
    pub column: String,
    pub why: String,
}

impl Undecodable {
    /// Where it is, as a person reads it.
    pub fn place(&self) -> String {
        format!("{} row {}, column {}", self.table, self.rowid, self.column)
    }
}

/// The tables whose text idstore reads, in the order it checks them.
pub(crate) const READ_TABLES: [&str; 7] = [
    "accounts",
    "settings",
    "active_identity",
    "accounts_quarantine",
    "active_did_quarantine",
    "quarantine_decisions",
    "settings_active_did_archive",
];

/// One row of any table: its rowid, then every column's bytes as SQLite stores
/// them (text as is, numbers as their text), read without a copy made in SQL.
struct AnyRow {
    rowid: i64,
    values: Vec<Option<crate::sql::StoredText>>,
}

impl QueryableByName<Sqlite> for AnyRow {
    fn build<'a>(row: &impl NamedRow<'a, Sqlite>) -> deserialize::Result<Self> {
        let rowid = Row::get_value::<BigInt, i64, usize>(row, 0)?;
        let values = (1..Row::field_count(row))
            .map(|i| {
                Row::get_value::<Nullable<Binary>, Option<crate::sql::StoredText>, usize>(row, i)
            })
            .collect::<deserialize::Result<_>>()?;
        Ok(AnyRow { rowid, values })
    }
}

/// Hands every undecodable value of `table` to `visit`, a row at a time (one scan,
/// memory flat, a large value held once): text that is not UTF-8 in any column,
/// and in `settings` a `searchBoxes` that does not parse.
pub(crate) fn scan(
    conn: &mut SqliteConnection,
    table: &'static str,
    visit: &mut dyn FnMut(Undecodable),
) -> QueryResult<()> {
    let columns = crate::sql::columns(conn, table)?;
    if columns.is_empty() {
        return Ok(());
    }
    let selected: Vec<String> = columns.iter().map(|c| crate::sql::quote_ident(c)).collect();
    let query = diesel::sql_query(format!(
        "SELECT rowid, {} FROM {}",
        selected.join(", "),
        crate::sql::quote_ident(table)
    ));
    let search_boxes = columns.iter().position(|c| c == "searchBoxes");
    for row in query.load_iter::<AnyRow, DefaultLoadingMode>(conn)? {
        let row = row?;
        for (i, (column, value)) in columns.iter().zip(&row.values).enumerate() {
            let Some(value) = value else { continue };
            let why = match value {
                crate::sql::StoredText::Text(text)
                    if Some(i) == search_boxes && table == "settings" && !text.is_empty() =>
                {
                    idstore_domain::settings::parse_search_boxes(text)
                        .err()
                        .map(|e| e.to_string())
                }
                other => other.why_undecodable(),
            };
            if let Some(why) = why {
                visit(Undecodable {
                    table,
                    rowid: row.rowid,
                    column: column.clone(),
                    why,
                });
            }
        }
    }
    Ok(())
}

/// A read that failed on a value it could not decode, explained: the first such
/// value of `tables` in the column the failure names (else the first of any
/// column) is named, row and column. Any other error is given back.
pub(crate) fn explain(conn: &mut SqliteConnection, e: Error, tables: &[&'static str]) -> Error {
    let field = match e.raw_sqlite() {
        Some(diesel::result::Error::DeserializationError(inner))
            if e.kind() == ErrorKind::InvalidStoredValue =>
        {
            inner
                .downcast_ref::<diesel::result::DeserializeFieldError>()
                .and_then(|f| f.field_name.clone())
        }
        _ => return e,
    };
    let mut first = None;
    let mut in_field = None;
    for table in tables {
        let mut visit = |u: Undecodable| {
            if in_field.is_none() && field.as_deref() == Some(u.column.as_str()) {
                in_field = Some(u);
            } else if first.is_none() {
                first = Some(u);
            }
        };
        if scan(conn, table, &mut visit).is_err() || in_field.is_some() {
            break;
        }
    }
    match in_field.or(first) {
        Some(u) => Error::stored_value(u.place(), u.why),
        None => e,
    }
}
