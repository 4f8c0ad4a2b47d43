//! What adoption and rollback do to schema objects the file already had: an object
//! under a name idstore's migrations create is adopted when it is equivalent (same
//! table, same columns, same uniqueness) and refused otherwise, naming it; adopted
//! objects and tables a rollback rebuilds are recreated from the DDL the file had,
//! kept in `idstore_original_schema`, so rolling back gives the file's own schema
//! text back.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::Sqlite;

use crate::error::MigrateError;

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
        let mut all = MigrationSource::<Sqlite>::migrations(&crate::migrations::MIGRATIONS)
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

/// The file's objects that bear a name one of `steps` creates. Equivalent ones are
/// returned, to be adopted; any other is refused, named, before anything is written.
/// Objects on the app's own `active_identity` table are left to its adoption.
pub(crate) fn collisions(
    conn: &mut SqliteConnection,
    steps: &[String],
    adopting_app_table: bool,
) -> Result<Vec<SchemaObject>, MigrateError> {
    let present = objects(conn)?;
    let mut adopt = Vec::new();
    for step in steps {
        if step == crate::migrations::BASELINE_VERSION {
            continue; // IF NOT EXISTS: it adopts what is there by design
        }
        for (ours, our_shape) in created_by_step().get(step).into_iter().flatten() {
            let Some(theirs) = present.get(&ours.name) else {
                continue;
            };
            if adopting_app_table && (theirs.tbl_name == "active_identity") {
                continue;
            }
            let refuse = |why: String| MigrateError::NameCollision {
                kind: theirs.kind.clone(),
                name: theirs.name.clone(),
                why,
            };
            if theirs.kind != ours.kind {
                return Err(refuse(format!(
                    "the file has a {} of that name where idstore creates a {}",
                    theirs.kind, ours.kind
                )));
            }
            let their_shape = shape(conn, theirs)?;
            if their_shape != *our_shape {
                return Err(refuse(format!(
                    "it differs from idstore's ({})",
                    describe(&their_shape, our_shape)
                )));
            }
            if ours.kind == "table" && crate::sql::count_rows_of(conn, &theirs.name)? > 0 {
                return Err(refuse(
                    "it holds rows idstore would not know what to do with".into(),
                ));
            }
            adopt.push(theirs.clone());
        }
    }
    Ok(adopt)
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
        conn.batch_execute(&format!(
            "DROP {} \"{}\";",
            o.kind.to_uppercase(),
            o.name.replace('"', "\"\"")
        ))?;
    }
    Ok(())
}

/// An adopted object with, for a table, its rows as INSERT statements.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub object: SchemaObject,
    pub rows_sql: Option<String>,
}

/// The app's table `table` with its indexes and triggers and its rows, read before
/// it is dropped for idstore's own.
pub(crate) fn keep_table(conn: &mut SqliteConnection, table: &str) -> QueryResult<Vec<Kept>> {
    #[derive(QueryableByName)]
    struct Insert {
        #[diesel(sql_type = Nullable<Text>)]
        stmt: Option<String>,
    }
    let mut kept = Vec::new();
    let mut objs: Vec<SchemaObject> = objects(conn)?
        .into_values()
        .filter(|o| o.tbl_name == table && o.sql.is_some())
        .collect();
    objs.sort_by_key(|o| (o.kind != "table", o.name.clone()));
    let columns = crate::sql::columns(conn, table)?;
    let quoted: Vec<String> = columns
        .iter()
        .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
        .collect();
    let select = format!(
        "SELECT 'INSERT INTO \"{t}\" ({cols}) VALUES (' || {vals} || ');' AS stmt FROM \"{t}\" ORDER BY rowid",
        t = table.replace('"', "\"\""),
        cols = quoted.join(", "),
        vals = quoted
            .iter()
            .map(|c| format!("quote({c})"))
            .collect::<Vec<_>>()
            .join(" || ', ' || ")
    );
    let rows: Vec<String> = diesel::sql_query(select)
        .load::<Insert>(conn)?
        .into_iter()
        .filter_map(|i| i.stmt)
        .collect();
    for o in objs {
        let rows_sql = (o.kind == "table").then(|| rows.join("\n"));
        kept.push(Kept {
            object: o,
            rows_sql,
        });
    }
    Ok(kept)
}

/// Records adopted objects in `idstore_original_schema` (created by the step that
/// adopts them, in the same transaction).
pub(crate) fn record_adopted(conn: &mut SqliteConnection, kept: &[Kept]) -> QueryResult<()> {
    for k in kept {
        diesel::sql_query(
            "INSERT INTO idstore_original_schema (reason, type, name, tbl_name, sql, rowsSql)
             VALUES ('adopted', ?, ?, ?, ?, ?)",
        )
        .bind::<Text, _>(&k.object.kind)
        .bind::<Text, _>(&k.object.name)
        .bind::<Text, _>(&k.object.tbl_name)
        .bind::<Nullable<Text>, _>(&k.object.sql)
        .bind::<Nullable<Text>, _>(&k.rows_sql)
        .execute(conn)?;
    }
    Ok(())
}

/// The kept objects recorded for `reason` (`adopted` or `rebuilt`), tables first.
pub(crate) fn recorded(conn: &mut SqliteConnection, reason: &str) -> QueryResult<Vec<Kept>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        kind: String,
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Text)]
        tbl_name: String,
        #[diesel(sql_type = Nullable<Text>)]
        sql: Option<String>,
        #[diesel(sql_type = Nullable<Text>, column_name = rowsSql)]
        rows_sql: Option<String>,
    }
    if !crate::sql::table_exists(conn, "idstore_original_schema")? {
        return Ok(Vec::new());
    }
    Ok(diesel::sql_query(
        "SELECT type AS kind, name, tbl_name, sql, rowsSql FROM idstore_original_schema
          WHERE reason = ? ORDER BY type <> 'table', id",
    )
    .bind::<Text, _>(reason)
    .load::<Row>(conn)?
    .into_iter()
    .map(|r| Kept {
        object: SchemaObject {
            kind: r.kind,
            name: r.name,
            tbl_name: r.tbl_name,
            sql: r.sql,
        },
        rows_sql: r.rows_sql,
    })
    .collect())
}

/// Forgets the adopted records, so the active-identity step's down.sql (which
/// refuses while any is left, for the diesel CLI) can run; the caller puts the
/// objects back after it.
pub(crate) fn forget_adopted(conn: &mut SqliteConnection) -> QueryResult<()> {
    if crate::sql::table_exists(conn, "idstore_original_schema")? {
        conn.batch_execute("DELETE FROM idstore_original_schema WHERE reason = 'adopted';")?;
    }
    Ok(())
}

/// Recreates adopted objects after the step that replaced them was reverted: each
/// from its own DDL, a table with its rows. The app's `active_identity` then names
/// the identity the legacy column names now (the transition kept them in step).
pub(crate) fn restore_adopted(conn: &mut SqliteConnection, kept: &[Kept]) -> QueryResult<()> {
    for k in kept {
        if let Some(sql) = &k.object.sql {
            conn.batch_execute(sql)?;
        }
        if let Some(rows) = k.rows_sql.as_deref().filter(|r| !r.is_empty()) {
            conn.batch_execute(rows)?;
        }
        if k.object.kind == "table" && k.object.name == "active_identity" {
            let columns = crate::sql::columns(conn, "active_identity")?;
            let touch = if columns.iter().any(|c| c == "lastUpdated") {
                ", lastUpdated = datetime('now')"
            } else {
                ""
            };
            conn.batch_execute(&format!(
                "UPDATE active_identity SET activeDid = {legacy}{touch}
                  WHERE activeDid IS NOT {legacy}
                    AND ({legacy} IS NULL OR EXISTS (SELECT 1 FROM accounts WHERE did = {legacy}));",
                legacy = "(SELECT nullif(activeDid, '') FROM settings WHERE id = 1)"
            ))?;
        }
    }
    Ok(())
}

/// Rebuilds `settings` from the DDL it had before the cleanup (`kept`, tables first),
/// when the rollback's SQL gave it idstore's text instead: a copy under the old
/// text, the rows moved over, the counter kept, and every index and trigger on it
/// recreated (with its original text when there is one). `PRAGMA legacy_alter_table`
/// keeps the rename from rewriting other triggers that name `settings`.
pub(crate) fn restore_rebuilt_settings(
    conn: &mut SqliteConnection,
    kept: &[Kept],
) -> QueryResult<()> {
    let Some(table_sql) = kept
        .iter()
        .find(|k| k.object.kind == "table" && k.object.name == "settings")
        .and_then(|k| k.object.sql.clone())
    else {
        return Ok(());
    };
    let now = objects(conn)?;
    if now.get("settings").and_then(|o| o.sql.as_deref()) == Some(table_sql.as_str()) {
        return Ok(());
    }
    let originals: BTreeMap<&str, &str> = kept
        .iter()
        .filter_map(|k| Some((k.object.name.as_str(), k.object.sql.as_deref()?)))
        .collect();
    let attached: Vec<String> = now
        .values()
        .filter(|o| o.tbl_name == "settings" && o.kind != "table")
        .filter_map(|o| {
            let sql = originals
                .get(o.name.as_str())
                .copied()
                .or(o.sql.as_deref())?;
            Some(sql.to_owned())
        })
        .collect();
    conn.batch_execute(
        "CREATE TEMP TABLE idstore_settings_seq AS SELECT seq FROM sqlite_sequence WHERE name = 'settings';
         PRAGMA legacy_alter_table = ON;
         ALTER TABLE settings RENAME TO idstore_settings_rebuild;",
    )?;
    let result = (|| {
        conn.batch_execute(&table_sql)?;
        conn.batch_execute(
            "INSERT INTO settings SELECT * FROM idstore_settings_rebuild;
             DROP TABLE idstore_settings_rebuild;
             DELETE FROM sqlite_sequence WHERE name IN ('settings', 'idstore_settings_rebuild');
             INSERT INTO sqlite_sequence (name, seq) SELECT 'settings', seq FROM temp.idstore_settings_seq;",
        )?;
        for sql in &attached {
            conn.batch_execute(sql)?;
        }
        Ok(())
    })();
    let restored = conn.batch_execute(
        "PRAGMA legacy_alter_table = OFF; DROP TABLE IF EXISTS temp.idstore_settings_seq;",
    );
    result.and(restored)
}
