#!/usr/bin/env python3
"""Backups two ways, for BENCHMARKS.md: SQLite's backup API against VACUUM INTO.

    python3 scripts/backup_bench.py make DIR        # DIR/ordinary.sqlite, DIR/many.sqlite
    python3 scripts/backup_bench.py backup SRC DST  # one copy through the backup API
    python3 scripts/backup_bench.py vacuum SRC DST  # one copy through VACUUM INTO

Each copy is taken as idstore takes its backup: by a second connection while the
first holds the write lock (BEGIN IMMEDIATE), the copy written without a journal,
then the copy and its folder synced. Time a
pair side by side, for example with hyperfine:

    hyperfine -w1 'python3 scripts/backup_bench.py backup D/many.sqlite D/b.sqlite' \
                  'python3 scripts/backup_bench.py vacuum D/many.sqlite D/v.sqlite'

`ordinary.sqlite` is the legacy demo file's shape grown to about 60 KB (three
identities, their settings, a contacts table); `many.sqlite` is the same with
10,000 extra tables, each with an index and three rows.
"""

import os
import sqlite3
import sys

LEGACY = """
CREATE TABLE accounts (id INTEGER PRIMARY KEY AUTOINCREMENT, dateCreated TEXT NOT NULL,
  derivationPath TEXT, did TEXT NOT NULL, identityEncrBase64 TEXT, mnemonicEncrBase64 TEXT,
  passkeyCredIdHex TEXT, publicKeyHex TEXT NOT NULL);
CREATE INDEX idx_accounts_did ON accounts(did);
CREATE TABLE settings (id INTEGER PRIMARY KEY AUTOINCREMENT, accountDid TEXT, activeDid TEXT,
  apiServer TEXT, filterFeedByNearby BOOLEAN, filterFeedByVisible BOOLEAN, finishedOnboarding BOOLEAN,
  firstName TEXT, hideRegisterPromptOnNewContact BOOLEAN, isRegistered BOOLEAN, lastName TEXT,
  lastAckedOfferToUserJwtId TEXT, lastAckedOfferToUserProjectsJwtId TEXT, lastNotifiedClaimId TEXT,
  lastViewedClaimId TEXT, notifyingNewActivityTime TEXT, notifyingReminderMessage TEXT,
  notifyingReminderTime TEXT, partnerApiServer TEXT, passkeyExpirationMinutes INTEGER,
  profileImageUrl TEXT, searchBoxes TEXT, showContactGivesInline BOOLEAN,
  showGeneralAdvanced BOOLEAN, showShortcutBvc BOOLEAN, vapid TEXT,
  warnIfProdServer BOOLEAN, warnIfTestServer BOOLEAN, webPushServer TEXT);
CREATE INDEX idx_settings_accountDid ON settings(accountDid);
CREATE TABLE contacts (id INTEGER PRIMARY KEY AUTOINCREMENT, did TEXT NOT NULL, name TEXT,
  contactMethods TEXT, nextPubKeyHashB64 TEXT, notes TEXT, profileImageUrl TEXT,
  publicKeyBase64 TEXT, seesMe BOOLEAN, registered BOOLEAN);
"""


def make(folder):
    os.makedirs(folder, exist_ok=True)
    for name, extra in (("ordinary.sqlite", 0), ("many.sqlite", 10_000)):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            os.remove(path)
        db = sqlite3.connect(path)
        db.executescript(LEGACY)
        dids = [f"did:ethr:0x{n:040x}" for n in (0xA11CE, 0xB0B, 0xCA201)]
        for n, did in enumerate(dids):
            db.execute(
                "INSERT INTO accounts (dateCreated, derivationPath, did, mnemonicEncrBase64, publicKeyHex)"
                " VALUES ('2024-03-01T12:00:00.000Z', ?, ?, ?, ?)",
                (f"m/84737769'/0'/0'/{n}'", did, "x" * 400, "02" + "ab" * 32),
            )
        db.execute(
            "INSERT INTO settings (activeDid, apiServer, firstName) VALUES (?, 'https://api.example', 'Ada')",
            (dids[0],),
        )
        for did in dids:
            db.execute("INSERT INTO settings (accountDid, firstName) VALUES (?, 'Ada')", (did,))
        for n in range(120):
            db.execute(
                "INSERT INTO contacts (did, name, notes) VALUES (?, ?, ?)",
                (f"did:ethr:0x{n + 1:040x}", f"contact {n}", "n" * 200),
            )
        for t in range(extra):
            db.execute(f"CREATE TABLE extra_{t} (id INTEGER PRIMARY KEY, v TEXT)")
            db.execute(f"CREATE INDEX extra_{t}_v ON extra_{t}(v)")
            db.executemany(f"INSERT INTO extra_{t} (v) VALUES (?)", [(f"v{t}-{i}",) for i in range(3)])
        db.commit()
        db.close()
        print(f"{path}: {os.path.getsize(path)} bytes")


def sync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy(mode, src, dst):
    for stale in (dst, dst + "-journal"):
        if os.path.exists(stale):
            os.remove(stale)
    db = sqlite3.connect(src, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    # Neither can read through a connection holding a write transaction (VACUUM
    # refuses to run inside one, and the backup API waits on it), so a second
    # connection reads while the first holds the lock: nobody can commit between.
    reader = sqlite3.connect(src, isolation_level=None)
    if mode == "backup":
        out = sqlite3.connect(dst, isolation_level=None)
        out.execute("PRAGMA journal_mode = OFF")
        out.execute("PRAGMA synchronous = OFF")
        reader.backup(out)
        out.close()
    else:
        reader.execute("VACUUM INTO ?", (dst,))
    reader.close()
    sync(dst)
    sync(os.path.dirname(os.path.abspath(dst)))
    db.execute("ROLLBACK")
    db.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] in ("backup", "vacuum"):
        copy(*sys.argv[1:])
    else:
        sys.exit(__doc__)
