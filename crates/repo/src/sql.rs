//! Small catalogue and health queries shared by the migration runner and the repository.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Whether a table exists in the main schema.
pub(crate) fn table_exists(conn: &mut SqliteConnection, table: &str) -> QueryResult<bool> {
    diesel::sql_query("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?")
        .bind::<Text, _>(table)
        .get_result::<Count>(conn)
        .map(|c| c.n > 0)
}

/// Column names of a table, in declaration order (empty when it does not exist).
pub(crate) fn columns(conn: &mut SqliteConnection, table: &str) -> QueryResult<Vec<String>> {
    diesel::sql_query("SELECT name FROM pragma_table_info(?) ORDER BY cid")
        .bind::<Text, _>(table)
        .load::<Name>(conn)
        .map(|rows| rows.into_iter().map(|r| r.name).collect())
}

/// `PRAGMA integrity_check`: the problems found (empty when the file is sound).
pub(crate) fn integrity_problems(conn: &mut SqliteConnection) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = Text)]
        integrity_check: String,
    }
    let lines = diesel::sql_query("PRAGMA integrity_check").load::<Line>(conn)?;
    Ok(lines
        .into_iter()
        .map(|l| l.integrity_check)
        .filter(|l| l != "ok")
        .collect())
}

/// `PRAGMA foreign_key_check`: one line per row whose foreign key names no parent.
pub(crate) fn foreign_key_violations(conn: &mut SqliteConnection) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Violation {
        #[diesel(sql_type = Text)]
        table: String,
        #[diesel(sql_type = Nullable<BigInt>)]
        rowid: Option<i64>,
        #[diesel(sql_type = Text)]
        parent: String,
    }
    let rows = diesel::sql_query("PRAGMA foreign_key_check").load::<Violation>(conn)?;
    Ok(rows
        .into_iter()
        .map(|v| match v.rowid {
            Some(id) => format!("{} row {id} references a missing {} row", v.table, v.parent),
            None => format!("{} references a missing {} row", v.table, v.parent),
        })
        .collect())
}

/// `count(*)` of a table known to exist.
pub(crate) fn count_rows(conn: &mut SqliteConnection, table: &'static str) -> QueryResult<i64> {
    diesel::sql_query(format!("SELECT count(*) AS n FROM \"{table}\""))
        .get_result::<Count>(conn)
        .map(|c| c.n)
}
