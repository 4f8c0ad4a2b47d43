#!/usr/bin/env python3
"""Refreshes audit/advisory-db, the snapshot of the RustSec advisory database that CI
audits the lock files against (CI cannot reach GitHub, where the database lives).

    git clone https://github.com/rustsec/advisory-db /tmp/advisory-db
    python3 scripts/refresh_advisories.py /tmp/advisory-db

It keeps every advisory of every crate in Cargo.lock and fuzz/Cargo.lock, and the
names of all the crates the database has advisories for (NAMES), so that
scripts/check_deps.py can tell when a new dependency has advisories the snapshot
lacks: then run this again. The checkout may be a work tree or a bare clone.
"""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "audit" / "advisory-db"
LOCKS = [ROOT / "Cargo.lock", ROOT / "fuzz" / "Cargo.lock"]


def locked_names():
    """The crates from a registry in the lock files (the workspace's own left out)."""
    import tomllib

    names = set()
    for lock in LOCKS:
        for package in tomllib.loads(lock.read_text())["package"]:
            if "source" in package:
                names.add(package["name"])
    return names


def git(db, *args):
    return subprocess.run(
        ["git", "-C", str(db), *args], check=True, capture_output=True, text=True
    ).stdout


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    db = Path(sys.argv[1])
    commit, date = git(db, "log", "-1", "--format=%H %cs", "HEAD").split()
    files = git(db, "ls-tree", "-r", "--name-only", "HEAD", "crates").split()
    files = [f for f in files if f.endswith(".md")]
    by_name = {}
    for f in files:
        parts = f.split("/")
        if len(parts) == 3 and parts[2].endswith(".md"):
            by_name.setdefault(parts[1], []).append(f)
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "crates").mkdir(parents=True)
    kept = 0
    for name in sorted(locked_names() & by_name.keys()):
        (OUT / "crates" / name).mkdir()
        for f in by_name[name]:
            text = git(db, "show", f"HEAD:{f}")
            (OUT / f).write_text(text)
            kept += 1
    (OUT / "NAMES").write_text("".join(f"{n}\n" for n in sorted(by_name)))
    (OUT / "SNAPSHOT").write_text(
        f"rustsec/advisory-db {commit} ({date}): {len(files)} advisories for "
        f"{len(by_name)} crates; {kept} kept here, those of the locked crates\n"
    )
    print((OUT / "SNAPSHOT").read_text(), end="")


if __name__ == "__main__":
    main()
