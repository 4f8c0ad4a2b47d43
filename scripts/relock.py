#!/usr/bin/env python3
"""Adds the steps export/app-migrations.json has and export/steps.lock lacks to the
lock, each as `name sql-sha256 down-sha256` (the SHA-256 of the step's UTF-8 text,
computed here and checked against the export's own checksums).

    cargo run -q -- generate app-migrations > export/app-migrations.json
    python3 scripts/relock.py            # appends the new steps' lines
    python3 scripts/relock.py --check    # changes nothing; exits 1 if it would

A shipped step is never edited, so this never rewrites a line: a locked step whose
text changed, or one gone from the export, is refused (exit 1, naming it), as the
test that holds the lock (tests/suite/engines.rs,
`shipped_steps_are_frozen_by_the_lock_file`) would. Add a new step instead.
"""
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPORT = ROOT / "export" / "app-migrations.json"
LOCK = ROOT / "export" / "steps.lock"


def sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def main(argv):
    check = argv[1:] == ["--check"]
    if argv[1:] and not check:
        sys.exit(__doc__)
    steps = json.loads(EXPORT.read_text(encoding="utf-8"))["steps"]
    text = LOCK.read_text(encoding="utf-8")
    locked = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, sql, down = line.split()
        locked[name] = (sql, down)
    problems, new = [], []
    for step in steps:
        name = step["name"]
        sums = (sha256(step["sql"]), sha256(step["down"]))
        if sums != (step["sqlSha256"], step["downSha256"]):
            problems.append(f"{name}: the export's checksums are not those of its text: "
                            "regenerate export/app-migrations.json")
        elif name not in locked:
            new.append(f"{name} {sums[0]} {sums[1]}\n")
        elif locked[name] != sums:
            problems.append(f"{name} changed after it shipped: a shipped step is never "
                            "edited; put its up.sql and down.sql back and add a new step")
    names = {s["name"] for s in steps}
    for name in locked:
        if name not in names:
            problems.append(f"{name}, shipped, is gone from the export")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    if check:
        for line in new:
            print(f"not locked yet: {line.split()[0]}", file=sys.stderr)
        return 1 if new else 0
    if new:
        if not text.endswith("\n"):
            text += "\n"
        LOCK.write_text(text + "".join(new), encoding="utf-8")
    for line in new:
        print(f"locked {line.split()[0]}")
    print(f"export/steps.lock: {len(locked) + len(new)} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
