// The app's JavaScript engines, for tests/suite/engines.rs and tests/suite/corpus.rs:
// runs the app's statements (app_suite.json), or runs idstore's exported steps
// (export/app-migrations.json) as the app's migration service does, on a copy of a
// database file.
//
//   node run_app_suite.mjs ENGINE MODE IN OUT REPORT CONFIG
//   node run_app_suite.mjs ENGINE batch JOBS          (JOBS: a JSON file, a list of
//                                                      { mode, input, output, report, config })
//   node run_app_suite.mjs --as-engine ENGINE IN OUT   (for `idstore rehearse --engine`)
//
// ENGINE: "absurd" is the web build's own stack: @jlongster/sql.js 1.6.7 (SQLite
//   3.35.0 in wasm) with absurd-sql's file system mounted, the file opened by path
//   through it and `PRAGMA journal_mode=MEMORY` run first, as the web build opens
//   its file (absurd-sql's memory backend stands in for IndexedDB). "sqljs" is the
//   current sql.js, the file handed over as bytes. "better" is better-sqlite3, the
//   driver of the Electron build, on the file itself.
// MODE: "suite", "apply" (the service's run of the steps), "down" (the service's
//   rollback: each applied step's down, newest first, the baseline kept) or
//   "preflight" (the export's read-only query, its rows in the report).
//   CONFIG: JSON, { step, foreign_keys, dids, suite, export, app_steps }.
// Writes the report (JSON) to REPORT, and the file as the engine left it to OUT.
import fs from "node:fs";
import { createRequire } from "node:module";
import { checkStatement, applySteps, revertSteps, finalChecks } from "./suite_rules.mjs";

const require = createRequire(import.meta.url);
// absurd-sql's memory backend logs every block write on stdout.
console.log = () => {};

// absurd-sql ships ES modules without "type": "module": load them as such.
async function esm(path) {
  const source = fs.readFileSync(require.resolve(path), "utf8");
  return import("data:text/javascript;base64," + Buffer.from(source).toString("base64"));
}

// Each engine's module, loaded once per process.
const loaded = {};

async function openAbsurd(bytes) {
  if (!loaded.absurd) {
    const initSqlJs = require("@jlongster/sql.js");
    const { SQLiteFS } = await esm("absurd-sql/dist/index.js");
    const { default: MemoryBackend } = await esm("absurd-sql/dist/memory-backend.js");
    const SQL = await initSqlJs({
      wasmBinary: fs.readFileSync(require.resolve("@jlongster/sql.js/dist/sql-wasm.wasm")),
    });
    const backend = new MemoryBackend({});
    // The memory backend starts files empty; hand it each file, in blocks of its
    // page size (what absurd-sql's IndexedDB backend keeps), as it is first opened.
    const pending = new Map();
    const create = backend.createFile.bind(backend);
    backend.createFile = (name) => {
      const file = create(name);
      const bytes = pending.get(name);
      if (bytes && !file.loaded) {
        pending.delete(name);
        file.loaded = true;
        const pageSize = (bytes[16] << 8) | bytes[17] || 65536;
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
    loaded.absurd = { SQL, backend, pending, files: 0 };
  }
  const { SQL, backend, pending } = loaded.absurd;
  const name = `db${loaded.absurd.files++}.sqlite`;
  pending.set(name, bytes);
  const db = new SQL.Database(`/sql/${name}`, { filename: true });
  // The web build's first statement on every open.
  db.exec("PRAGMA journal_mode=MEMORY;");
  const bytesOut = () => {
    const file = backend.getFile(name);
    file.fsync();
    return new Uint8Array(file.ops.data, 0, file.meta.size);
  };
  return { run: sqlJsRunner(db), close: () => db.close(), bytesOut };
}

async function openSqlJs(bytes) {
  if (!loaded.sqljs) {
    const initSqlJs = require("sql.js");
    loaded.sqljs = await initSqlJs({
      wasmBinary: fs.readFileSync(require.resolve("sql.js/dist/sql-wasm.wasm")),
    });
  }
  const db = new loaded.sqljs.Database(bytes);
  return { run: sqlJsRunner(db), close: () => db.close(), bytesOut: () => db.export() };
}

function openBetter(path) {
  const Database = require("better-sqlite3");
  const db = new Database(path);
  // As the Electron build sets its connection up.
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 15000");
  // One statement: its rows, or the engine's error; a script through exec.
  const run = (sql, params = [], script = false) => {
    try {
      if (script) {
        db.exec(sql);
        return { ok: true, rows: [] };
      }
      const stmt = db.prepare(sql);
      if (stmt.reader) return { ok: true, rows: stmt.raw(true).all(...params) };
      stmt.run(...params);
      return { ok: true, rows: [] };
    } catch (e) {
      return { ok: false, error: String(e.message || e), code: e.code };
    }
  };
  return { run, close: () => db.close(), bytesOut: null };
}

// One statement (or a whole script): its rows, or the engine's error.
function sqlJsRunner(db) {
  return (sql, params) => {
    try {
      const rows = db.exec(sql, params);
      return { ok: true, rows: rows.length ? rows[rows.length - 1].values : [] };
    } catch (e) {
      return { ok: false, error: String(e.message || e) };
    }
  };
}

async function runJob(engine, mode, input, output, reportPath, config) {
  let opened;
  try {
    if (engine === "better") {
      fs.copyFileSync(input, output);
      opened = openBetter(output);
    } else {
      const bytes = new Uint8Array(fs.readFileSync(input));
      opened = engine === "absurd" ? await openAbsurd(bytes) : await openSqlJs(bytes);
    }
  } catch (e) {
    const report = { engine, open_error: String(e.message || e), results: [], failures: [] };
    fs.writeFileSync(reportPath, JSON.stringify(report));
    return report;
  }
  const { run, close, bytesOut } = opened;
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
      if (mode === "preflight") {
        // The export's read-only query: a (step, token) row per step.
        const result = run(exported.preflight);
        if (result.ok) report.preflight = result.rows;
        else report.failures.push(`preflight: ${result.error}`);
      } else if (mode === "down") {
        revertSteps(exported.steps, run, report);
      } else {
        applySteps([...(config.app_steps || []), ...exported.steps], run, report);
      }
    }
    finalChecks(run, report);
  }
  if (bytesOut) fs.writeFileSync(output, bytesOut());
  close();
  fs.writeFileSync(reportPath, JSON.stringify(report));
  return report;
}

const args = process.argv.slice(2);
if (args[0] === "--as-engine") {
  // `--as-engine ENGINE IN OUT`: the form `idstore rehearse --engine` calls, applying
  // the export with the app's own 003 first; exits 1 when a step failed.
  const [, engine, input, output] = args;
  const config = {
    foreign_keys: true,
    export: new URL("../../export/app-migrations.json", import.meta.url).pathname,
    app_steps: [{
      name: "003_add_hasBackedUpSeed_to_settings",
      sql: "ALTER TABLE settings ADD COLUMN hasBackedUpSeed BOOLEAN DEFAULT FALSE",
    }],
  };
  const report = await runJob(engine, "apply", input, output, output + ".json", config);
  if (report.open_error || report.failures.length) {
    process.stderr.write(`${report.open_error || report.failures.join("; ")}\n`);
    process.exit(1);
  }
} else if (args[1] === "batch") {
  const jobs = JSON.parse(fs.readFileSync(args[2], "utf8"));
  for (const job of jobs) {
    await runJob(args[0], job.mode, job.input, job.output, job.report, job.config);
  }
} else {
  const [engine, mode, input, output, reportPath, config] = args;
  await runJob(engine, mode, input, output, reportPath, JSON.parse(config));
}
