//! Helpers shared by the repo crate's integration tests: legacy files as the app
//! writes them, raw connections, and a row-by-row dump of every table.
#![allow(dead_code, missing_docs)]

pub use idstore_testkit::*;

/// A DID no account has.
pub const ORPHAN: &str = UNKNOWN;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use idstore_repo::migrations::{MigrationReport, MigrationStatus, RollbackOptions, RollbackReport};
use idstore_repo::{Database, Error, MigrateOptions};

/// The migrations as the diesel CLI and diesel's harness run them.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The migration versions, oldest first.
pub const BASELINE_VERSION: &str = "00000000000000";
/// The transition step, where a phased rollout may pause.
pub const ACTIVE_IDENTITY_VERSION: &str = "20261206000001";
pub const CLEANUP_VERSION: &str = "20261206000002";

/// A connection to set up or inspect a file with SQL: a raw one, or the one under a
/// [`Database`].
pub trait Raw {
    fn raw(&mut self) -> &mut SqliteConnection;
}

impl Raw for SqliteConnection {
    fn raw(&mut self) -> &mut SqliteConnection {
        self
    }
}

impl Raw for Database {
    fn raw(&mut self) -> &mut SqliteConnection {
        idstore_repo::fixtures::raw_connection(self)
    }
}

impl Raw for idstore_repo::pool::PooledDatabase {
    fn raw(&mut self) -> &mut SqliteConnection {
        idstore_repo::fixtures::raw_connection(self)
    }
}

/// Opens (creating if missing) a read-write database.
pub fn open(path: &Path) -> Result<Database, Error> {
    Database::open(path)
}

/// [`Database::migrate`].
pub fn migrate(db: &mut Database, options: MigrateOptions<'_>) -> Result<MigrationReport, Error> {
    db.migrate(&options)
}

/// [`Database::rollback`].
pub fn rollback(db: &mut Database, options: &RollbackOptions) -> Result<RollbackReport, Error> {
    db.rollback(options)
}

/// [`Database::status`].
pub fn status(db: &mut Database) -> Result<MigrationStatus, Error> {
    db.status()
}

/// One row in each table idstore must never touch (the app's schema itself is
/// [`idstore_repo::testing::LEGACY_APP_SCHEMA`]).
pub const UNRELATED_ROWS: &str = r#"
INSERT INTO migrations VALUES ('001_initial', '2024-01-01'), ('002_contacts', '2024-02-01');
INSERT INTO contacts VALUES ('did:ethr:0x9999999999999999999999999999999999999999', 'Ann',
    '[{"label":"e","type":"EMAIL","value":"a@b.c"}]', 'note ''quoted''', 'AAEC', 1, 0, 1);
INSERT INTO secret VALUES (1, 'c2VjcmV0IGtleSBtYXRlcmlhbA==');
INSERT INTO logs VALUES ('2024-03-01T12:00:00.000Z', 'app started');
INSERT INTO temp VALUES ('x', 'YmxvYg==');
"#;

/// Runs a batch of SQL.
pub fn exec(conn: &mut impl Raw, sql: &str) {
    conn.raw()
        .batch_execute(sql)
        .unwrap_or_else(|e| panic!("{e}\n in: {sql}"));
}

/// A legacy file at `dir/name` with the app's tables (and `hasBackedUpSeed` when
/// asked), its unrelated tables holding one row each, then `data` run on it.
pub fn legacy_file(dir: &Path, name: &str, has_backed_up_seed: bool, data: &str) -> PathBuf {
    let path = dir.join(name);
    let mut conn = raw(&path);
    // The app ran without foreign key enforcement; fixtures may hold what it allowed.
    exec(&mut conn, "PRAGMA foreign_keys = OFF;");
    exec(&mut conn, idstore_repo::testing::LEGACY_APP_SCHEMA);
    exec(&mut conn, UNRELATED_ROWS);
    if has_backed_up_seed {
        exec(
            &mut conn,
            "ALTER TABLE settings ADD COLUMN hasBackedUpSeed BOOLEAN DEFAULT FALSE;",
        );
    }
    exec(&mut conn, data);
    path
}

/// SQL inserting an account with distinct key material derived from `tag`.
pub fn account_sql(id: i64, did: &str, tag: &str) -> String {
    format!(
        "INSERT INTO accounts (id, dateCreated, derivationPath, did, identityEncrBase64, \
         mnemonicEncrBase64, passkeyCredIdHex, publicKeyHex) VALUES ({id}, \
         '2024-03-0{}T12:00:00.000Z', 'm/84737769''/0''/0''/{id}''', '{did}', 'aWQt{tag}', \
         'bW5l{tag}', NULL, '02{tag}');",
        id % 9 + 1
    )
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Value {
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
}

/// Every table's rows but the migrations bookkeeping, clock columns left out.
pub fn dump(conn: &mut impl Raw) -> BTreeMap<String, Vec<String>> {
    let mut rows =
        idstore_repo::fixtures::table_rows(conn.raw(), idstore_repo::fixtures::CLOCK_COLUMNS)
            .unwrap();
    rows.remove("__diesel_schema_migrations");
    rows
}

/// Column names of a table, in order.
pub fn columns(conn: &mut impl Raw, table: &str) -> Vec<String> {
    diesel::sql_query("SELECT name FROM pragma_table_info(?) ORDER BY cid")
        .bind::<Text, _>(table)
        .load::<Name>(conn.raw())
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect()
}

/// One text value (NULL and "no row" read as None).
pub fn text(conn: &mut impl Raw, sql: &str) -> Option<String> {
    diesel::sql_query(sql)
        .get_result::<Value>(conn.raw())
        .optional()
        .unwrap()
        .and_then(|v| v.value)
}

/// Every row's `value` column, as text.
pub fn rows(conn: &mut impl Raw, sql: &str) -> Vec<String> {
    diesel::sql_query(sql)
        .load::<Value>(conn.raw())
        .unwrap()
        .into_iter()
        .filter_map(|v| v.value)
        .collect()
}

/// Names of every table, index and trigger, with their SQL, sorted.
pub fn schema_objects(conn: &mut impl Raw) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Obj {
        #[diesel(sql_type = Text)]
        value: String,
    }
    diesel::sql_query(
        "SELECT type || ' ' || name || ' ON ' || tbl_name AS value FROM sqlite_master ORDER BY 1",
    )
    .load::<Obj>(conn.raw())
    .unwrap()
    .into_iter()
    .map(|o| o.value)
    .collect()
}

/// The file's bytes (the connection to it must be closed).
pub fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Runs `sql` with foreign keys off the way a file damaged before idstore's pointer
/// guard existed was written (the guard's triggers are set aside for it, then put
/// back), to test how idstore copes with damage it can no longer be dealt.
pub fn unguarded(conn: &mut impl Raw, sql: &str) {
    let names = rows(
        conn,
        "SELECT name AS value FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%\\_guard\\_%' ESCAPE '\\' ORDER BY name",
    );
    let defs = rows(
        conn,
        "SELECT sql AS value FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%\\_guard\\_%' ESCAPE '\\' ORDER BY name",
    );
    for name in &names {
        exec(conn, &format!("DROP TRIGGER {name};"));
    }
    exec(conn, "PRAGMA foreign_keys = OFF;");
    exec(conn, sql);
    exec(conn, "PRAGMA foreign_keys = ON;");
    for def in &defs {
        exec(conn, def);
    }
}

/// The whole file as `.dump` would give it, object order aside: every schema entry's
/// text (type, name, table, SQL) sorted, then every table's rows, with idstore's
/// migration bookkeeping left out.
pub fn whole_dump(conn: &mut impl Raw) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let schema = rows(
        conn,
        "SELECT type || ' ' || name || ' ON ' || tbl_name || ': ' || coalesce(sql, '') AS value
           FROM sqlite_master
          WHERE tbl_name <> '__diesel_schema_migrations'
          ORDER BY 1",
    );
    let mut data =
        idstore_repo::fixtures::table_rows(conn.raw(), idstore_repo::fixtures::CLOCK_COLUMNS)
            .unwrap();
    data.remove("__diesel_schema_migrations");
    (schema, data)
}

/// Migrates the legacy file at `path` as the preview build did, through the preview
/// step `to`: the baseline, then each step's SQL with its record in diesel's
/// bookkeeping and in the app's, in one transaction.
pub fn preview_migrate(path: &Path, to: &str) {
    let mut conn = raw(path);
    exec(&mut conn, "BEGIN;");
    exec(
        &mut conn,
        idstore_repo::migrations::steps::all()[0].up_sql(),
    );
    exec(
        &mut conn,
        "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
             version VARCHAR(50) PRIMARY KEY NOT NULL,
             run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
         INSERT INTO __diesel_schema_migrations (version) VALUES ('00000000000000');",
    );
    for (version, folder, up) in idstore_repo::fixtures::PREVIEW_STEPS {
        if version > to {
            break;
        }
        exec(&mut conn, up);
        exec(
            &mut conn,
            &format!(
                "INSERT INTO __diesel_schema_migrations (version) VALUES ('{version}');
                 INSERT INTO migrations (name, applied_at) VALUES ('idstore_{folder}', '2026-11-30T00:00:00Z');"
            ),
        );
    }
    exec(&mut conn, "COMMIT;");
}
