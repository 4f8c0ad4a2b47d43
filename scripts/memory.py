#!/usr/bin/env python3
"""Peak memory (RSS) of `idstore migrate`, `check` and `repair` on legacy files of
50k, 200k and 800k settings rows, plain and encrypted: the figures in BENCHMARKS.md.

    cargo build --release && python3 scripts/memory.py [ROWS...]

Each run is one child process, measured by GNU time (`/usr/bin/time -f %M`, the
kernel's ru_maxrss of that process alone; Debian's `time` package). Measuring from
Python itself would count the Python process's own pages, which a forked child
carries until it runs idstore. Python's sqlite3 module writes the files.
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# IDSTORE_BIN measures another build (an older one, side by side).
BIN = os.environ.get("IDSTORE_BIN") or os.path.join(ROOT, "target", "release", "idstore")
SCHEMA = os.path.join(ROOT, "fixtures", "legacy_app_schema.sql")
KEY = "x'2DD29CA851E7B56E4697B0E1F08507293D761A05CE4D1B628663F411A8086D99'"


def legacy(path, rows):
    """A legacy file like tests/reliability.rs's: rows settings rows, rows/10
    accounts, one in twenty duplicated with other key material."""
    accounts = max(rows // 10, 2)
    conn = sqlite3.connect(path)
    with open(SCHEMA, encoding="utf-8") as f:
        conn.executescript(f.read())
    conn.executescript(
        f"""
        BEGIN;
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {accounts})
        INSERT INTO accounts (dateCreated, did, identityEncrBase64, mnemonicEncrBase64, publicKeyHex)
        SELECT printf('2024-01-01T00:00:%02d.%03dZ', i / 1000 % 60, i % 1000),
               printf('did:ethr:0x%040x', i), printf('aWQt%d', i), printf('bW5l%d', i), printf('02%04x', i)
          FROM n;
        INSERT INTO accounts (dateCreated, did, identityEncrBase64, publicKeyHex)
        SELECT '2025-01-01T00:00:00.000Z', did, 'other-' || id, '03ff' FROM accounts WHERE id % 20 = 0;
        INSERT INTO settings (id, activeDid, apiServer, firstName)
        VALUES (1, printf('did:ethr:0x%040x', 1), 'https://api.endorser.ch', 'Master');
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {rows})
        INSERT INTO settings (accountDid, activeDid, firstName, isRegistered, searchBoxes)
        SELECT printf('did:ethr:0x%040x', i % {accounts}), CASE WHEN i % 7 = 0 THEN '' END,
               'override ' || i, i % 2, '[]'
          FROM n;
        COMMIT;
        """
    )
    conn.close()


def peak_kib(args, key=None, new_key=None):
    """Runs idstore ARGS under GNU time; returns (exit status, peak RSS in KiB, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSTORE_")}
    if key:
        env["IDSTORE_KEY"] = key
    if new_key:
        env["IDSTORE_NEW_KEY"] = new_key
    with tempfile.NamedTemporaryFile("r") as out:
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", out.name, BIN, *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        kib = int(out.read().strip().splitlines()[-1])
    return proc.returncode, kib, proc.stderr


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [50_000, 200_000, 800_000]
    if not os.access(BIN, os.X_OK):
        sys.exit(f"build it first: cargo build --release ({BIN})")
    if not os.access("/usr/bin/time", os.X_OK):
        sys.exit("needs GNU time: apt-get install time")
    print("| rows | file | migrate | check | repair | encrypted: migrate | check | repair |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            source = os.path.join(tmp, f"legacy-{rows}.sqlite")
            legacy(source, rows)
            size_mb = os.path.getsize(source) / 2**20
            cells = []
            for key in (None, KEY):
                db = os.path.join(tmp, "work.sqlite")
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(db + suffix):
                        os.remove(db + suffix)
                shutil.copy(source, db)
                if key:
                    code, _, err = peak_kib(["--db", db, "encrypt", "--no-backup", "-q"], new_key=key)
                    assert code == 0, err
                for args in (["migrate", "--no-backup", "-q"], ["check", "-q"], ["repair", "-q"]):
                    code, kib, err = peak_kib(["--db", db, *args], key=key)
                    # check exits 1 when quarantined rows wait for a decision.
                    assert code in (0, 1), f"{args}: {err}"
                    assert "error" not in err or "wait for a decision" in err, f"{args}: {err}"
                    cells.append(f"{kib / 1024:.1f} MiB")
            print(f"| {rows:,} | {size_mb:.0f} MB | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
