//! Every table of a file summed up in flat memory, for the rehearsal's two
//! comparisons: the round trip (every row the file had is back, in the columns it
//! had) and the other engine (its file equals idstore's). A table's rows are read
//! one at a time, each as the JSON array of its columns' SQL literals (`quote()`,
//! so `1`, `'1'` and `X'01'` differ), and added into a 128-bit sum of keyed hashes:
//! equal sums mean equal rows, in any order, duplicates counted.

use std::collections::BTreeMap;
use std::hash::BuildHasher;

use idstore_repo::diesel::connection::DefaultLoadingMode;
use idstore_repo::diesel::prelude::*;
use idstore_repo::diesel::sql_types::{Binary, Integer, Nullable, Text};
use idstore_repo::diesel::{self, QueryableByName};

/// Columns that hold clocks (when a row was quarantined, archived, updated or
/// decided, when a migration ran) rather than user data: another engine's run
/// writes other times there. (A test holds this list to the library's own.)
pub const CLOCK_COLUMNS: &[&str] = &[
    "quarantinedAt",
    "archivedAt",
    "lastUpdated",
    "run_on",
    "decidedAt",
    "applied_at",
];

/// The clocks of the migration bookkeeping, which a round trip writes again.
pub const BOOKKEEPING_CLOCKS: &[&str] = &["run_on", "applied_at"];

/// The name under which the schema's own rows (`sqlite_master`) are summed.
const SCHEMA: &str = "(schema)";

/// One table summed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Its columns, in order, those left out excluded.
    pub columns: Vec<String>,
    rows: u64,
    sum: u128,
}

/// Every table of a file, by name.
pub type Contents = BTreeMap<String, Table>;

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Nullable<Binary>)]
    row: Option<Vec<u8>>,
}

#[derive(QueryableByName)]
struct UserVersion {
    #[diesel(sql_type = Integer)]
    user_version: i32,
}

/// A 128-bit hash of `row`, keyed once per process (two keyed SipHashes).
pub fn hash(row: &[u8]) -> u128 {
    static KEYS: std::sync::OnceLock<(std::hash::RandomState, std::hash::RandomState)> =
        std::sync::OnceLock::new();
    let (a, b) = KEYS.get_or_init(Default::default);
    (u128::from(a.hash_one(row)) << 64) | u128::from(b.hash_one(row))
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    name: String,
}

/// Every table of the file with its columns in order, read in one query.
pub fn tables(conn: &mut SqliteConnection) -> QueryResult<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let columns = diesel::sql_query(
        "SELECT m.name AS table_name, p.name AS name FROM sqlite_master AS m, pragma_table_info(m.name) AS p WHERE m.type = 'table' ORDER BY m.name, p.cid",
    )
    .load_iter::<Column, DefaultLoadingMode>(conn)?;
    for c in columns {
        let c = c?;
        out.entry(c.table_name).or_default().push(c.name);
    }
    Ok(out)
}

/// `PRAGMA user_version`.
pub fn user_version(conn: &mut SqliteConnection) -> QueryResult<i32> {
    Ok(diesel::sql_query("PRAGMA user_version")
        .get_result::<UserVersion>(conn)?
        .user_version)
}

/// The rows of `table` in `columns`, summed; rows for which `leave_out` says so are
/// not counted.
pub fn sum_rows(
    conn: &mut SqliteConnection,
    table: &str,
    columns: &[String],
    mut leave_out: impl FnMut(&[u8]) -> bool,
) -> QueryResult<Table> {
    let mut t = Table {
        columns: columns.to_vec(),
        rows: 0,
        sum: 0,
    };
    if columns.is_empty() {
        return Ok(t);
    }
    for_each_row(conn, table, columns, |row| {
        if !leave_out(row) {
            t.rows += 1;
            t.sum = t.sum.wrapping_add(hash(row));
        }
    })?;
    Ok(t)
}

/// Calls `each` with every row of `table`, read in `columns`.
pub fn for_each_row(
    conn: &mut SqliteConnection,
    table: &str,
    columns: &[String],
    mut each: impl FnMut(&[u8]),
) -> QueryResult<()> {
    let quoted: Vec<String> = columns
        .iter()
        .map(|c| format!("quote({})", quote_ident(c)))
        .collect();
    let query = format!(
        "SELECT json_array({}) AS row FROM {}",
        quoted.join(", "),
        quote_ident(table)
    );
    for row in diesel::sql_query(query).load_iter::<Row, DefaultLoadingMode>(conn)? {
        each(&row?.row.unwrap_or_default());
    }
    Ok(())
}

/// Every table of the file with the columns named in `skip` left out, the rows
/// for which `leave_out(table, row)` says so not counted, and, with `schema`, the
/// schema's own rows.
pub fn read_leaving_out(
    conn: &mut SqliteConnection,
    skip: &[&str],
    schema: bool,
    mut leave_out: impl FnMut(&str, &[u8]) -> bool,
) -> QueryResult<Contents> {
    let mut out = Contents::new();
    for (table, columns) in tables(conn)? {
        let kept: Vec<String> = columns
            .into_iter()
            .filter(|c| !skip.contains(&c.as_str()))
            .collect();
        let t = sum_rows(conn, &table, &kept, |row| leave_out(&table, row))?;
        out.insert(table, t);
    }
    if schema {
        let columns = ["type", "name", "tbl_name", "sql"].map(String::from);
        out.insert(
            SCHEMA.to_owned(),
            sum_rows(conn, "sqlite_master", &columns, |_| false)?,
        );
    }
    Ok(out)
}

/// The tables in which `ours` and `theirs` differ (a table one of them lacks, other
/// columns, other rows), by name.
pub fn differences(ours: &Contents, theirs: &Contents) -> Vec<String> {
    let mut names: Vec<&String> = ours.keys().chain(theirs.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| ours.get(*n) != theirs.get(*n))
        .map(|n| match (ours.get(n), theirs.get(n)) {
            (Some(_), None) => format!("{n} (missing from the engine's file)"),
            (None, Some(_)) => format!("{n} (only in the engine's file)"),
            (Some(a), Some(b)) if a.columns != b.columns => format!("{n} (other columns)"),
            (Some(a), Some(b)) => format!("{n} ({} rows against {})", a.rows, b.rows),
            (None, None) => n.clone(),
        })
        .collect()
}

/// `name` as an SQL identifier, quoted (names from a file are data, never SQL).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[&[u8]]) -> Table {
        let mut t = Table {
            columns: vec!["a".into()],
            rows: 0,
            sum: 0,
        };
        for r in rows {
            t.rows += 1;
            t.sum = t.sum.wrapping_add(hash(r));
        }
        t
    }

    #[test]
    fn the_clock_columns_are_the_librarys() {
        assert_eq!(CLOCK_COLUMNS, idstore_repo::fixtures::CLOCK_COLUMNS);
        assert!(BOOKKEEPING_CLOCKS.iter().all(|c| CLOCK_COLUMNS.contains(c)));
    }

    #[test]
    fn sums_tell_rows_apart_whatever_their_order() {
        assert_eq!(table(&[b"[1]", b"[2]"]), table(&[b"[2]", b"[1]"]));
        assert_ne!(table(&[b"[1]", b"[2]"]), table(&[b"[1]", b"[3]"]));
        assert_ne!(table(&[b"[1]", b"[1]"]), table(&[b"[1]"]));
        assert_ne!(table(&[b"['1']"]), table(&[b"[1]"]));
    }
}
