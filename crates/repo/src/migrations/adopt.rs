//! The file's schema objects as `sqlite_master` lists them, and what idstore's own
//! steps create: the names and definitions the checks, the restore and the
//! validation compare the file's with.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};

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
pub(crate) fn objects(conn: &mut SqliteConnection) -> QueryResult<BTreeMap<String, SchemaObject>> {
    Ok(diesel::sql_query(
        "SELECT type AS kind, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
    )
    .load::<SchemaObject>(conn)?
    .into_iter()
    .map(|o| (o.name.clone(), o))
    .collect())
}

/// The definition idstore's own object `name` has, as one of its steps creates it
/// (`None`: idstore makes no object of that name), as `sqlite_master` keeps it.
pub(crate) fn idstore_definition(name: &str) -> Option<&'static str> {
    super::steps::object(name).map(|o| o.sql.as_str())
}

/// Every name one of idstore's steps creates (a table, index or trigger).
pub(super) fn names_created_by_steps() -> std::collections::BTreeSet<&'static str> {
    super::steps::created()
        .values()
        .flatten()
        .map(|o| o.name.as_str())
        .collect()
}

/// The tables whose b-trees `step` writes when it creates what it creates (a table,
/// or an index on a table), each with the name of the object created.
pub(super) fn tables_created_by(step: &str) -> impl Iterator<Item = (&'static str, &'static str)> {
    super::steps::created()
        .get(step)
        .into_iter()
        .flatten()
        .filter(|o| o.kind == "table" || o.kind == "index")
        .map(|o| (o.name.as_str(), o.tbl_name.as_str()))
}

#[cfg(test)]
mod tests {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;

    /// What the steps' SQL says they create is what running them creates: the same
    /// objects, each with the definition `sqlite_master` keeps.
    #[test]
    fn the_parsed_steps_match_a_run_of_them() {
        let mut conn = diesel::SqliteConnection::establish(":memory:").unwrap();
        let mut before = super::objects(&mut conn).unwrap();
        for step in super::super::steps::all() {
            conn.batch_execute(step.up_sql())
                .unwrap_or_else(|e| panic!("{} runs on an empty database: {e}", step.version()));
            let after = super::objects(&mut conn).unwrap();
            let mut ran: Vec<(String, String, String, Option<String>)> = after
                .values()
                .filter(|o| !before.contains_key(&o.name))
                .map(|o| {
                    (
                        o.kind.clone(),
                        o.name.clone(),
                        o.tbl_name.clone(),
                        o.sql.clone(),
                    )
                })
                .collect();
            let mut said: Vec<(String, String, String, Option<String>)> =
                super::super::steps::created()[step.version()]
                    .iter()
                    .map(|o| {
                        (
                            o.kind.to_owned(),
                            o.name.clone(),
                            o.tbl_name.clone(),
                            Some(o.sql.clone()),
                        )
                    })
                    .collect();
            ran.sort();
            said.sort();
            assert_eq!(said, ran, "{}", step.version());
            before = after;
        }
    }
}
