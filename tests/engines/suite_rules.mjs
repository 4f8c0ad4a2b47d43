// What app_suite.json asks of each statement, for the JavaScript engines
// (run_app_suite.py holds the same rules for the Python ones). `run(sql, params)`
// returns { ok, rows } or { ok: false, error }.

export const INVARIANT =
  "SELECT (SELECT count(*) FROM active_identity), " +
  "(SELECT count(*) FROM active_identity WHERE activeDid = '' OR (activeDid IS NOT NULL " +
  "AND NOT EXISTS (SELECT 1 FROM accounts WHERE did = active_identity.activeDid)))";

function bind(value, dids) {
  if (typeof value === "string" && value.startsWith("$")) {
    const name = value.slice(1);
    if (name === "MASTER") return "1";
    if (!(name in dids)) throw new Error(`unknown bind ${value}`);
    return dids[name];
  }
  return value;
}

function recorded(run, name) {
  const r = run("SELECT count(*) FROM migrations WHERE name = ?", [name]);
  return r.ok && r.rows.length > 0 && r.rows[0][0] > 0;
}

function record(run, name) {
  // The service's own table, where it has one of its shape.
  const has = run("SELECT count(*) FROM pragma_table_info('migrations') WHERE name IN ('name', 'applied_at')");
  if (has.ok && has.rows[0][0] === 2) {
    return run("INSERT INTO migrations (name, applied_at) VALUES (?, datetime('now'))", [name]);
  }
  return { ok: true };
}

function pointer(run) {
  const r = run("SELECT activeDid FROM active_identity WHERE id = 1");
  return r.ok && r.rows.length ? r.rows[0][0] : undefined;
}

export function checkStatement(st, config, run, report) {
  if (st.steps && !st.steps.includes(config.step)) return;
  const params = (st.params || []).map((p) => bind(p, config.dids));
  let result;
  if (st.service_step && recorded(run, st.service_step)) {
    result = { ok: true, skipped: "recorded as applied" };
  } else {
    result = run(st.sql, params);
    // The changed-row count, read before anything else runs.
    if (result.ok && "changes" in st) result.changes = run("SELECT changes()").rows[0][0];
    if (result.ok && st.service_step) record(run, st.service_step);
  }
  report.results.push({ name: st.name, ...result });
  const fail = (why) => report.failures.push(`${st.name}: ${why}`);
  if (st.expect === "ok" && !result.ok) fail(`failed: ${result.error}`);
  if (st.expect === "refused" && result.ok) fail("succeeded, but must be refused");
  if (st.token && !result.ok && !result.error.startsWith(`idstore:${st.token}: `)) {
    fail(`refused without its token idstore:${st.token}: ${result.error}`);
  }
  if ("changes" in st && result.ok && result.changes !== st.changes) {
    fail(`reported ${result.changes} changed row(s), not ${st.changes}`);
  }
  if ("pointer" in st) {
    const want = st.pointer === null ? null : bind(st.pointer, config.dids);
    const got = pointer(run);
    if (got !== want) fail(`pointer is ${JSON.stringify(got)}, not ${JSON.stringify(want)}`);
  }
  const inv = run(INVARIANT);
  if (!inv.ok || inv.rows[0][0] !== 1 || inv.rows[0][1] !== 0) {
    fail(`the pointer row is missing or dangling: ${JSON.stringify(inv)}`);
  }
}

// The app's migration service: each step not yet recorded by name runs once, its
// whole SQL in one transaction, then its name is recorded; a step refused with
// idstore:already_applied (the file has it, from idstore's own runner) is recorded
// and passed; any other failure is rolled back and the run stops, to try again at
// the next launch. Each result is reported with its token, when it has one.
export function applySteps(steps, run, report) {
  for (const step of steps) {
    if (recorded(run, step.name)) {
      report.results.push({ name: step.name, ok: true, skipped: "recorded as applied" });
      continue;
    }
    run("BEGIN");
    let result = run(step.sql, [], true);
    if (result.ok) result = record(run, step.name);
    run(result.ok ? "COMMIT" : "ROLLBACK");
    const token = tokenOf(result);
    report.results.push({ name: step.name, ...result, token });
    if (!result.ok && token === "already_applied") {
      record(run, step.name);
      continue;
    }
    if (!result.ok) {
      report.failures.push(`${step.name}: ${result.error}`);
      report.refused = { step: step.name, token, error: result.error };
      return;
    }
  }
}

// The app's rollback: the down of each step idstore's record says is applied,
// newest first, each in one transaction with its name forgotten; the baseline is
// kept (its down refuses a file with data). Stops at the first failure.
export function revertSteps(steps, run, report) {
  for (const step of [...steps].reverse()) {
    if (step.version === "00000000000000") continue;
    const has = run("SELECT count(*) FROM __diesel_schema_migrations WHERE version = ?", [step.version]);
    if (!has.ok || has.rows[0][0] === 0) continue;
    run("BEGIN");
    let result = run(step.down, [], true);
    if (result.ok) result = forget(run, step.name);
    run(result.ok ? "COMMIT" : "ROLLBACK");
    const token = tokenOf(result);
    report.results.push({ name: step.name, ...result, token });
    if (!result.ok) {
      report.failures.push(`${step.name}: ${result.error}`);
      report.refused = { step: step.name, token, error: result.error };
      return;
    }
  }
}

function tokenOf(result) {
  const m = !result.ok && /^idstore:([a-z_]+): /.exec(result.error);
  return m ? m[1] : null;
}

function forget(run, name) {
  const has = run("SELECT count(*) FROM pragma_table_info('migrations') WHERE name = 'name'");
  if (has.ok && has.rows[0][0] > 0) {
    return run("DELETE FROM migrations WHERE name = ?", [name]);
  }
  return { ok: true };
}

export function finalChecks(run, report) {
  const integrity = run("PRAGMA integrity_check");
  report.integrity = integrity.ok ? integrity.rows.map((r) => r[0]).join("; ") : integrity.error;
  if (report.integrity !== "ok") report.failures.push(`integrity_check: ${report.integrity}`);
  const fk = run("PRAGMA foreign_key_check");
  if (!fk.ok || fk.rows.length) report.failures.push(`foreign_key_check: ${JSON.stringify(fk)}`);
  report.pointer = pointer(run) ?? null;
}
