#!/usr/bin/env python3
"""The object kit engine's batch writes, measured: `make bench-engine`.

Seeds products (or companies, contacts: `--object companies`) through `POST /v1/<plural>/batch/upsert`
in 1,000-row batches, two requests in flight, into a fresh SQLite file and a fresh PostgreSQL
database that nobody analyzes (autovacuum is off on this machine's shared PostgreSQL, and the
script runs no ANALYZE): rows/s per tenth of the seeding show whether the write path's
lookups keep to their indexes while the planner's statistics still say the table is empty.
Then every row again with one field changed (updates). Beside them, in the same run, `pgbench
-N` (PostgreSQL's own simple-update workload) is the write reference; `--baseline BINARY`
runs the same load against another build (an earlier commit) in the same run. Writes
bench/results/engine_writes[_<object>].json and bench/ENGINE_WRITES[_<OBJECT>].md.

    python3 bench/engine_writes.py [--rows 100000] [--backends sqlite,postgres]
        [--object products|companies|contacts] [--baseline path/to/rapport --baseline-label 0c61dce]

Standard library only, as bench.py, whose helpers it uses.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
from bench import PG, PG_BIN, Api, Cleanup, Server, log  # noqa: E402

BATCH = 1000
RESULTS = bench.BENCH / "results" / "engine_writes.json"
REPORT = bench.BENCH / "ENGINE_WRITES.md"


def product_rows(start: int, count: int, price: int = 0) -> list[dict]:
    return [
        {
            "external_id": f"P-{i:08d}",
            "sku": f"SKU-{i:08d}",
            "name": f"{bench.WORDS[i % 10]} {bench.NOUNS[(i // 10) % 10]} {i}",
            "category": bench.NOUNS[i % 10],
            "unit_price_minor": 100 + (i % 900) + price,
            "currency": "CNY",
            "warranty_months": i % 37,
        }
        for i in range(start, start + count)
    ]


def company_rows(start: int, count: int, price: int = 0) -> list[dict]:
    return [
        {
            "external_id": f"C-{i:08d}",
            "name": f"{bench.WORDS[i % 10]} {bench.NOUNS[(i // 10) % 10]} Co. {i}",
            "domain": f"c{i}.bench.example",
            "industry": bench.NOUNS[i % 10],
            "employee_count": 10 + (i % 900) + price,
            "phone": f"+86 21 {5000_0000 + i}",
            "address": {"city": "Shanghai", "country": "CN"},
            "tier": "abc"[i % 3],
            "tags": [bench.WORDS[i % 10]],
        }
        for i in range(start, start + count)
    ]


def contact_rows(start: int, count: int, price: int = 0) -> list[dict]:
    return [
        {
            "external_id": f"P-{i:08d}",
            "first_name": bench.WORDS[i % 10].capitalize(),
            "last_name": f"{bench.NOUNS[(i // 10) % 10].capitalize()} {i}",
            "email": f"p{i}@bench.example",
            "phones": [{"number": f"+86 138 {1000_0000 + i}", "kind": "mobile"}],
            "title": "Buyer" if price == 0 else "Head of buying",
            "address": {"city": "Hangzhou", "country": "CN"},
            "tags": [bench.WORDS[i % 10]],
        }
        for i in range(start, start + count)
    ]


OBJECTS = {"products": product_rows, "companies": company_rows, "contacts": contact_rows}


def sign_up(server: Server) -> str:
    api = Api(server.url)
    signup = api.expect(201, "POST", "/v1/auth/signup", {
        "organization_name": "Bench Catalog Co.",
        "name": "Bench Owner",
        "email": "owner@catalog.bench.example",
        "password": "correct horse battery staple",
    })
    api.key = signup["access_token"]
    return api.expect(201, "POST", "/v1/api-keys", {"name": "bench", "scopes": ["*"]})["secret"]


def tenths(timings: list) -> list[int]:
    """Rows/s within each tenth of the batches, in order."""
    ordered = sorted(timings)
    size = max(1, len(ordered) // 10)
    rates = []
    for i in range(0, len(ordered), size):
        part = ordered[i:i + size]
        span = max(t[1] for t in part) - min(t[0] for t in part)
        rates.append(round(sum(t[2] for t in part) / span) if span > 0 else 0)
    return rates[:10]


def pgbench_writes(cleanup: Cleanup, seconds: int) -> dict:
    """pgbench -N (simple updates, no branch contention) at 2 clients: a write reference."""
    db = bench.create_pg_database(cleanup, "pgbench_w")
    bench.sh([str(PG_BIN / "pgbench"), "-i", "-q", "-s", "1", "-h", PG["host"], "-p", PG["port"],
              "-U", PG["user"], db])
    cmd = [str(PG_BIN / "pgbench"), "-N", "-M", "prepared", "-n", "-c", "2", "-j", "2", "-T",
           str(seconds), "-h", PG["host"], "-p", PG["port"], "-U", PG["user"], db]
    out = subprocess.run(cmd, text=True, capture_output=True).stdout
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    return {"tps": float(found[1]) if found else None,
            "command": " ".join(cmd[:-1] + ["$PGBENCH_DB"])}


def run_backend(name: str, binary: Path, rows: int, cleanup: Cleanup, workdir: Path,
                plural: str = "products", label: str = "engine") -> dict:
    workdir = workdir / label
    workdir.mkdir(exist_ok=True)
    backend = bench.fresh_backend(name, workdir, cleanup)
    server = bench.running(cleanup, Server(binary, backend, workdir, label))
    key = sign_up(server)
    starts = list(range(0, rows, BATCH))
    make = OBJECTS[plural]
    path = f"/v1/{plural}/batch/upsert"
    log(f"{name} ({label}): {rows:,} new {plural}")
    created = bench.upsert_batches(server, key, path, starts,
                                   lambda s: make(s, min(BATCH, rows - s)), 2)
    log(f"  {created['rows_per_s']:,.0f} rows/s; by tenth {tenths(created['timings'])}")
    log(f"{name} ({label}): {rows:,} changed {plural}")
    changed = bench.upsert_batches(server, key, path, starts,
                                   lambda s: make(s, min(BATCH, rows - s), price=7), 2)
    log(f"  {changed['rows_per_s']:,.0f} rows/s")
    cleanup.pop(server.stop)
    analyzed = None
    if backend.pg_database:
        analyzed = bench.psql("select coalesce(max(last_analyze), max(last_autoanalyze))::text "
                              f"from pg_stat_user_tables where relname = '{plural}'",
                              backend.pg_database) or None
    return {
        "new": {"rows": created["rows"], "rows_per_s": round(created["rows_per_s"]),
                "by_tenth": tenths(created["timings"])},
        "changed": {"rows": changed["rows"], "rows_per_s": round(changed["rows_per_s"])},
        "products_last_analyzed": analyzed,
    }


def render(result: dict) -> str:
    m = result["machine"]
    plural = result.get("object", "products")
    lines = [
        f"# Engine batch writes ({plural})",
        "",
        "Generated by `make bench-engine` (bench/engine_writes.py); rerun rather than edit.",
        f"{plural.capitalize()} are served by the object kit's engine from their declaration.",
        f"{result['rows']:,} rows are written through `POST /v1/{plural}/batch/upsert`, "
        f"{BATCH:,} a request, two",
        "requests in flight, into fresh databases that nobody analyzes (no ANALYZE, autovacuum",
        "off): the rates by tenth show whether the write path depends on fresh statistics.",
        "",
        f"Commit `{m['commit'][:12]}`, {m['date']}, {m['cpu']} ({m['cores']} cores shared by",
        f"the load, the server and the database), {m['postgres']}, release build.",
        *([f"Uncommitted product changes at the time: {', '.join(m['product_changes'])}."]
          if m.get("product_changes") else []),
        "",
        "| backend | new rows/s | changed rows/s | new rows/s by tenth of the seeding |",
        "|---|---|---|---|",
    ]
    for name, r in result["backends"].items():
        lines.append(f"| {name} | {r['new']['rows_per_s']:,} | {r['changed']['rows_per_s']:,} | "
                     + ", ".join(f"{x:,}" for x in r["new"]["by_tenth"]) + " |")
    for name, r in result.get("baseline", {}).items():
        lines.append(f"| {name}, {result['baseline_label']} | {r['new']['rows_per_s']:,} | "
                     f"{r['changed']['rows_per_s']:,} | "
                     + ", ".join(f"{x:,}" for x in r["new"]["by_tenth"]) + " |")
    ref = result.get("pgbench_N")
    if ref and ref.get("tps"):
        lines += ["", f"Write reference in the same run: `pgbench -N -c 2` "
                  f"{ref['tps']:,.0f} transactions/s (each a few single-row updates and an insert)."]
    for name, r in result["backends"].items():
        first, last = r["new"]["by_tenth"][0], r["new"]["by_tenth"][-1]
        if first:
            lines.append(f"\n{name}: the last tenth runs at {last / first:.2f}× the first"
                         + (f" ({plural} last analyzed: {r['products_last_analyzed']})"
                            if name == "postgres" else "") + ".")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--object", default="products", choices=sorted(OBJECTS))
    parser.add_argument("--baseline", help="another build of rapport to run the same load against")
    parser.add_argument("--baseline-label", default="baseline")
    parser.add_argument("--render", action="store_true", help="only render the report again")
    args = parser.parse_args()
    suffix = "" if args.object == "products" else f"_{args.object}"
    results = RESULTS.with_name(f"engine_writes{suffix}.json")
    report = REPORT.with_name(f"ENGINE_WRITES{suffix.upper()}.md")
    if args.render:
        report.write_text(render(json.loads(results.read_text())))
        return
    bench.exit_on_signals()
    cleanup = Cleanup()
    try:
        binary = bench.build()
        result = {"machine": bench.machine(), "rows": args.rows, "object": args.object,
                  "backends": {}}
        with tempfile.TemporaryDirectory(prefix="rapport-engine-bench-") as work:
            for name in args.backends.split(","):
                result["backends"][name] = run_backend(name, binary, args.rows, cleanup,
                                                       Path(work), args.object)
            if args.baseline:
                result["baseline_label"] = args.baseline_label
                result["baseline"] = {
                    name: run_backend(name, Path(args.baseline), args.rows, cleanup, Path(work),
                                      args.object, "baseline")
                    for name in args.backends.split(",")
                }
            if "postgres" in result["backends"]:
                log("pgbench -N")
                result["pgbench_N"] = pgbench_writes(cleanup, 20)
        results.parent.mkdir(exist_ok=True)
        results.write_text(json.dumps(result, indent=2) + "\n")
        report.write_text(render(result))
        log(f"wrote {report}")
    finally:
        cleanup.run()


if __name__ == "__main__":
    main()
