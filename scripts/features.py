#!/usr/bin/env python3
"""Every feature of every workspace crate but those that only change how C is
built, as one `--features` value: what CI's clippy and rustdoc take instead of
`--all-features`, so that they check every line of Rust `--all-features` checks
without building OpenSSL from source.

    cargo clippy --workspace --all-targets --features "$(python3 scripts/features.py)" -- -D warnings

`vendored-openssl` (idstore's and idstore-repo's) only switches libsqlite3-sys to
an OpenSSL compiled from source: this script fails (exit 1, naming the line) if
any Rust file of the workspace tests for it (a cfg on it), since then the two
would differ. CI
builds and tests that feature itself once, with the minimum Rust version.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Features that change only the C build of a dependency, never a line of Rust.
C_ONLY = {"vendored-openssl"}


def main():
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--no-deps", "--locked", "--format-version", "1"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    members = set(meta["workspace_members"])
    features = []
    names = []
    for package in meta["packages"]:
        if package["id"] not in members:
            continue
        for feature in sorted(package["features"]):
            if feature == "default":
                continue
            if feature in C_ONLY:
                names.append(feature)
                continue
            features.append(f"{package['name']}/{feature}")
    # A cfg on the feature (`#[cfg]`, `cfg!`, `cfg_attr`) or its build-script variable.
    mention = re.compile("|".join(
        rf'feature\s*=\s*"{re.escape(n)}"|CARGO_FEATURE_{n.upper().replace("-", "_")}'
        for n in sorted(set(names))))
    found = []
    for package in meta["packages"]:
        if package["id"] not in members:
            continue
        folder = Path(package["manifest_path"]).parent
        for path in sorted(folder.rglob("*.rs")):
            rel = path.relative_to(ROOT)
            if rel.parts[0] in ("target", "fuzz") or "node_modules" in rel.parts:
                continue
            # The root package's folder holds the other members: each is read once.
            if folder == ROOT and rel.parts[0] in ("crates", "examples"):
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if names and mention.search(line):
                    found.append(f"{rel}:{n}: {line.strip()}")
    if found:
        for f in found:
            print(f, file=sys.stderr)
        print("these lines name a feature that was meant to change only the C build: "
              "check that code with --all-features, or drop it from C_ONLY",
              file=sys.stderr)
        return 1
    print(",".join(features))
    return 0


if __name__ == "__main__":
    sys.exit(main())
