//! Helpers of the command's end-to-end tests (beside the shared ones of
//! `idstore-testkit`): run the binary on temp files, read its JSON,
//! and make legacy files as the app writes them.
#![allow(dead_code, missing_docs)]

pub use idstore_testkit::*;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::Value;

/// `idstore --db DB` with no IDSTORE_DB from the environment.
pub fn idstore(db: &Path) -> Command {
    let mut cmd = Command::cargo_bin("idstore").unwrap();
    cmd.arg("--db")
        .arg(db)
        .env_remove("IDSTORE_DB")
        .env_remove("IDSTORE_BUSY_TIMEOUT_MS")
        .env_remove("IDSTORE_KEY")
        .env_remove("IDSTORE_NEW_KEY")
        .env_remove("IDSTORE_SQLCIPHER_COMPAT");
    cmd
}

/// Runs with `--json`, expects success and exactly one JSON document on stdout.
pub fn json_of(cmd: &mut Command) -> Value {
    let out = cmd
        .arg("--json")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "one JSON document on stdout: {e}: {}",
            String::from_utf8_lossy(&out)
        )
    })
}

/// Runs, expects `code`, an `error: …` line on stderr, and returns stderr.
pub fn fails(cmd: &mut Command, code: i32) -> String {
    let out = cmd.assert().code(code).get_output().clone();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.starts_with("error: "),
        "stderr starts with error: {err}"
    );
    err
}

/// A small legacy file: accounts A, B and a second A with other key material, the
/// master row pointing at B, and a contacts row idstore must never touch.
pub fn legacy(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    conn.batch_execute("PRAGMA foreign_keys = OFF;").unwrap();
    conn.batch_execute(idstore_repo::testing::LEGACY_APP_SCHEMA)
        .unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO contacts (did, name) VALUES ('did:ethr:0x9999999999999999999999999999999999999999', 'Ann');
         INSERT INTO accounts (dateCreated, did, identityEncrBase64, publicKeyHex) VALUES
           ('2024-03-01T12:00:00.000Z', '{DID_A}', 'a1', '02a1'),
           ('2024-03-02T12:00:00.000Z', '{DID_B}', 'b1', '02b1'),
           ('2024-03-03T12:00:00.000Z', '{DID_A}', 'a2', '02a2');
         INSERT INTO settings (id, activeDid, apiServer, firstName) VALUES (1, '{DID_B}', 'https://api.endorser.ch', 'Me');"
    ))
    .unwrap();
    path
}

/// A migrated database holding accounts A, B, C (added through the command), B active.
pub fn migrated(dir: &Path) -> PathBuf {
    let db = dir.join("app.sqlite");
    idstore(&db).args(["migrate", "-q"]).assert().success();
    for (did, date) in [
        (DID_A, "2024-03-01T12:00:00Z"),
        (DID_B, "2024-03-02T12:00:00Z"),
        (DID_C, "2024-03-03T12:00:00Z"),
    ] {
        idstore(&db)
            .args([
                "account",
                "add",
                did,
                "--public-key",
                "02ab",
                "--date",
                date,
                "-q",
            ])
            .assert()
            .success();
    }
    idstore(&db)
        .args(["active", "set", DID_B, "-q"])
        .assert()
        .success();
    db
}

/// Runs `sql` with foreign keys off on `db` the way a file damaged before idstore's
/// pointer guard existed was written: the guard's triggers are set aside for it and
/// then put back.
pub fn unguarded(db: &Path, sql: &str) {
    #[derive(QueryableByName)]
    struct Def {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        sql: String,
    }
    let mut conn = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    let defs = diesel::sql_query(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%\\_guard\\_%' ESCAPE '\\'",
    )
    .load::<Def>(&mut conn)
    .unwrap();
    for d in &defs {
        conn.batch_execute(&format!("DROP TRIGGER {};", d.name))
            .unwrap();
    }
    conn.batch_execute(&format!(
        "PRAGMA foreign_keys = OFF; {sql} PRAGMA foreign_keys = ON;"
    ))
    .unwrap();
    for d in &defs {
        conn.batch_execute(&d.sql).unwrap();
    }
}

/// Whether `script` (util-linux) can run a command on a pseudo-terminal here.
pub fn has_script(test: &str) -> bool {
    tool_available(
        test,
        "`script` from util-linux",
        runs("script", &["-qec", "true", "/dev/null"]),
        "Debian's bsdutils",
    )
}

/// Runs `idstore --db DB ARGS` (then `redirect`, a shell redirection or nothing) on a
/// pseudo-terminal, as a person's shell would (util-linux `script`); returns whether
/// it succeeded and what the terminal showed.
pub fn on_terminal(db: &Path, args: &str, redirect: &str) -> (bool, String) {
    let bin = assert_cmd::cargo::cargo_bin("idstore");
    let cmd = format!("{} --db {} {args} {redirect}", bin.display(), db.display());
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("IDSTORE_DB")
        .output()
        .expect("script (util-linux) runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Two raw keys for tests that run many times (no key derivation at open).
pub const KEY_1: &str = "x'2DD29CA851E7B56E4697B0E1F08507293D761A05CE4D1B628663F411A8086D99'";
/// The second.
pub const KEY_2: &str = "x'98483C6EB40B6C31A448C22A66DED3B5E5E8D5119CAC8327B655C8B5C4836481'";

/// Every table's rows but the migration bookkeeping, clock columns left out.
pub type Rows = std::collections::BTreeMap<String, Vec<String>>;

/// Every table's rows of a file opened with `key` (none: a plain file), after SQLite
/// recovered whatever a killed or failed run left (a read-write open does that), with
/// `integrity_check` asserted `ok`; `None` when that key does not open it.
pub fn keyed_rows(path: &Path, key: Option<&str>) -> Option<Rows> {
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let options = idstore_repo::OpenOptions::new()
        .key(key.map(|k| idstore_repo::encryption::Key::new(k).unwrap()));
    let mut db = match options.open(path) {
        Ok(db) => db,
        Err(e)
            if matches!(
                e.kind(),
                idstore_repo::ErrorKind::WrongKey
                    | idstore_repo::ErrorKind::Encrypted
                    | idstore_repo::ErrorKind::NotEncrypted
            ) =>
        {
            return None;
        }
        Err(e) => panic!("{}: {e}", path.display()),
    };
    let conn = idstore_repo::fixtures::raw_connection(&mut db);
    let lines = diesel::sql_query("PRAGMA integrity_check")
        .load::<Line>(conn)
        .unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].integrity_check, "ok", "{}", path.display());
    let mut rows =
        idstore_repo::fixtures::table_rows(conn, idstore_repo::fixtures::CLOCK_COLUMNS).unwrap();
    rows.remove("__diesel_schema_migrations");
    Some(rows)
}

/// `idstore --db DB` with the database's key in IDSTORE_KEY.
pub fn with_key(db: &Path, key: &str) -> Command {
    let mut cmd = idstore(db);
    cmd.env("IDSTORE_KEY", key);
    cmd
}

/// Runs `script` with `sh` in a private mount namespace where a tmpfs of `size`
/// bytes is mounted on `mnt` (its files vanish with it), and returns what it
/// printed. Needs `unshare` and `mount` with user namespaces (see
/// [`has_private_mounts`]).
pub fn on_small_fs(mnt: &Path, size: u64, script: &str) -> String {
    std::fs::create_dir_all(mnt).unwrap();
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o size={size} tmpfs '{}' && cd '{}' && {script}",
            mnt.display(),
            mnt.display()
        ))
        .env_remove("IDSTORE_DB")
        .env_remove("IDSTORE_KEY")
        .output()
        .expect("unshare (util-linux) runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    text
}

/// Whether a private mount namespace with a tmpfs of its own can be made here.
pub fn has_private_mounts(test: &str) -> bool {
    tool_available(
        test,
        "unshare and mount (util-linux) with user namespaces",
        runs(
            "unshare",
            &[
                "--user",
                "--map-root-user",
                "--mount",
                "sh",
                "-c",
                "mount -t tmpfs -o size=65536 tmpfs /mnt && mount -o remount,ro /mnt",
            ],
        ),
        "Debian's util-linux, and unprivileged user namespaces or root",
    )
}

/// A legacy file with 400 contacts of 1 kB each: big enough that a transaction
/// rewriting them spills changed pages into the main file before it commits.
pub fn legacy_with_contacts(dir: &Path) -> PathBuf {
    let db = legacy(dir, "source.sqlite");
    raw(&db)
        .batch_execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
             INSERT INTO contacts (did, name)
             SELECT printf('did:ethr:0x%040d', i), hex(randomblob(500)) FROM n;",
        )
        .unwrap();
    db
}

/// Copies `src` to `dst` as the app leaves it when killed inside a transaction in
/// rollback-journal mode: the main file already holds some of the transaction's
/// pages, and `dst-journal` holds the originals (a hot journal).
pub fn killed_mid_write(src: &Path, dst: &Path) {
    let committed = std::fs::read(src).unwrap();
    let mut app = raw(src);
    app.batch_execute(&format!(
        "PRAGMA cache_size = 2;
         BEGIN IMMEDIATE;
         UPDATE contacts SET name = hex(randomblob(500));
         UPDATE settings SET activeDid = 'did:ethr:0xHalfWritten', firstName = 'half';
         DELETE FROM accounts WHERE did = '{DID_B}';"
    ))
    .unwrap();
    std::fs::copy(src, dst).unwrap();
    std::fs::copy(beside(src, "-journal"), beside(dst, "-journal")).unwrap();
    app.batch_execute("ROLLBACK;").unwrap();
    assert!(
        std::fs::read(dst).unwrap() != committed,
        "the copy holds pages of the unfinished transaction (else this tests nothing)"
    );
}

/// One text value of a query on `conn` (its `value` column; NULL and "no row" read
/// as `None`).
pub fn text_value(conn: &mut SqliteConnection, sql: &str) -> Option<String> {
    #[derive(QueryableByName)]
    struct V {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        value: Option<String>,
    }
    diesel::sql_query(sql)
        .get_result::<V>(conn)
        .optional()
        .unwrap()
        .and_then(|v| v.value)
}
