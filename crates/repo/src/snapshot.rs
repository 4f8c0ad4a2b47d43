//! Every table's rows in a canonical, typed text form: what "nothing was lost" and
//! "the file is as it was" are checked against.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};

/// Columns that hold clocks (when a row was quarantined, archived, updated or decided, when a
/// migration ran) rather than user data: [`table_rows`] callers usually skip them.
pub const CLOCK_COLUMNS: &[&str] = &[
    "quarantinedAt",
    "archivedAt",
    "lastUpdated",
    "run_on",
    "decidedAt",
];

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Nullable<Text>)]
    row: Option<String>,
}

/// Every table's rows (`sqlite_sequence` included), each row a JSON array of its
/// columns' SQL literals (`quote()`, so `1`, `'1'` and `X'01'` differ), sorted, by
/// table name. Columns named in `skip` are left out.
pub fn table_rows(
    conn: &mut SqliteConnection,
    skip: &[&str],
) -> QueryResult<BTreeMap<String, Vec<String>>> {
    let tables =
        diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .load::<Name>(conn)?;
    let mut out = BTreeMap::new();
    for table in tables {
        let columns = diesel::sql_query("SELECT name FROM pragma_table_info(?) ORDER BY cid")
            .bind::<Text, _>(&table.name)
            .load::<Name>(conn)?;
        let quoted: Vec<String> = columns
            .iter()
            .filter(|c| !skip.contains(&c.name.as_str()))
            .map(|c| format!("quote(\"{}\")", c.name.replace('"', "\"\"")))
            .collect();
        let query = format!(
            "SELECT json_array({}) AS row FROM \"{}\"",
            quoted.join(", "),
            table.name.replace('"', "\"\"")
        );
        let mut rows: Vec<String> = diesel::sql_query(query)
            .load::<Row>(conn)?
            .into_iter()
            .filter_map(|r| r.row)
            .collect();
        rows.sort();
        out.insert(table.name, rows);
    }
    Ok(out)
}
