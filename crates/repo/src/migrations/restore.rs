//! What a rollback gives back: adopted objects and the tables a step rebuilt are
//! recreated from the definitions the file had, kept in `idstore_original_schema`,
//! so rolling back gives the file its own schema text back.
//!
//! A file is data, never code. What must come back is kept as data: the app's
//! `active_identity` rows as rows (a copy of the table), the legacy pointer it
//! overrode as a value. A kept definition is checked before it is used: it must be
//! exactly one `CREATE` statement for the object it is recorded as, and that object
//! one idstore adopts or rebuilds, or the rollback refuses and says why.

use std::collections::BTreeMap;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Double, Nullable, Text};

use crate::error::{Error, ErrorKind};
use crate::sql::from_file::{self as sqltext, Kind, Literal};
use crate::sql::quote_ident;
use crate::sql::{SchemaObject, schema_objects as objects};

/// The app's `active_identity` rows, as rows, while idstore's table stands in its
/// place (the active-identity step keeps them).
const ADOPTED_ROWS: &str = "idstore_adopted_active_identity";
/// [`ADOPTED_ROWS`] copied aside by a rollback, before the step's own SQL drops it.
const ADOPTED_ROWS_COPY: &str = "temp.idstore_adopted_rows";
/// The legacy pointer the adoption overrode, and the pointer it left.
const ADOPTION: &str = "idstore_adoption";
/// [`ADOPTION`] copied aside by a rollback, before the step's own SQL drops it.
const ADOPTION_COPY: &str = "temp.idstore_adoption_copy";

/// A kept definition, with (from a preview build only) its rows as `INSERT` text.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub object: SchemaObject,
    pub rows_sql: Option<String>,
}

/// Copies what an adoption kept as rows aside (temporary tables): the app's
/// `active_identity` rows and the legacy value its pointer overrode, so they can go
/// back once the step's own SQL has dropped the tables that keep them.
/// [`restore_adopted`] drops the copies.
pub(crate) fn keep_adopted_rows(conn: &mut SqliteConnection) -> QueryResult<()> {
    for (table, copy) in [
        (ADOPTED_ROWS, "idstore_adopted_rows"),
        (ADOPTION, "idstore_adoption_copy"),
    ] {
        if crate::sql::table_exists(conn, table)? {
            conn.batch_execute(&format!(
                "DROP TABLE IF EXISTS temp.{copy};
                 CREATE TEMP TABLE {copy} AS SELECT * FROM main.{table};"
            ))?;
        }
    }
    Ok(())
}

/// Drops `objects` (indexes and triggers), each by its name; the keyword is the
/// crate's own, never text the file gave.
pub(crate) fn drop_objects(
    conn: &mut SqliteConnection,
    objects: &[SchemaObject],
) -> QueryResult<()> {
    for o in objects {
        let kind = match o.kind.as_str() {
            "index" => "INDEX",
            "trigger" => "TRIGGER",
            _ => {
                return Err(diesel::result::Error::QueryBuilderError(
                    format!("{:?} is not an index or a trigger", o.kind).into(),
                ));
            }
        };
        conn.batch_execute(&format!("DROP {kind} {};", quote_ident(&o.name)))?;
    }
    Ok(())
}

/// The kept objects recorded for `reason` (`adopted` or `rebuilt`), tables first,
/// each checked (see [`check`]).
pub(crate) fn recorded(conn: &mut SqliteConnection, reason: &str) -> Result<Vec<Kept>, Error> {
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
    let kept: Vec<Kept> = diesel::sql_query(
        "SELECT CAST(type AS TEXT) AS kind, CAST(name AS TEXT) AS name,
                CAST(tbl_name AS TEXT) AS tbl_name, CAST(sql AS TEXT) AS sql,
                CAST(rowsSql AS TEXT) AS rowsSql
           FROM idstore_original_schema
          WHERE reason = ? ORDER BY type <> 'table', id",
    )
    .bind::<Text, _>(reason)
    .load::<Row>(conn)
    .map_err(|e| untrusted("idstore_original_schema", &e.to_string()))?
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
    .collect();
    for k in &kept {
        check(reason, k)?;
    }
    Ok(kept)
}

/// A record that cannot be trusted, as the refusal says it.
fn untrusted(what: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::UntrustedSchema,
        format!(
            "{what} was changed by another program and cannot be trusted ({why}); nothing was changed: restore the file from a backup taken before the change"
        ),
    )
}

/// Checks one kept record before anything is done with it: an object idstore keeps
/// for `reason` (the app's `active_identity` with its indexes and triggers, or an
/// object under a name idstore's steps create, when adopted; `settings` and what is
/// on it, when rebuilt), whose definition is exactly one `CREATE` statement for it,
/// and whose rows, from an older idstore, read as literals.
fn check(reason: &str, k: &Kept) -> Result<(), Error> {
    let o = &k.object;
    let what = format!(
        "the kept definition of the {} {} in idstore_original_schema",
        idstore_domain::display::Shown(&o.kind),
        idstore_domain::display::Shown::quoted(&o.name)
    );
    let kind =
        Kind::parse(&o.kind).ok_or_else(|| untrusted(&what, "it is no table, index or trigger"))?;
    let ours = super::steps::names_created_by_steps();
    let expected = match (reason, kind) {
        ("adopted", Kind::Table) => o.name == "active_identity" && o.tbl_name == o.name,
        ("adopted", _) => o.tbl_name == "active_identity" || ours.contains(o.name.as_str()),
        ("rebuilt", Kind::Table) => o.name == "settings" && o.tbl_name == o.name,
        ("rebuilt", _) => o.tbl_name == "settings",
        _ => false,
    };
    if !expected {
        return Err(untrusted(&what, "idstore keeps no such object"));
    }
    if let Some(sql) = &o.sql {
        let on = (kind != Kind::Table).then_some(o.tbl_name.as_str());
        sqltext::check_create(sql, kind, &o.name, on).map_err(|r| untrusted(&what, &r.0))?;
    }
    if let Some(rows) = &k.rows_sql {
        sqltext::parse_inserts(rows, &o.name)
            .map_err(|r| untrusted(&what, &format!("its kept rows: {r}")))?;
    }
    Ok(())
}

/// Checks, before a rollback writes anything, everything it will take from the file:
/// the kept records it will use, and the definitions of indexes and triggers other
/// programs put on `settings`, which the cleanup's rollback recreates.
pub(crate) fn check_for_rollback(
    conn: &mut SqliteConnection,
    reverts_cleanup: bool,
    reverts_active_identity: bool,
) -> Result<(), Error> {
    if reverts_cleanup {
        recorded(conn, "rebuilt")?;
        for o in super::runner_sql::cleanup::foreign_settings_objects(conn)? {
            check_on_settings(&o, o.sql.as_deref().unwrap_or_default())?;
        }
    }
    if reverts_active_identity {
        recorded(conn, "adopted")?;
    }
    Ok(())
}

/// Recreates indexes and triggers other programs put on `settings`, each from its
/// definition once it is checked, indexes first.
pub(crate) fn recreate_on_settings(
    conn: &mut SqliteConnection,
    objects: &[SchemaObject],
) -> Result<(), Error> {
    let mut ordered: Vec<&SchemaObject> = objects.iter().collect();
    ordered.sort_by_key(|o| o.kind == "trigger");
    for o in ordered {
        let sql = o.sql.as_deref().unwrap_or_default();
        check_on_settings(o, sql)?;
        conn.batch_execute(sql)?;
    }
    Ok(())
}

/// Checks `sql`, the definition of `o` (an index or trigger on `settings` that a
/// rollback recreates), before it is run: one `CREATE` statement for that object.
fn check_on_settings(o: &SchemaObject, sql: &str) -> Result<(), Error> {
    let kind = Kind::parse(&o.kind).unwrap_or(Kind::Trigger);
    sqltext::check_create(sql, kind, &o.name, Some("settings")).map_err(|r| {
        untrusted(
            &format!(
                "the definition of the {} {} on settings",
                idstore_domain::display::Shown(&o.kind),
                idstore_domain::display::Shown::quoted(&o.name)
            ),
            &r.0,
        )
    })
}

/// How many objects the active-identity step adopted (0 before it, or when it
/// adopted none).
pub(crate) fn adopted_count(conn: &mut SqliteConnection) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    if !crate::sql::table_exists(conn, "idstore_original_schema")? {
        return Ok(0);
    }
    diesel::sql_query("SELECT count(*) AS n FROM idstore_original_schema WHERE reason = 'adopted'")
        .get_result::<N>(conn)
        .map(|r| r.n)
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

/// What the adoption overrode, read before the step is reverted: whether it was
/// recorded, and whether the active identity is still the one the adoption left.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Overridden {
    recorded: bool,
    pointer_unchanged: bool,
}

/// Reads [`Overridden`] (nothing recorded: the adoption overrode nothing).
pub(crate) fn overridden(conn: &mut SqliteConnection) -> QueryResult<Overridden> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        unchanged: bool,
    }
    if !crate::sql::table_exists(conn, ADOPTION)? {
        return Ok(Overridden::default());
    }
    let row = diesel::sql_query(format!(
        "SELECT pointerAfter IS (SELECT activeDid FROM active_identity WHERE id = 1) AS unchanged
           FROM {ADOPTION} WHERE id = 1"
    ))
    .get_result::<Row>(conn)
    .optional()?;
    Ok(Overridden {
        recorded: row.is_some(),
        pointer_unchanged: row.is_some_and(|r| r.unchanged),
    })
}

/// Recreates adopted objects after the step that replaced them was reverted: each
/// from its own (checked) definition, tables and indexes, then the app's table's
/// rows, triggers last so none fires on the rollback's own writes. The app's `active_identity` then
/// names the identity the legacy column names now (the transition kept them in
/// step), and the legacy column gets back the value the adoption overrode when
/// the active identity is still the one the adoption left.
pub(crate) fn restore_adopted(
    conn: &mut SqliteConnection,
    kept: &[Kept],
    overridden: Overridden,
) -> Result<(), Error> {
    let (triggers, others): (Vec<&Kept>, Vec<&Kept>) =
        kept.iter().partition(|k| k.object.kind == "trigger");
    // Every table and index first, the rows after: the app's table's foreign key
    // needs its unique index on accounts(did), which may be one of those adopted.
    for k in &others {
        if let Some(sql) = &k.object.sql {
            conn.batch_execute(sql)?;
        }
    }
    for k in others.iter().filter(|k| k.object.kind == "table") {
        restore_rows(conn, k)?;
    }
    let moved = !(overridden.recorded && overridden.pointer_unchanged);
    if moved
        && kept
            .iter()
            .any(|k| k.object.kind == "table" && k.object.name == "active_identity")
    {
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
    if overridden.recorded && overridden.pointer_unchanged {
        conn.batch_execute(&format!(
            "UPDATE settings SET activeDid = (SELECT legacyActiveDid FROM {ADOPTION_COPY} WHERE id = 1)
              WHERE id = 1;"
        ))?;
    }
    conn.batch_execute(&format!(
        "DROP TABLE IF EXISTS {ADOPTION_COPY}; DROP TABLE IF EXISTS {ADOPTED_ROWS_COPY};"
    ))?;
    for k in triggers {
        if let Some(sql) = &k.object.sql {
            conn.batch_execute(sql)?;
        }
    }
    Ok(())
}

/// Puts an adopted table's rows back: from the `INSERT` text an older idstore kept
/// them as, read as literals and bound, or else from the copy of the rows kept as
/// rows.
fn restore_rows(conn: &mut SqliteConnection, k: &Kept) -> Result<(), Error> {
    let table = quote_ident(&k.object.name);
    let present = crate::sql::columns(conn, &k.object.name)?;
    let Some(text) = k.rows_sql.as_deref().filter(|t| !t.is_empty()) else {
        if crate::sql::temp_table_exists(conn, "idstore_adopted_rows")? {
            let columns = crate::sql::temp_columns(conn, "idstore_adopted_rows")?;
            let list = column_list(&columns, &present).ok_or_else(|| {
                untrusted(
                    ADOPTED_ROWS,
                    "its columns are not those of the table it keeps",
                )
            })?;
            conn.batch_execute(&format!(
                "INSERT INTO main.{table} ({list}) SELECT {list} FROM {ADOPTED_ROWS_COPY} ORDER BY rowid;"
            ))?;
        }
        return Ok(());
    };
    let rows = sqltext::parse_inserts(text, &k.object.name)
        .map_err(|r| untrusted("the kept rows of active_identity", &r.0))?;
    for (columns, values) in rows {
        let list = column_list(&columns, &present).ok_or_else(|| {
            untrusted(
                "the kept rows of active_identity",
                "they name a column the table does not have",
            )
        })?;
        let marks = vec!["?"; values.len()].join(", ");
        let mut insert = diesel::sql_query(format!(
            "INSERT INTO main.{table} ({list}) VALUES ({marks})"
        ))
        .into_boxed::<diesel::sqlite::Sqlite>();
        for value in values {
            insert = match value {
                Literal::Null => insert.bind::<Nullable<Text>, _>(None::<String>),
                Literal::Integer(i) => insert.bind::<BigInt, _>(i),
                Literal::Real(r) => insert.bind::<Double, _>(r),
                Literal::Text(t) => insert.bind::<Text, _>(t),
                Literal::Blob(b) => insert.bind::<Binary, _>(b),
            };
        }
        insert.execute(conn)?;
    }
    Ok(())
}

/// `columns`, quoted and joined for an `INSERT`, when each is one of `present`
/// (the columns of the table the rows go back into); `None` when one is not.
fn column_list(columns: &[String], present: &[String]) -> Option<String> {
    columns.iter().all(|c| present.contains(c)).then(|| {
        columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// Rebuilds `settings` from the definition it had before the cleanup (`kept`,
/// tables first, checked), when the rollback's SQL gave it idstore's text instead:
/// a copy under the old text, the rows moved over, the counter kept, and every
/// index and trigger on it recreated (with its original text when there is one).
/// `PRAGMA legacy_alter_table` keeps the rename from rewriting other triggers that
/// name `settings`.
pub(crate) fn restore_rebuilt_settings(
    conn: &mut SqliteConnection,
    kept: &[Kept],
) -> Result<(), Error> {
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
    let mut attached = Vec::new();
    for o in now
        .values()
        .filter(|o| o.tbl_name == "settings" && o.kind != "table")
    {
        let Some(sql) = originals.get(o.name.as_str()).copied().or(o.sql.as_deref()) else {
            continue;
        };
        check_on_settings(o, sql)?;
        attached.push((o.kind == "trigger", sql.to_owned()));
    }
    // Indexes before triggers, so no trigger fires on the rows being moved back.
    attached.sort_by_key(|(trigger, _)| *trigger);
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
        for (_, sql) in &attached {
            conn.batch_execute(sql)?;
        }
        Ok::<(), diesel::result::Error>(())
    })();
    let restored = conn.batch_execute(
        "PRAGMA legacy_alter_table = OFF; DROP TABLE IF EXISTS temp.idstore_settings_seq;",
    );
    result.and(restored).map_err(Error::from)
}
