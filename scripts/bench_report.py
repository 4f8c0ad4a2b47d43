#!/usr/bin/env python3
"""Turn criterion's results (target/criterion) into BENCHMARKS.md's tables and the
migrate-time plot (benchmarks/migrate.svg). Standard library only.

    cargo bench -p idstore-repo --bench repo
    python3 scripts/bench_report.py            # rewrites the marked part of BENCHMARKS.md
"""
import glob
import json
import math
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRITERION = os.path.join(ROOT, "target", "criterion")
REPORT = os.path.join(ROOT, "BENCHMARKS.md")
PLOT = os.path.join(ROOT, "benchmarks", "migrate.svg")
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def load():
    """{(group, function, value): median seconds} from every benchmark's newest run."""
    out = {}
    for bench in glob.glob(os.path.join(CRITERION, "**", "new", "benchmark.json"), recursive=True):
        with open(bench) as f:
            meta = json.load(f)
        with open(os.path.join(os.path.dirname(bench), "estimates.json")) as f:
            est = json.load(f)
        key = (meta["group_id"], meta["function_id"], meta.get("value_str"))
        out[key] = est["median"]["point_estimate"] / 1e9
    return out


def fmt(seconds):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "–"


def tables(r):
    lines = []
    lines.append("| benchmark | idstore | raw | plan | idstore ÷ raw | plan ÷ idstore | target |")
    lines.append("|---|---|---|---|---|---|---|")
    targets = {
        "account_settings": "≤ 1.3× raw; plan ≥ 1.5× idstore",
        "set_active_did/NORMAL": "≤ 1.3× raw",
        "set_active_did/FULL": "≤ 1.05× raw",
        "save_settings": "≤ 1.3× raw",
    }
    for group, target in targets.items():
        i, w, p = (r.get((group, f, None)) for f in ("idstore", "raw", "plan"))
        lines.append(
            f"| `{group}` | {fmt(i) if i else '–'} | {fmt(w) if w else '–'} | {fmt(p) if p else '–'} "
            f"| {ratio(i, w)} | {ratio(p, i)} | {target} |"
        )
    lines.append("")
    lines.append("| `migrate` rows | idstore (default validation) | idstore (--full-check) | raw SQL | idstore ÷ raw | full ÷ raw | growth vs previous size |")
    lines.append("|---|---|---|---|---|---|---|")
    prev = None
    for rows in ("1000", "10000", "100000", "1000000"):
        i, q, w = (r.get(("migrate", f, rows)) for f in ("idstore", "idstore_full_check", "raw"))
        growth = ratio(i, prev) if prev else "–"
        lines.append(
            f"| {int(rows):,} | {fmt(i) if i else '–'} | {fmt(q) if q else '–'} | {fmt(w) if w else '–'} "
            f"| {ratio(i, w)} | {ratio(q, w)} | {growth} |"
        )
        prev = i
    o = r.get(("open_nothing_to_migrate", "idstore", None))
    lines.append("")
    lines.append(f"Opening a database and finding nothing to migrate: **{fmt(o) if o else '–'}** (target: under 1 ms).")
    lines.append("")
    lines.append("| encrypted ÷ plain | plain | encrypted (passphrase) | ÷ plain | encrypted (raw key) | ÷ plain | target |")
    lines.append("|---|---|---|---|---|---|---|")
    for group, label, target in (
        ("encryption/account_settings", "`account_settings` (a hot read)", "≤ 1.2×"),
        ("encryption/set_active_did", "`set_active_did` (a write and its commit)", "–"),
        ("encryption/migrate_100k", "`migrate`, 100k settings rows (open excluded)", "≤ 2×"),
        ("encryption/open", "opening a migrated file (`Database::from_connection(open)`)", "–"),
    ):
        p, e, k = (r.get((group, f, None)) for f in ("plain", "encrypted", "encrypted_raw_key"))
        lines.append(
            f"| {label} | {fmt(p) if p else '–'} | {fmt(e) if e else '–'} | {ratio(e, p)} "
            f"| {fmt(k) if k else '–'} | {ratio(k, p)} | {target} |"
        )
    return "\n".join(lines)


def plot(r):
    series = {"idstore": "#1f77b4", "idstore_full_check": "#2ca02c", "raw": "#7f7f7f"}
    sizes = [1000, 10000, 100000, 1000000]
    pts = {s: [(n, r.get(("migrate", s, str(n)))) for n in sizes] for s in series}
    values = [t for s in pts.values() for _, t in s if t]
    if not values:
        return None
    w, h, ml, mr, mt, mb = 640, 400, 70, 170, 30, 50
    lo, hi = math.log10(min(values)) - 0.1, math.log10(max(values)) + 0.1
    x = lambda n: ml + (math.log10(n) - 3) / 3 * (w - ml - mr)
    y = lambda t: mt + (hi - math.log10(t)) / (hi - lo) * (h - mt - mb)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w/2 - 60}" y="18" font-size="14">migrate: time against settings rows (log–log)</text>',
           f'<line x1="{ml}" y1="{h-mb}" x2="{w-mr}" y2="{h-mb}" stroke="black"/>',
           f'<line x1="{ml}" y1="{mt}" x2="{ml}" y2="{h-mb}" stroke="black"/>']
    for n in sizes:
        svg.append(f'<text x="{x(n)-15}" y="{h-mb+18}">{n:,}</text>')
        svg.append(f'<line x1="{x(n)}" y1="{h-mb}" x2="{x(n)}" y2="{h-mb+4}" stroke="black"/>')
    for e in range(math.floor(lo), math.ceil(hi) + 1):
        for m in (1, 2, 5):
            t = m * 10 ** e
            if lo <= math.log10(t) <= hi:
                svg.append(f'<line x1="{ml}" y1="{y(t):.1f}" x2="{w-mr}" y2="{y(t):.1f}" stroke="#ddd"/>')
                svg.append(f'<text x="{ml-62}" y="{y(t)+4:.1f}">{fmt(t)}</text>')
    svg.append(f'<text x="{w/2 - 40}" y="{h-10}">settings rows</text>')
    for i, (name, colour) in enumerate(series.items()):
        p = [(x(n), y(t)) for n, t in pts[name] if t]
        if len(p) > 1:
            svg.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (colour, " ".join(f"{a:.1f},{b:.1f}" for a, b in p)))
        for a, b in p:
            svg.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colour}"/>')
        svg.append(f'<rect x="{w-mr+15}" y="{mt+20+i*20}" width="12" height="12" fill="{colour}"/>')
        svg.append(f'<text x="{w-mr+32}" y="{mt+30+i*20}">{name}</text>')
    svg.append("</svg>")
    os.makedirs(os.path.dirname(PLOT), exist_ok=True)
    with open(PLOT, "w") as f:
        f.write("\n".join(svg) + "\n")
    return PLOT


def main():
    r = load()
    if not r:
        sys.exit("no criterion results under target/criterion: run `cargo bench -p idstore-repo --bench repo` first")
    body = tables(r)
    plot(r)
    with open(REPORT) as f:
        text = f.read()
    if BEGIN not in text:
        sys.exit(f"{REPORT} has no {BEGIN} … {END} markers")
    text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), BEGIN + "\n" + body + "\n" + END, text, flags=re.S)
    with open(REPORT, "w") as f:
        f.write(text)
    print(body)


if __name__ == "__main__":
    main()
