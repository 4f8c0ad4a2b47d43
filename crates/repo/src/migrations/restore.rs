//! What a rollback gives back: adopted objects and the tables a step rebuilt are
//! recreated from the DDL the file had, kept in `idstore_original_schema`, so
//! rolling back gives the file its own schema text back.

use std::collections::BTreeMap;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};

use super::adopt::{SchemaObject, objects};

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
