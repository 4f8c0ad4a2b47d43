"""The app's native engines, for tests/suite/engines.rs: runs the app's statements
(app_suite.json) or applies idstore's exported migrations (export/app-migrations.json)
as the app's migration service does, on a copy of an encrypted database file.

    run_app_suite.py ENGINE MODE IN OUT REPORT CONFIG

    run_app_suite.py ENGINE batch JOBS   (JOBS: a JSON file, a list of
                                          { mode, input, output, report, config })

ENGINE: "sqlcipher" is SQLCipher 4 (PyPI sqlcipher3-binary), as the iOS and Android
builds open the file; "sqlite3mc" is SQLite3 Multiple Ciphers (PyPI apsw-sqlite3mc)
in SQLCipher mode (`cipher=sqlcipher`, `legacy=4`), as Electron's
better-sqlite3-multiple-ciphers opens it. MODE: "suite", "apply" (the app's migration
service running the steps) or "down" (its rollback). CONFIG: JSON,
{ step, foreign_keys, dids, suite, export, key }. The rules are those of
suite_rules.mjs, for the JavaScript engines. Writes the report (JSON) to REPORT.
"""
import json
import shutil
import sys

INVARIANT = (
    "SELECT (SELECT count(*) FROM active_identity), "
    "(SELECT count(*) FROM active_identity WHERE activeDid = '' OR (activeDid IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM accounts WHERE did = active_identity.activeDid)))"
)


def quoted(text):
    return "'" + text.replace("'", "''") + "'"


def open_sqlcipher(path, key):
    import sqlcipher3

    conn = sqlcipher3.connect(path, isolation_level=None)
    conn.execute("PRAGMA key = " + quoted(key))

    def run(sql, params=(), script=False):
        try:
            if script:
                conn.executescript(sql)
                return {"ok": True, "rows": []}
            return {"ok": True, "rows": [list(r) for r in conn.execute(sql, params).fetchall()]}
        except Exception as e:  # the engine's own error, reported as the app sees it
            return {"ok": False, "error": str(e)}

    return run, conn.close


def open_sqlite3mc(path, key):
    import apsw

    conn = apsw.Connection(path)
    conn.execute("PRAGMA cipher = 'sqlcipher'")
    conn.execute("PRAGMA legacy = 4")
    conn.execute("PRAGMA key = " + quoted(key))

    def run(sql, params=(), script=False):
        try:
            return {"ok": True, "rows": [list(r) for r in conn.execute(sql, params).fetchall()]}
        except Exception as e:
            return {"ok": False, "error": str(e)}

    return run, conn.close


def bind(value, dids):
    if isinstance(value, str) and value.startswith("$"):
        return "1" if value == "$MASTER" else dids[value[1:]]
    return value


def recorded(run, name):
    r = run("SELECT count(*) FROM migrations WHERE name = ?", (name,))
    return r["ok"] and bool(r["rows"]) and r["rows"][0][0] > 0


def record(run, name):
    # The service's own table, where it has one of its shape.
    has = run("SELECT count(*) FROM pragma_table_info('migrations') WHERE name IN ('name', 'applied_at')")
    if has["ok"] and has["rows"][0][0] == 2:
        return run("INSERT INTO migrations (name, applied_at) VALUES (?, datetime('now'))", (name,))
    return {"ok": True}


def forget(run, name):
    has = run("SELECT count(*) FROM pragma_table_info('migrations') WHERE name = 'name'")
    if has["ok"] and has["rows"][0][0] > 0:
        return run("DELETE FROM migrations WHERE name = ?", (name,))
    return {"ok": True}


def token_of(result):
    import re

    m = not result["ok"] and re.match(r"idstore:([a-z_]+): ", result["error"])
    return m.group(1) if m else None


def pointer(run):
    r = run("SELECT activeDid FROM active_identity WHERE id = 1")
    return r["rows"][0][0] if r["ok"] and r["rows"] else "<no pointer row>"


def check_statement(st, config, run, report):
    if "steps" in st and config["step"] not in st["steps"]:
        return
    params = tuple(bind(p, config["dids"]) for p in st.get("params", []))
    if st.get("service_step") and recorded(run, st["service_step"]):
        result = {"ok": True, "skipped": "recorded as applied"}
    else:
        result = run(st["sql"], params)
        # The changed-row count, read before anything else runs.
        if result["ok"] and "changes" in st:
            result["changes"] = run("SELECT changes()")["rows"][0][0]
        if result["ok"] and st.get("service_step"):
            record(run, st["service_step"])
    report["results"].append({"name": st["name"], **result})
    fail = lambda why: report["failures"].append(f"{st['name']}: {why}")
    if st["expect"] == "ok" and not result["ok"]:
        fail("failed: " + result["error"])
    if st["expect"] == "refused" and result["ok"]:
        fail("succeeded, but must be refused")
    if st.get("token") and not result["ok"] and not result["error"].startswith(f"idstore:{st['token']}: "):
        fail(f"refused without its token idstore:{st['token']}: {result['error']}")
    if "changes" in st and result["ok"] and result["changes"] != st["changes"]:
        fail(f"reported {result['changes']} changed row(s), not {st['changes']}")
    if "pointer" in st:
        want = None if st["pointer"] is None else bind(st["pointer"], config["dids"])
        got = pointer(run)
        if got != want:
            fail(f"pointer is {got!r}, not {want!r}")
    inv = run(INVARIANT)
    if not inv["ok"] or inv["rows"][0] != [1, 0]:
        fail(f"the pointer row is missing or dangling: {inv}")


def in_transaction(run, sql, after):
    """One step's SQL and its record, in one transaction, as the service runs a step
    (executescript would commit first)."""
    result = run("BEGIN;\n" + sql + ";\n", script=True)
    if result["ok"]:
        result = after()
    run("COMMIT" if result["ok"] else "ROLLBACK")
    return result


def apply_steps(steps, run, report):
    """The app's migration service, as suite_rules.mjs's applySteps describes it."""
    for step in steps:
        if recorded(run, step["name"]):
            report["results"].append({"name": step["name"], "ok": True, "skipped": "recorded as applied"})
            continue
        result = in_transaction(run, step["sql"], lambda: record(run, step["name"]))
        token = token_of(result)
        report["results"].append({"name": step["name"], **result, "token": token})
        if not result["ok"] and token == "already_applied":
            record(run, step["name"])
            continue
        if not result["ok"]:
            report["failures"].append(f"{step['name']}: {result['error']}")
            report["refused"] = {"step": step["name"], "token": token, "error": result["error"]}
            return


def revert_steps(steps, run, report):
    """The app's rollback, as suite_rules.mjs's revertSteps describes it."""
    for step in reversed(steps):
        if step["version"] == "00000000000000":
            continue
        has = run("SELECT count(*) FROM __diesel_schema_migrations WHERE version = ?", (step["version"],))
        if not has["ok"] or has["rows"][0][0] == 0:
            continue
        result = in_transaction(run, step["down"], lambda: forget(run, step["name"]))
        token = token_of(result)
        report["results"].append({"name": step["name"], **result, "token": token})
        if not result["ok"]:
            report["failures"].append(f"{step['name']}: {result['error']}")
            report["refused"] = {"step": step["name"], "token": token, "error": result["error"]}
            return


def final_checks(run, report):
    integrity = run("PRAGMA integrity_check")
    report["integrity"] = (
        "; ".join(r[0] for r in integrity["rows"]) if integrity["ok"] else integrity["error"]
    )
    if report["integrity"] != "ok":
        report["failures"].append("integrity_check: " + report["integrity"])
    fk = run("PRAGMA foreign_key_check")
    if not fk["ok"] or fk["rows"]:
        report["failures"].append(f"foreign_key_check: {fk}")
    report["pointer"] = pointer(run)


def run_job(engine, mode, src, out, report_path, config):
    shutil.copyfile(src, out)
    opener = open_sqlcipher if engine == "sqlcipher" else open_sqlite3mc
    run, close = opener(out, config["key"])
    version = run("SELECT sqlite_version()")
    report = {"engine": engine, "results": [], "failures": []}
    if not version["ok"]:
        report["open_error"] = version["error"]
    else:
        report["version"] = version["rows"][0][0]
        if engine == "sqlite3mc":
            # apsw executes several statements in one call.
            script_run = run
            run = lambda sql, params=(), script=False: script_run(sql, params)
        run("PRAGMA foreign_keys = " + ("ON" if config["foreign_keys"] else "OFF"))
        report["foreign_keys"] = run("PRAGMA foreign_keys")["rows"][0][0]
        if mode == "suite":
            with open(config["suite"], encoding="utf-8") as f:
                suite = json.load(f)
            for st in suite["statements"]:
                check_statement(st, config, run, report)
        else:
            with open(config["export"], encoding="utf-8") as f:
                exported = json.load(f)
            if mode == "preflight":
                result = run(exported["preflight"])
                if result["ok"]:
                    report["preflight"] = result["rows"]
                else:
                    report["failures"].append("preflight: " + result["error"])
            elif mode == "down":
                revert_steps(exported["steps"], run, report)
            else:
                apply_steps(config.get("app_steps", []) + exported["steps"], run, report)
        final_checks(run, report)
    close()
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(report, f)


def main():
    if sys.argv[2] == "batch":
        with open(sys.argv[3], encoding="utf-8") as f:
            for job in json.load(f):
                run_job(sys.argv[1], job["mode"], job["input"], job["output"], job["report"], job["config"])
        return
    engine, mode, src, out, report_path, config = sys.argv[1:7]
    run_job(engine, mode, src, out, report_path, json.loads(config))


if __name__ == "__main__":
    main()
