"""An independent SQLCipher (the PyPI package sqlcipher3-binary, SQLCipher 4.x) for
tests/sqlcipher.rs: it writes encrypted legacy files as the app's storage plugin
would, and reads back what idstore left, with the same key.

    make PATH KEY SCHEMA_SQL [3]   write an encrypted legacy file (3: SQLCipher 3 settings)
    inspect PATH KEY [3]           print the file's shape and rows as JSON
"""
import json
import sys

import sqlcipher3

DID_A = "did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01"
DID_B = "did:ethr:0x1234567890AbCdEf1234567890aBcDeF12345678"


def connect(path, key, compat):
    conn = sqlcipher3.connect(path, isolation_level=None)
    # Bound as a literal the way apps do; a quote in the key is doubled.
    conn.execute("PRAGMA key = '%s'" % key.replace("'", "''"))
    if compat:
        conn.execute("PRAGMA cipher_compatibility = %d" % int(compat))
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return conn


def make(path, key, schema_file, compat=None):
    conn = connect(path, key, compat)
    with open(schema_file, encoding="utf-8") as f:
        conn.executescript(f.read())
    # The app's later migration, which current builds have run.
    conn.execute("ALTER TABLE settings ADD COLUMN hasBackedUpSeed BOOLEAN DEFAULT FALSE")
    conn.executescript(
        f"""
        INSERT INTO accounts (dateCreated, did, identityEncrBase64, mnemonicEncrBase64, publicKeyHex)
          VALUES ('2024-03-01T12:00:00.000Z', '{DID_A}', 'aWQtYTE=', 'bW5lLWEx', '02a1'),
                 ('2024-03-02T12:00:00.000Z', '{DID_B}', 'aWQtYjE=', 'bW5lLWIx', '02b1'),
                 ('2024-03-03T12:00:00.000Z', '{DID_A}', 'aWQtYTI=', 'bW5lLWEy', '02a2');
        INSERT INTO settings (id, activeDid, apiServer, firstName, searchBoxes)
          VALUES (1, '{DID_B}', 'https://api.endorser.ch', 'Me', '[]');
        INSERT INTO settings (accountDid, firstName) VALUES ('{DID_A}', 'Override A');
        INSERT INTO contacts (did, name) VALUES ('did:ethr:0x9999999999999999999999999999999999999999', 'Ann');
        """
    )
    conn.close()


def inspect(path, key, compat=None):
    with open(path, "rb") as f:
        plain = f.read(16) == b"SQLite format 3\x00"
    conn = connect(path, key, compat)
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    rows = {}
    for t in tables:
        if t == "__diesel_schema_migrations":
            continue
        cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')]
        keep = [c for c in cols if c not in ("lastUpdated", "quarantinedAt", "archivedAt", "decidedAt", "savedAt")]
        q = "SELECT %s FROM \"%s\" ORDER BY 1" % (", ".join(f'"{c}"' for c in keep), t)
        rows[t] = [list(r) for r in conn.execute(q)]
    settings_cols = [r[1] for r in conn.execute("PRAGMA table_info(settings)")]
    pointer = None
    if "active_identity" in tables:
        row = conn.execute("SELECT activeDid FROM active_identity WHERE id = 1").fetchone()
        pointer = row[0] if row else None
    print(json.dumps({
        "plain_header": plain,
        "cipher_version": conn.execute("PRAGMA cipher_version").fetchone()[0],
        "tables": tables,
        "settings_columns": settings_cols,
        "pointer": pointer,
        "integrity": conn.execute("PRAGMA integrity_check").fetchone()[0],
        "rows": rows,
    }))
    conn.close()


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        make(*args)
    elif cmd == "inspect":
        inspect(*args)
    else:
        sys.exit(f"unknown command {cmd}")
