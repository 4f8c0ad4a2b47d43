// Runs the app's own statements against a database file in the engine of the app's
// web build: absurd-sql's @jlongster/sql.js, SQLite 3.35.0 compiled to wasm, with
// foreign keys off as the app leaves them. Used by tests/engines.rs.
//
// node app_statements.js IN OUT STEP DID_ACTIVE DID_OTHER DID_UNKNOWN
//   STEP is "transition" (older builds still write settings.activeDid) or "final".
// Prints one JSON document: the engine's version and, per statement, ok or the
// engine's error message. Writes the database as the engine left it to OUT.
const fs = require("fs");
const initSqlJs = require("@jlongster/sql.js");

const [input, output, step, active, other, unknown] = process.argv.slice(2);

initSqlJs({
  wasmBinary: fs.readFileSync(require.resolve("@jlongster/sql.js/dist/sql-wasm.wasm")),
}).then((SQL) => {
  const db = new SQL.Database(fs.readFileSync(input));
  const results = [];
  const run = (name, sql, params) => {
    try {
      const rows = db.exec(sql, params);
      results.push({ name, ok: true, rows: rows.length ? rows[0].values : [] });
    } catch (e) {
      results.push({ name, ok: false, error: String(e.message || e) });
    }
  };
  const version = db.exec("SELECT sqlite_version()")[0].values[0][0];
  const foreignKeys = db.exec("PRAGMA foreign_keys")[0].values[0][0];

  // The newer build switches identity the new way, and reads what it wrote.
  run("switch the new way",
    "UPDATE active_identity SET activeDid = ?, lastUpdated = datetime('now') WHERE id = 1", [other]);
  run("read the pointer", "SELECT activeDid FROM active_identity WHERE id = 1");
  if (step === "transition") {
    // An older build switches the old way; the transition trigger carries it over.
    run("switch the old way", "UPDATE settings SET activeDid = ? WHERE id = 1", [active]);
    run("read the pointer after the old way", "SELECT activeDid FROM active_identity WHERE id = 1");
    run("an old build names no account", "UPDATE settings SET activeDid = ? WHERE id = 1", [unknown]);
    run("read both after the stray write",
      "SELECT (SELECT activeDid FROM active_identity WHERE id = 1), (SELECT activeDid FROM settings WHERE id = 1)");
  } else {
    run("switch back the new way",
      "UPDATE active_identity SET activeDid = ?, lastUpdated = datetime('now') WHERE id = 1", [active]);
  }
  // The app's merged read: the master row, then the active identity's override row.
  run("merged read",
    "SELECT m.firstName, coalesce(o.firstName, m.firstName), p.activeDid " +
    "FROM settings AS m JOIN active_identity AS p ON p.id = 1 " +
    "LEFT JOIN settings AS o ON o.accountDid = p.activeDid AND o.id <> 1 WHERE m.id = 1");
  // Writes the guard must refuse, foreign keys off as here.
  run("point at an unknown DID",
    "UPDATE active_identity SET activeDid = ?, lastUpdated = datetime('now') WHERE id = 1", [unknown]);
  run("replace the pointer row", "INSERT OR REPLACE INTO active_identity (id, activeDid) VALUES (1, ?)", [unknown]);
  run("delete the active account", "DELETE FROM accounts WHERE did = ?", [active]);
  run("change the active account's did", "UPDATE accounts SET did = ? WHERE did = ?", [unknown, active]);
  // Deleting another account works.
  run("delete another account", "DELETE FROM accounts WHERE did = ?", [other]);
  run("read the pointer at the end", "SELECT activeDid FROM active_identity WHERE id = 1");

  fs.writeFileSync(output, Buffer.from(db.export()));
  process.stdout.write(JSON.stringify({ version, foreign_keys: foreignKeys, results }));
});
