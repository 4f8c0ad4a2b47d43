//! Objects the file already has under names idstore's steps create: an equivalent
//! one (same table, same columns, same uniqueness) is adopted, any other refused,
//! named. What is kept of them for a rollback is in [`super::restore`].

use std::collections::BTreeMap;
use std::sync::OnceLock;

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::Sqlite;

use crate::error::{Error, ErrorKind};

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

/// What an object is, for the equivalence test: a table's column names, an index's
/// table, columns, uniqueness and partiality, a trigger's text (spaces folded).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Table(Vec<String>),
    Index {
        table: String,
        columns: Vec<String>,
        unique: bool,
        partial: bool,
    },
    Trigger(String),
    Other,
}

fn shape(conn: &mut SqliteConnection, o: &SchemaObject) -> QueryResult<Shape> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    #[derive(QueryableByName)]
    struct IndexRow {
        #[diesel(sql_type = BigInt)]
        unique: i64,
        #[diesel(sql_type = BigInt)]
        partial: i64,
    }
    Ok(match o.kind.as_str() {
        "table" => Shape::Table(
            diesel::sql_query("SELECT name FROM pragma_table_info(?) ORDER BY cid")
                .bind::<Text, _>(&o.name)
                .load::<Name>(conn)?
                .into_iter()
                .map(|n| n.name)
                .collect(),
        ),
        "index" => {
            let row = diesel::sql_query(
                "SELECT \"unique\", partial FROM pragma_index_list(?) WHERE name = ?",
            )
            .bind::<Text, _>(&o.tbl_name)
            .bind::<Text, _>(&o.name)
            .get_result::<IndexRow>(conn)?;
            let columns = diesel::sql_query(
                "SELECT coalesce(name, '<expr>') AS name FROM pragma_index_info(?) ORDER BY seqno",
            )
            .bind::<Text, _>(&o.name)
            .load::<Name>(conn)?
            .into_iter()
            .map(|n| n.name)
            .collect();
            Shape::Index {
                table: o.tbl_name.clone(),
                columns,
                unique: row.unique != 0,
                partial: row.partial != 0,
            }
        }
        "trigger" => Shape::Trigger(
            o.sql
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => Shape::Other,
    })
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

/// What each migration creates, with its shape: found once by running the embedded
/// migrations on an in-memory database.
#[allow(clippy::type_complexity)]
fn created_by_step() -> &'static BTreeMap<String, Vec<(SchemaObject, Shape)>> {
    static CREATED: OnceLock<BTreeMap<String, Vec<(SchemaObject, Shape)>>> = OnceLock::new();
    CREATED.get_or_init(|| {
        let mut conn = SqliteConnection::establish(":memory:").expect("an in-memory database");
        let mut all = MigrationSource::<Sqlite>::migrations(&super::MIGRATIONS)
            .expect("embedded migrations are readable");
        all.sort_by_key(|m| m.name().version().to_string());
        let mut created = BTreeMap::new();
        let mut before = objects(&mut conn).expect("an empty schema");
        for m in all {
            m.run(&mut conn)
                .expect("the embedded migrations run on an empty database");
            let after = objects(&mut conn).expect("the schema");
            let new: Vec<(SchemaObject, Shape)> = after
                .values()
                .filter(|o| !before.contains_key(&o.name))
                .map(|o| {
                    let s = shape(&mut conn, o).expect("the shape of idstore's own object");
                    (o.clone(), s)
                })
                .collect();
            created.insert(m.name().version().to_string(), new);
            before = after;
        }
        created
    })
}

/// The definition idstore's own object `name` has, as one of its steps creates it
/// (`None`: idstore makes no object of that name), as `sqlite_master` keeps it.
pub(crate) fn idstore_definition(name: &str) -> Option<&'static str> {
    super::source::object(name).map(|o| o.sql.as_str())
}

/// Every name one of idstore's steps creates (a table, index or trigger).
pub(super) fn names_created_by_steps() -> std::collections::BTreeSet<&'static str> {
    super::source::created()
        .values()
        .flatten()
        .map(|o| o.name.as_str())
        .collect()
}

/// The tables whose b-trees `step` writes when it creates what it creates (a table,
/// or an index on a table), each with the name of the object created.
pub(super) fn tables_created_by(step: &str) -> impl Iterator<Item = (&'static str, &'static str)> {
    super::source::created()
        .get(step)
        .into_iter()
        .flatten()
        .filter(|o| o.kind == "table" || o.kind == "index")
        .map(|o| (o.name.as_str(), o.tbl_name.as_str()))
}

/// A file's object under a name one of idstore's steps creates, found by the
/// inspection; the plan adopts it or refuses the file.
#[derive(Debug, Clone)]
pub(crate) struct Collision {
    /// The step that creates the name.
    pub step: super::Version,
    /// The file's object.
    pub theirs: SchemaObject,
    /// Why it cannot be adopted (`None`: it is equivalent to idstore's, and empty).
    pub refusal: Option<String>,
}

impl Collision {
    /// The refusal as the error the plan returns.
    pub fn refuse(&self, why: &str) -> Error {
        let (kind, name) = (&self.theirs.kind, &self.theirs.name);
        Error::new(
            ErrorKind::NameCollision,
            format!(
                "the file already has a {kind} named {name} and {why}; idstore would create its own under that name: rename or drop the file's {kind} first (nothing was changed)"
            ),
        )
    }
}

/// Every object of the file that bears a name one of `pending` creates (the
/// baseline aside: its `IF NOT EXISTS` adopts what is there by design), with the
/// reason it cannot be adopted when it differs from idstore's or holds rows.
pub(super) fn collisions(
    conn: &mut SqliteConnection,
    present: &BTreeMap<String, SchemaObject>,
    pending: &[super::Version],
) -> QueryResult<Vec<Collision>> {
    let mut found = Vec::new();
    for step in pending.iter().filter(|s| *s != super::BASELINE_VERSION) {
        let names = super::source::created()
            .get(step.as_str())
            .into_iter()
            .flatten();
        if !names.into_iter().any(|o| present.contains_key(&o.name)) {
            // The common case: no name to compare, and no need to learn the shape
            // of idstore's objects (which runs the steps in memory).
            continue;
        }
        for (ours, our_shape) in created_by_step().get(step.as_str()).into_iter().flatten() {
            let Some(theirs) = present.get(&ours.name) else {
                continue;
            };
            let refusal = if theirs.kind != ours.kind {
                Some(format!(
                    "the file has a {} of that name where idstore creates a {}",
                    theirs.kind, ours.kind
                ))
            } else {
                let their_shape = shape(conn, theirs)?;
                if their_shape != *our_shape {
                    Some(format!(
                        "it differs from idstore's ({})",
                        describe(&their_shape, our_shape)
                    ))
                } else if ours.kind == "table" && crate::sql::count_rows_of(conn, &theirs.name)? > 0
                {
                    Some("it holds rows idstore would not know what to do with".to_owned())
                } else {
                    None
                }
            };
            found.push(Collision {
                step: step.clone(),
                theirs: theirs.clone(),
                refusal,
            });
        }
    }
    Ok(found)
}

fn describe(theirs: &Shape, ours: &Shape) -> String {
    match (theirs, ours) {
        (
            Shape::Index {
                table: t1,
                columns: c1,
                unique: u1,
                partial: p1,
            },
            Shape::Index {
                table: t2,
                columns: c2,
                unique: u2,
                partial: p2,
            },
        ) => format!(
            "{}{}index on {t1}({}) where idstore's is a {}{}index on {t2}({})",
            if *u1 { "UNIQUE " } else { "" },
            if *p1 { "partial " } else { "" },
            c1.join(", "),
            if *u2 { "UNIQUE " } else { "" },
            if *p2 { "partial " } else { "" },
            c2.join(", ")
        ),
        (Shape::Table(c1), Shape::Table(c2)) => format!(
            "columns {} where idstore's has {}",
            c1.join(", "),
            c2.join(", ")
        ),
        _ => "another definition".to_owned(),
    }
}

/// Drops the adopted objects so the migration can create its own in their place.
pub(crate) fn set_aside(conn: &mut SqliteConnection, adopted: &[SchemaObject]) -> QueryResult<()> {
    for o in adopted {
        // The keyword is one of the crate's own, never the text the file gave.
        let kind = match o.kind.as_str() {
            "table" => "TABLE",
            "index" => "INDEX",
            "trigger" => "TRIGGER",
            "view" => "VIEW",
            _ => {
                return Err(diesel::result::Error::QueryBuilderError(
                    format!("{:?} is not a kind of schema object", o.kind).into(),
                ));
            }
        };
        conn.batch_execute(&format!(
            "DROP {kind} {};",
            crate::sql::quote_ident(&o.name)
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// What the steps' SQL says they create is what running them creates: the same
    /// objects, each with the definition `sqlite_master` keeps.
    #[test]
    fn the_parsed_steps_match_a_run_of_them() {
        for (version, run) in super::created_by_step() {
            let parsed = &super::super::source::created()[version.as_str()];
            let ran: Vec<(&str, &str, &str, Option<&str>)> = run
                .iter()
                .map(|(o, _)| {
                    (
                        o.kind.as_str(),
                        o.name.as_str(),
                        o.tbl_name.as_str(),
                        o.sql.as_deref(),
                    )
                })
                .collect();
            let mut said: Vec<(&str, &str, &str, Option<&str>)> = parsed
                .iter()
                .map(|o| {
                    (
                        o.kind,
                        o.name.as_str(),
                        o.tbl_name.as_str(),
                        Some(o.sql.as_str()),
                    )
                })
                .collect();
            let mut ran = ran;
            ran.sort();
            said.sort();
            assert_eq!(said, ran, "{version}");
        }
    }
}
