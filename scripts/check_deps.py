#!/usr/bin/env python3
"""What idstore promises about its dependencies, checked against Cargo.lock without
the network (CI runs it):

- the minimum Rust version: no locked package declares a `rust-version` newer than
  the workspace's (clippy's `incompatible_msrv` lint checks idstore's own use of
  the standard library against the same version);
- licences: every locked package's licence expression is satisfied by the licences
  below, all of which allow use in a closed or open product without copyleft on
  idstore's own code (MPL-2.0 is file-level);
- the advisory snapshot (audit/advisory-db, which `cargo audit` reads in CI) holds
  every advisory the RustSec database had, when it was taken, for each locked
  crate: a new dependency with advisories of its own means refreshing it
  (scripts/refresh_advisories.py).

    python3 scripts/check_deps.py        # exits 1 and names the offenders
"""
import json
import re
from pathlib import Path

from refresh_advisories import locked_names
import subprocess
import sys

ALLOWED = {
    "MIT", "Apache-2.0", "Apache-2.0 WITH LLVM-exception", "BSD-2-Clause",
    "BSD-3-Clause", "ISC", "Zlib", "Unicode-3.0", "Unicode-DFS-2016", "Unlicense",
    "MPL-2.0", "CC0-1.0", "0BSD",
}


def version(v):
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def allowed(expr):
    """Whether an SPDX expression (OR, AND, WITH, parentheses, `/` as OR) is met."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expr.replace("/", " OR "))
    pos = 0

    def term():
        nonlocal pos
        if tokens[pos] == "(":
            pos += 1
            value = either()
            pos += 1  # ")"
            return value
        name = tokens[pos]
        pos += 1
        if pos < len(tokens) and tokens[pos] == "WITH":
            name += " WITH " + tokens[pos + 1]
            pos += 2
        return name in ALLOWED

    def both():
        nonlocal pos
        value = term()
        while pos < len(tokens) and tokens[pos] == "AND":
            pos += 1
            value = term() and value
        return value

    def either():
        nonlocal pos
        value = both()
        while pos < len(tokens) and tokens[pos] == "OR":
            pos += 1
            value = both() or value
        return value

    return either()


def main():
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--locked", "--format-version", "1"],
        check=True, capture_output=True, text=True).stdout)
    workspace = set(meta["workspace_members"])
    ours = [p for p in meta["packages"] if p["id"] in workspace]
    msrv = min(version(p["rust_version"]) for p in ours if p.get("rust_version"))
    problems = []
    for p in meta["packages"]:
        if p["id"] in workspace:
            continue
        if p.get("rust_version") and version(p["rust_version"]) > msrv:
            problems.append(f"{p['name']} {p['version']} needs Rust {p['rust_version']}, "
                            f"above the declared {'.'.join(map(str, msrv))}")
        if not p.get("license") or not allowed(p["license"]):
            problems.append(f"{p['name']} {p['version']}: licence {p.get('license')!r} is not allowed")
    snapshot = Path(__file__).resolve().parent.parent / "audit" / "advisory-db"
    with_advisories = set((snapshot / "NAMES").read_text().split())
    kept = {d.name for d in (snapshot / "crates").iterdir()}
    for name in sorted(locked_names()):
        if name in with_advisories and name not in kept:
            problems.append(f"{name} has advisories that audit/advisory-db lacks: "
                            "refresh it with scripts/refresh_advisories.py")
    for p in problems:
        print(p)
    print(f"{len(meta['packages']) - len(ours)} dependencies: rust-version at most "
          f"{'.'.join(map(str, msrv))}, licences allowed, advisories in the snapshot: "
          f"{'no' if problems else 'yes'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
