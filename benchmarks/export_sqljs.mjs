// Times idstore's exported steps as the app's web build runs them: @jlongster/sql.js
// 1.6.7 (SQLite 3.35.0), each step in its own transaction, as the app's migration
// service runs it. Needs the engines of tests/engines (`npm ci` there).
//
//   node benchmarks/export_sqljs.mjs make LEGACY ROWS        a legacy file of ROWS settings rows
//                                                            (the master and overrides over ROWS/10
//                                                            accounts, a tenth of them twice)
//   node benchmarks/export_sqljs.mjs run EXPORT LEGACY RUNS  each run on a fresh copy in memory;
//                                                            prints the first (cold) run's milliseconds,
//                                                            the others' and their median
import fs from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(new URL("../tests/engines/package.json", import.meta.url));
const [mode, ...args] = process.argv.slice(2);

async function sqljs() {
  const init = require("@jlongster/sql.js");
  return init({ wasmBinary: fs.readFileSync(require.resolve("@jlongster/sql.js/dist/sql-wasm.wasm")) });
}

if (mode === "make") {
  const [path, rowsText] = args;
  const rows = Number(rowsText);
  const SQL = await sqljs();
  const db = new SQL.Database();
  db.exec(fs.readFileSync(new URL("../crates/repo/fixtures/legacy_app_schema.sql", import.meta.url), "utf8"));
  db.exec("ALTER TABLE settings ADD COLUMN hasBackedUpSeed BOOLEAN DEFAULT FALSE");
  const accounts = Math.max(1, Math.floor(rows / 10));
  const did = (i) => "did:ethr:0x" + i.toString(16).padStart(40, "0");
  db.exec("BEGIN");
  const acc = db.prepare("INSERT INTO accounts (dateCreated, did, identityEncrBase64, publicKeyHex) VALUES ('2024-01-01T00:00:00.000Z', ?, 'c2VjcmV0', '02ab')");
  for (let i = 0; i < accounts; i++) acc.run([did(i)]);
  // A tenth of the identities stored twice, as real files have them.
  for (let i = 0; i < accounts; i += 10) acc.run([did(i)]);
  acc.free();
  db.run("INSERT INTO settings (id, activeDid, apiServer, firstName) VALUES (1, ?, 'https://api.endorser.ch', 'Master')", [did(0)]);
  const over = db.prepare("INSERT INTO settings (accountDid, firstName, isRegistered, searchBoxes) VALUES (?, 'override', 1, '[]')");
  for (let i = 1; i < rows; i++) over.run([did(i % accounts)]);
  over.free();
  db.exec("COMMIT");
  fs.writeFileSync(path, db.export());
} else if (mode === "run") {
  const [exportPath, path, runsText] = args;
  const steps = JSON.parse(fs.readFileSync(exportPath, "utf8")).steps;
  const bytes = new Uint8Array(fs.readFileSync(path));
  const SQL = await sqljs();
  const times = [];
  for (let r = 0; r < Number(runsText || 5); r++) {
    const db = new SQL.Database(bytes);
    db.exec("PRAGMA foreign_keys = OFF");
    const start = process.hrtime.bigint();
    for (const step of steps) {
      db.exec("BEGIN");
      db.exec(step.sql);
      db.exec("COMMIT");
    }
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
    db.close();
  }
  // The first run meets a cold engine (its code compiled as it first runs, as in an
  // app that starts by migrating); the others a warm one (an app that ran its own
  // statements first).
  const warm = times.slice(1).sort((a, b) => a - b);
  const median = warm.length ? warm[Math.floor(warm.length / 2)] : times[0];
  console.log(`cold ${times[0].toFixed(1)} ms; warm ${times.slice(1).map((t) => t.toFixed(1)).join(" ")} ms; warm median ${median.toFixed(1)} ms`);
} else {
  console.error("usage: export_sqljs.mjs make LEGACY ROWS | run EXPORT LEGACY RUNS");
  process.exit(2);
}
