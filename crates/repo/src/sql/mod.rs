//! All of the crate's SQL that is not a migration, and the rule for which style of
//! query goes where.
//!
//! | what | style | where |
//! |---|---|---|
//! | The store's reads and writes on a file at a version it serves | Diesel's query builder over the generated `table!` definitions (`idstore_schema`), so that the compiler checks every table, column and type against the schema | `store/`, `quarantine/` |
//! | Statements that must work on a file at any version (the migration runner's, the checks', the repairs', and the few the store shares with them) | plain SQL text, written here as a literal, every value bound (`?`), never formatted in; the hot ones through [`Fixed`], which Diesel keeps prepared (`prepared.rs`) | [`queries`], and this module for the catalogue |
//! | The catalogue: `sqlite_master`, `pragma_*` table-valued functions, counts, integrity checks | plain SQL, values bound | this module |
//! | A migration's own SQL | the `up.sql`/`down.sql` pairs, embedded at compile time, and the SQL the runner issues itself pinned to the version it runs on | `migrations/` (`runner_sql.rs`) |
//! | SQL text read from a file (a stored definition, rows an older idstore kept as `INSERT` text) | never run: read as data by a tokenizer after SQLite's own (`tokens.rs`) | [`from_file`] |
//! | idstore's own scripts, read for their statements and what they create | the same tokenizer | [`script`] |
//!
//! The readers of SQL text (`tokens.rs`, [`from_file`], [`script`]) use nothing but
//! each other and `std`, so the fuzz target compiles them alone (`fuzz.rs`, its entry
//! point, is shared with the property tests).
//!
//! Text a file stores is read as bytes and decoded in the file's own encoding
//! (`decode.rs`): a value that is not UTF-8 is data to report, never a crash.
//!
//! **Rule:** three things hold everywhere:
//! - a value goes in as a bound parameter, never into the text;
//! - an identifier that is not a literal of the crate's own is quoted with
//!   [`quote_ident`] (a table name read from `sqlite_master`, say), and one that
//!   is idstore's own is a `const`;
//! - a `PRAGMA` whose value is formatted in takes it from a typed value (an enum's
//!   fixed text, an integer), never from text.
//!
//! `tests/suite/architecture.rs` checks the first two where it can: no SQL is built
//! with `format!` outside the places listed there.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

mod decode;
pub(crate) mod from_file;
#[cfg(feature = "fixtures")]
pub(crate) mod fuzz;
mod prepared;
pub(crate) mod queries;
pub(crate) mod script;
mod tokens;

pub(crate) use decode::{Lossless, StoredText};
pub(crate) use prepared::{Fixed, UpdateById};

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

/// The main database's journal mode (`wal`, `delete`, …), read without changing it.
pub(crate) fn journal_mode(conn: &mut SqliteConnection) -> QueryResult<String> {
    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = Text)]
        journal_mode: String,
    }
    diesel::sql_query("PRAGMA journal_mode")
        .get_result::<Mode>(conn)
        .map(|m| m.journal_mode)
}

/// SQLite's `data_version` of the main database: it changes when another
/// connection commits a change to the file, and only then.
pub(crate) fn data_version(conn: &mut SqliteConnection) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = BigInt)]
        data_version: i64,
    }
    diesel::sql_query("PRAGMA data_version")
        .get_result::<Version>(conn)
        .map(|v| v.data_version)
}

/// Whether the connection enforces foreign keys.
pub(crate) fn foreign_keys_on(conn: &mut SqliteConnection) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Fk {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        foreign_keys: bool,
    }
    diesel::sql_query("PRAGMA foreign_keys")
        .get_result::<Fk>(conn)
        .map(|r| r.foreign_keys)
}

/// Whether a table exists in the main schema.
pub(crate) fn table_exists(conn: &mut SqliteConnection, table: &str) -> QueryResult<bool> {
    object_exists(conn, "table", table)
}

/// Whether an object of this type (`table`, `index`, `trigger`) and name exists in
/// the main schema.
pub(crate) fn object_exists(
    conn: &mut SqliteConnection,
    kind: &str,
    name: &str,
) -> QueryResult<bool> {
    diesel::sql_query("SELECT count(*) AS n FROM sqlite_master WHERE type = ? AND name = ?")
        .bind::<Text, _>(kind)
        .bind::<Text, _>(name)
        .get_result::<Count>(conn)
        .map(|c| c.n > 0)
}

/// Whether a temporary table exists (the connection's own).
pub(crate) fn temp_table_exists(conn: &mut SqliteConnection, table: &str) -> QueryResult<bool> {
    diesel::sql_query(
        "SELECT count(*) AS n FROM sqlite_temp_master WHERE type = 'table' AND name = ?",
    )
    .bind::<Text, _>(table)
    .get_result::<Count>(conn)
    .map(|c| c.n > 0)
}

/// Column names of a temporary table, in declaration order.
pub(crate) fn temp_columns(conn: &mut SqliteConnection, table: &str) -> QueryResult<Vec<String>> {
    diesel::sql_query("SELECT name FROM pragma_table_info(?, 'temp') ORDER BY cid")
        .bind::<Text, _>(table)
        .load::<Name>(conn)
        .map(|rows| rows.into_iter().map(|r| r.name).collect())
}

/// Column names of a table, in declaration order (empty when it does not exist).
pub(crate) fn columns(conn: &mut SqliteConnection, table: &str) -> QueryResult<Vec<String>> {
    diesel::sql_query("SELECT name FROM pragma_table_info(?) ORDER BY cid")
        .bind::<Text, _>(table)
        .load::<Name>(conn)
        .map(|rows| rows.into_iter().map(|r| r.name).collect())
}

#[derive(QueryableByName)]
struct CheckLine {
    #[diesel(sql_type = Text)]
    line: String,
}

fn problems(lines: Vec<CheckLine>) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| l.line)
        .filter(|l| l != "ok")
        .collect()
}

/// `PRAGMA integrity_check`: the problems found (empty when the file is sound).
pub(crate) fn integrity_problems(conn: &mut SqliteConnection) -> QueryResult<Vec<String>> {
    diesel::sql_query("SELECT integrity_check AS line FROM pragma_integrity_check")
        .load(conn)
        .map(problems)
}

/// `PRAGMA integrity_check(table)`: the same, for one table and its indexes.
pub(crate) fn table_integrity_problems(
    conn: &mut SqliteConnection,
    table: &str,
) -> QueryResult<Vec<String>> {
    diesel::sql_query("SELECT integrity_check AS line FROM pragma_integrity_check(?)")
        .bind::<Text, _>(table)
        .load(conn)
        .map(problems)
}

/// `PRAGMA quick_check`: the structure of the whole file, without comparing the
/// indexes with their tables.
pub(crate) fn quick_check_problems(conn: &mut SqliteConnection) -> QueryResult<Vec<String>> {
    diesel::sql_query("SELECT quick_check AS line FROM pragma_quick_check")
        .load(conn)
        .map(problems)
}

/// `PRAGMA quick_check(table)`: the structure of one table and its indexes, without
/// comparing the indexes with the table.
pub(crate) fn table_quick_check_problems(
    conn: &mut SqliteConnection,
    table: &str,
) -> QueryResult<Vec<String>> {
    diesel::sql_query("SELECT quick_check AS line FROM pragma_quick_check(?)")
        .bind::<Text, _>(table)
        .load(conn)
        .map(problems)
}

#[derive(QueryableByName)]
struct OptionalText {
    #[diesel(sql_type = Nullable<diesel::sql_types::Binary>)]
    value: Option<Lossless>,
}

/// First row's `value` column of a query, as [`Lossless`] text; NULL and "no row"
/// both read as `None`.
pub(crate) fn optional_text(
    conn: &mut SqliteConnection,
    query: &str,
) -> QueryResult<Option<String>> {
    Ok(diesel::sql_query(query)
        .get_result::<OptionalText>(conn)
        .optional()?
        .and_then(|r| r.value.map(|l| l.0)))
}

/// `name` as a quoted SQL identifier: whatever it holds, it names that one object.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Reads every row of `table` whole, from the table's own b-tree, with
/// `cell_size_check` on: SQLite checks every page it loads and every record it
/// decodes, and fails with `SQLITE_CORRUPT` on a damaged one.
pub(crate) fn read_every_row(conn: &mut SqliteConnection, table: &str) -> QueryResult<()> {
    use diesel::connection::SimpleConnection;
    let Some(last) = columns(conn, table)?.pop() else {
        return Ok(());
    };
    // `typeof` of the last column makes SQLite decode each record header whole.
    let scan = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM {} NOT INDEXED WHERE typeof({}) <> ''",
        quote_ident(table),
        quote_ident(&last)
    ));
    conn.batch_execute("PRAGMA cell_size_check = ON")?;
    let read = scan.get_result::<Count>(conn).map(drop);
    let reset = conn.batch_execute("PRAGMA cell_size_check = OFF");
    read.and(reset)
}

/// One row `PRAGMA foreign_key_check` reports: its foreign key names no parent.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub(crate) struct FkViolation {
    /// The child table.
    #[diesel(sql_type = Text)]
    pub table: String,
    /// The child row (none for a WITHOUT ROWID table).
    #[diesel(sql_type = Nullable<BigInt>)]
    pub rowid: Option<i64>,
    /// The parent table it names.
    #[diesel(sql_type = Text)]
    pub parent: String,
}

impl std::fmt::Display for FkViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rowid {
            Some(id) => write!(
                f,
                "{} row {id} references a missing {} row",
                self.table, self.parent
            ),
            None => write!(f, "{} references a missing {} row", self.table, self.parent),
        }
    }
}

/// `PRAGMA foreign_key_check`: every row whose foreign key names no parent.
pub(crate) fn foreign_key_violations(conn: &mut SqliteConnection) -> QueryResult<Vec<FkViolation>> {
    diesel::sql_query("PRAGMA foreign_key_check").load::<FkViolation>(conn)
}

/// `PRAGMA foreign_key_check` of the rows a run that wrote `tables` can have
/// affected: those of each of `tables`, and those of every table whose foreign key
/// names one of them as its parent. Rows of other tables are not the run's.
pub(crate) fn foreign_key_violations_of<'a>(
    conn: &mut SqliteConnection,
    tables: impl IntoIterator<Item = &'a str>,
) -> QueryResult<Vec<FkViolation>> {
    #[derive(QueryableByName)]
    struct Child {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let mut checked: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for table in tables {
        checked.insert(table.to_owned());
        let children = diesel::sql_query(
            "SELECT DISTINCT m.name AS name FROM sqlite_master AS m, pragma_foreign_key_list(m.name) AS f
              WHERE m.type = 'table' AND f.\"table\" = ?",
        )
        .bind::<Text, _>(table)
        .load::<Child>(conn)?;
        checked.extend(children.into_iter().map(|c| c.name));
    }
    let mut found = Vec::new();
    for table in checked {
        if table_exists(conn, &table)? {
            found.extend(
                diesel::sql_query("SELECT * FROM pragma_foreign_key_check(?)")
                    .bind::<Text, _>(&table)
                    .load::<FkViolation>(conn)?,
            );
        }
    }
    Ok(found)
}

/// `count(*)` of a table known to exist.
pub(crate) fn count_rows(conn: &mut SqliteConnection, table: &'static str) -> QueryResult<i64> {
    count_rows_of(conn, table)
}

/// Rows in a table named at run time (quoted as an identifier).
pub(crate) fn count_rows_of(conn: &mut SqliteConnection, table: &str) -> QueryResult<i64> {
    diesel::sql_query(format!("SELECT count(*) AS n FROM {}", quote_ident(table)))
        .get_result::<Count>(conn)
        .map(|c| c.n)
}

/// One `sqlite_master` entry.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub(crate) struct SchemaObject {
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub tbl_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub sql: Option<String>,
}

/// Every object of the main schema by name (SQLite's own autoindexes left out).
pub(crate) fn schema_objects(
    conn: &mut SqliteConnection,
) -> QueryResult<std::collections::BTreeMap<String, SchemaObject>> {
    Ok(diesel::sql_query(
        "SELECT type AS kind, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
    )
    .load::<SchemaObject>(conn)?
    .into_iter()
    .map(|o| (o.name.clone(), o))
    .collect())
}

/// Columns that hold clocks (when a row was quarantined, archived, updated or
/// decided, when a migration ran) rather than user data.
#[cfg(feature = "fixtures")]
pub(crate) const CLOCK_COLUMNS: &[&str] = &[
    "quarantinedAt",
    "archivedAt",
    "lastUpdated",
    "run_on",
    "decidedAt",
    "applied_at",
];

/// Each table's columns, and its rows as [`table_rows`] reads them, by table name.
#[cfg(feature = "fixtures")]
pub(crate) type TableRows = std::collections::BTreeMap<String, (Vec<String>, Vec<String>)>;

/// Every table's columns and rows, each row a JSON array of its columns' SQL
/// literals (`quote()`, so `1`, `'1'` and `X'01'` differ), sorted, by table name;
/// the columns named in `skip` left out. (Names read from the file are quoted as
/// identifiers: data, never SQL.)
#[cfg(feature = "fixtures")]
pub(crate) fn table_rows(conn: &mut SqliteConnection, skip: &[&str]) -> QueryResult<TableRows> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Nullable<Text>)]
        row: Option<String>,
    }
    let tables =
        diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .load::<Name>(conn)?;
    let mut out = std::collections::BTreeMap::new();
    for table in tables {
        let columns: Vec<String> = columns(conn, &table.name)?
            .into_iter()
            .filter(|c| !skip.contains(&c.as_str()))
            .collect();
        let mut rows: Vec<String> = if columns.is_empty() {
            Vec::new()
        } else {
            let quoted: Vec<String> = columns
                .iter()
                .map(|c| format!("quote({})", quote_ident(c)))
                .collect();
            let query = format!(
                "SELECT json_array({}) AS row FROM {}",
                quoted.join(", "),
                quote_ident(&table.name)
            );
            diesel::sql_query(query)
                .load::<Row>(conn)?
                .into_iter()
                .filter_map(|r| r.row)
                .collect()
        };
        rows.sort();
        out.insert(table.name, (columns, rows));
    }
    Ok(out)
}
