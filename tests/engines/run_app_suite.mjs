// The app's web engines, for tests/suite/engines.rs: runs the app's statements
// (app_suite.json) or applies idstore's exported migrations (export/app-migrations.json)
// as the app's migration service does, on a copy of a database file.
//
//   node run_app_suite.mjs ENGINE MODE IN OUT REPORT CONFIG
//   node run_app_suite.mjs --as-engine ENGINE IN OUT   (for `idstore rehearse --engine`)
//
// ENGINE: "absurd" is the web build's own stack: @jlongster/sql.js 1.6.7 (SQLite
//   3.35.0 in wasm) with absurd-sql's file system mounted, the file opened by path
//   through it and `PRAGMA journal_mode=MEMORY` run first, as the web build opens
//   its file (absurd-sql's memory backend stands in for IndexedDB). "sqljs" is the
//   current sql.js, the file handed over as bytes.
// MODE: "suite" or "apply". CONFIG: JSON, { step, foreign_keys, dids, suite, export }.
// Writes the report (JSON) to REPORT, and the file as the engine left it to OUT.
import fs from "node:fs";
import { createRequire } from "node:module";
import { checkStatement, applyStep, finalChecks } from "./suite_rules.mjs";

const require = createRequire(import.meta.url);
// `--as-engine ENGINE IN OUT`: the form `idstore rehearse --engine` calls, applying
// the export with the app's own 003 first; exits 1 when a step failed.
const asEngine = process.argv[2] === "--as-engine";
const args = asEngine ? process.argv.slice(3) : process.argv.slice(2);
const [engine, input, output] = asEngine ? args : [args[0], args[2], args[3]];
const mode = asEngine ? "apply" : args[1];
const reportPath = asEngine ? output + ".json" : args[4];
const config = asEngine
  ? {
      foreign_keys: true,
      export: new URL("../../export/app-migrations.json", import.meta.url).pathname,
      app_steps: [{
        name: "003_add_hasBackedUpSeed_to_settings",
        sql: "ALTER TABLE settings ADD COLUMN hasBackedUpSeed BOOLEAN DEFAULT FALSE",
      }],
    }
  : JSON.parse(args[5]);
// absurd-sql's memory backend logs every block write on stdout.
console.log = () => {};

// absurd-sql ships ES modules without "type": "module": load them as such.
async function esm(path) {
  const source = fs.readFileSync(require.resolve(path), "utf8");
  return import("data:text/javascript;base64," + Buffer.from(source).toString("base64"));
}

async function openAbsurd(bytes) {
  const initSqlJs = require("@jlongster/sql.js");
  const { SQLiteFS } = await esm("absurd-sql/dist/index.js");
  const { default: MemoryBackend } = await esm("absurd-sql/dist/memory-backend.js");
  const SQL = await initSqlJs({
    wasmBinary: fs.readFileSync(require.resolve("@jlongster/sql.js/dist/sql-wasm.wasm")),
  });
  const backend = new MemoryBackend({});
  // The memory backend starts files empty; hand it this one, in blocks of its
  // page size (what absurd-sql's IndexedDB backend keeps).
  const pageSize = (bytes[16] << 8) | bytes[17] || 65536;
  const create = backend.createFile.bind(backend);
  backend.createFile = (name) => {
    const file = create(name);
    if (name === "db.sqlite" && !file.loaded) {
      file.loaded = true;
      file.ops.meta = { size: bytes.byteLength, blockSize: pageSize };
      file.ops.data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      // The memory backend forgets the block size when the size is written (the
      // IndexedDB backend keeps both): keep it, as IndexedDB would.
      file.ops.writeMeta = (meta) => {
        file.ops.meta.size = meta.size;
      };
    }
    return file;
  };
  const sqlFS = new SQLiteFS(SQL.FS, backend);
  SQL.register_for_idb(sqlFS);
  SQL.FS.mkdir("/sql");
  SQL.FS.mount(sqlFS, {}, "/sql");
  const db = new SQL.Database("/sql/db.sqlite", { filename: true });
  // The web build's first statement on every open.
  db.exec("PRAGMA journal_mode=MEMORY;");
  const bytesOut = () => {
    const file = backend.getFile("db.sqlite");
    file.fsync();
    return new Uint8Array(file.ops.data, 0, file.meta.size);
  };
  return { db, version: "absurd-sql over @jlongster/sql.js", bytesOut };
}

async function openSqlJs(bytes) {
  const initSqlJs = require("sql.js");
  const SQL = await initSqlJs({
    wasmBinary: fs.readFileSync(require.resolve("sql.js/dist/sql-wasm.wasm")),
  });
  const db = new SQL.Database(bytes);
  return { db, version: "sql.js", bytesOut: () => db.export() };
}

// One statement: its rows, or the engine's error.
function runner(db) {
  return (sql, params) => {
    try {
      const rows = db.exec(sql, params);
      return { ok: true, rows: rows.length ? rows[0].values : [] };
    } catch (e) {
      return { ok: false, error: String(e.message || e) };
    }
  };
}

const bytes = new Uint8Array(fs.readFileSync(input));
let opened;
try {
  opened = engine === "absurd" ? await openAbsurd(bytes) : await openSqlJs(bytes);
} catch (e) {
  fs.writeFileSync(reportPath, JSON.stringify({ engine, open_error: String(e.message || e) }));
  process.exit(0);
}
const { db, bytesOut } = opened;
const run = runner(db);
const report = {
  engine,
  version: run("SELECT sqlite_version()").rows[0][0],
  results: [],
  failures: [],
};
const first = run("SELECT count(*) FROM sqlite_master");
if (!first.ok) {
  report.open_error = first.error;
} else {
  run(`PRAGMA foreign_keys = ${config.foreign_keys ? "ON" : "OFF"}`);
  report.foreign_keys = run("PRAGMA foreign_keys").rows[0][0];
  if (mode === "suite") {
    const suite = JSON.parse(fs.readFileSync(config.suite, "utf8"));
    for (const st of suite.statements) {
      checkStatement(st, config, run, report);
    }
  } else {
    const exported = JSON.parse(fs.readFileSync(config.export, "utf8"));
    for (const step of [...(config.app_steps || []), ...exported.steps]) {
      applyStep(step, run, report);
    }
  }
  finalChecks(run, report);
}
fs.writeFileSync(output, bytesOut());
fs.writeFileSync(reportPath, JSON.stringify(report));
if (asEngine && (report.open_error || report.failures.length)) {
  process.stderr.write(`${report.open_error || report.failures.join("; ")}\n`);
  process.exit(1);
}
