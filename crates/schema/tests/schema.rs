//! The generated tables against a database built by running the migrations' SQL
//! directly (as the diesel CLI would).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use idstore_schema::{accounts, active_identity, settings};

const UP: &[&str] = &[
    include_str!("../../repo/migrations/00000000000000_legacy_baseline/up.sql"),
    include_str!("../../repo/migrations/2026-12-06-000001_active_identity/up.sql"),
    include_str!("../../repo/migrations/2026-12-06-000002_drop_settings_active_did/up.sql"),
];

fn migrated() -> (tempfile::TempDir, SqliteConnection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.sqlite");
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    for sql in UP {
        conn.batch_execute(sql).unwrap();
    }
    (dir, conn)
}

/// The column names a `table!` selects, in order, read from the SQL Diesel builds.
fn declared<T>(table: T) -> Vec<String>
where
    T: diesel::Table + diesel::query_dsl::methods::SelectDsl<<T as diesel::Table>::AllColumns>,
    <T as diesel::query_dsl::methods::SelectDsl<<T as diesel::Table>::AllColumns>>::Output:
        diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
{
    let sql = diesel::debug_query::<diesel::sqlite::Sqlite, _>(&table.select(T::all_columns()))
        .to_string();
    let list = sql
        .trim_start_matches("SELECT ")
        .split(" FROM ")
        .next()
        .unwrap()
        .to_owned();
    list.split(", ")
        .map(|c| c.rsplit('.').next().unwrap().trim_matches('`').to_owned())
        .collect()
}

fn in_file(conn: &mut SqliteConnection, table: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    diesel::sql_query("SELECT name FROM pragma_table_info(?) ORDER BY cid")
        .bind::<diesel::sql_types::Text, _>(table)
        .load::<Name>(conn)
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect()
}

#[test]
fn generated_columns_match_the_migrated_tables() {
    let (_dir, mut conn) = migrated();
    // Every table!'s columns, in order, are the migrated table's: a drifted schema.rs
    // (or migration) fails here.
    let tables = [
        ("accounts", declared(accounts::table)),
        ("settings", declared(settings::table)),
        ("active_identity", declared(active_identity::table)),
        (
            "accounts_quarantine",
            declared(idstore_schema::accounts_quarantine::table),
        ),
        (
            "active_did_quarantine",
            declared(idstore_schema::active_did_quarantine::table),
        ),
        (
            "quarantine_decisions",
            declared(idstore_schema::quarantine_decisions::table),
        ),
        (
            "idstore_original_schema",
            declared(idstore_schema::idstore_original_schema::table),
        ),
        (
            "settings_active_did_archive",
            declared(idstore_schema::settings_active_did_archive::table),
        ),
    ];
    for (name, columns) in tables {
        assert!(!columns.is_empty(), "{name}");
        assert_eq!(columns, in_file(&mut conn, name), "{name}");
    }
    // The baseline seeds the master row.
    let n: i64 = settings::table.count().get_result(&mut conn).unwrap();
    assert_eq!(n, 1, "the seeded master row");
    let stamp: chrono::NaiveDateTime = active_identity::table
        .select(active_identity::lastUpdated)
        .first(&mut conn)
        .unwrap();
    assert!(
        stamp.and_utc().timestamp() > 1_700_000_000,
        "lastUpdated maps to chrono"
    );
}
