"""Renders bench/RESULTS.md from the JSON that bench.py writes, through RESULTS.template.md.

Every figure stands beside the reference measured in the same run, with their ratio: the
machines are shared, so absolute figures move from run to run while ratios move much less.
The goals are checked here, once, for the report and for bench.py (which profiles the
scenarios whose goal is missed).
"""

from __future__ import annotations

import statistics
import string
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "RESULTS.template.md"
ANALYSIS = HERE / "analysis.md"

BACKENDS = ("sqlite", "postgres")
NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}

GOAL_RATIO = 0.5
GOAL_ROWS_PER_S = 20_000
GOAL_P99_MS = 50.0
GOAL_MEMORY_MB = 150
# Two runs of the same page differ by noise; "no slower" allows this much.
DEEP_PAGE_TOLERANCE = 1.25

SCALE_LABELS = {
    "first_page": "first page of `GET /v1/contacts`",
    "deep_page": "page 10,000 deep by cursor",
    "custom_field": "search `custom.region eq 西北`",
    "related_company": "search `company.industry eq logistics`",
    "q_2_chars": "`q=zh` (2 characters)",
    "q_6_chars": "`q=garcia` (6 characters)",
}
THROUGHPUT_LABELS = {
    "health": "`GET /health/live` (HTTP ceiling)",
    "get": "`GET /v1/contacts/{id}` (API key)",
    "list": "`GET /v1/contacts?limit=50` (pages from all depths)",
    "search": "`POST /v1/contacts/search`, 2 conditions",
    "create": "`POST /v1/contacts`",
    "patch": "`PATCH /v1/contacts/{id}` with `If-Match`",
}


# ---------------------------------------------------------------------------------------
# Goals
# ---------------------------------------------------------------------------------------


def goals(bench: dict) -> list[dict]:
    """Every goal with its figure, for each backend it applies to."""
    out = []
    for name in BACKENDS:
        b = bench["backends"].get(name)
        if not b:
            continue
        t = b["throughput"]
        pg_ref = usable(t.get("pgbench")) or usable(
            bench["backends"].get("postgres", {}).get("throughput", {}).get("pgbench"))
        if pg_ref:
            ratio = t["get"]["rps"] / pg_ref["rps"]
            out.append(goal(name, "get", "GET by id ÷ pgbench -S (same concurrency)", ratio, ratio >= GOAL_RATIO,
                            f"≥ {GOAL_RATIO}", f"{ratio:.2f}", informational=name != "postgres"))
        ratio = t["get"]["rps"] / t["health"]["rps"]
        out.append(goal(name, "get", "GET by id ÷ GET /health/live", ratio, ratio >= GOAL_RATIO,
                        f"≥ {GOAL_RATIO}", f"{ratio:.2f}"))
        w = b.get("writes", {})
        for key, label in (("batch_create", "batch upsert, new rows"), ("batch_update", "batch upsert, changed rows"),
                           ("import", "CSV import")):
            if key in w:
                rate = w[key]["rows_per_s"]
                failed = w[key].get("status", "completed") != "completed"
                shown = f"{rate:,.0f}" + (f" (the job {w[key]['status']}: {w[key].get('error')})" if failed else "")
                out.append(goal(name, "batch_create" if key != "import" else "import", f"{label} (rows/s)", rate,
                                rate >= GOAL_ROWS_PER_S and not failed, f"≥ {GOAL_ROWS_PER_S:,}", shown,
                                informational=name != "postgres"))
        for key, label in SCALE_LABELS.items():
            q = b["scale"].get(key)
            if q:
                out.append(goal(name, "scale", f"p99 of {label}", q["p99_ms"], q["p99_ms"] < GOAL_P99_MS,
                                f"< {GOAL_P99_MS:.0f} ms", f"{q['p99_ms']:.1f} ms", informational=name != "postgres"))
        first, deep = b["scale"].get("first_page"), b["scale"].get("deep_page")
        if first and deep:
            ratio = deep["p50_ms"] / first["p50_ms"]
            out.append(goal(name, "scale", "deep page p50 ÷ first page p50", ratio, ratio <= DEEP_PAGE_TOLERANCE,
                            f"≤ 1 (noise: {DEEP_PAGE_TOLERANCE})", f"{ratio:.2f}"))
        m = b["memory"]
        for key, label in (("idle_hwm_kb", "peak RSS idle"), ("loaded_hwm_kb", "peak RSS, 64 connections")):
            mb = m[key] / 1024
            out.append(goal(name, "memory", label, mb, mb < GOAL_MEMORY_MB, f"< {GOAL_MEMORY_MB} MB", f"{mb:.0f} MB"))
    return out


def usable(reference: dict | None) -> dict | None:
    """A reference that was measured (pgbench can fail on a shared PostgreSQL)."""
    return reference if reference and "rps" in reference else None


def goal(backend, scenario, what, value, met, target, shown, informational=False) -> dict:
    return {"backend": backend, "scenario": scenario, "what": what, "value": value, "met": met,
            "target": target, "shown": shown, "informational": informational}


def missed_scenarios(backend: str, result: dict) -> list[str]:
    """The scenarios of one backend to profile because a goal of theirs is missed."""
    found = goals({"backends": {backend: result}})
    return sorted({g["scenario"] for g in found if not g["met"] and not g["informational"]
                   and g["scenario"] in ("get", "batch_create", "import")})


# ---------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def num(x, digits=0) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def ms(x) -> str:
    return "—" if x is None else (f"{x:.2f}" if x < 10 else f"{x:.1f}")


def machine_section(bench: dict) -> str:
    m = bench["meta"]
    commit = m["commit"][:12]
    if m.get("product_changes"):
        commit += " plus uncommitted changes to " + ", ".join(m["product_changes"])
    elif m.get("uncommitted_changes") is True:
        commit += " plus uncommitted changes"
    elif m.get("uncommitted_changes"):
        commit += " (uncommitted changes outside the product code only: " + ", ".join(m["uncommitted_changes"]) + ")"
    p = m["plan"]
    rows = [
        ["CPU", f"{m['cpu']}, {m['cores']} cores (shared by wrk, the server and PostgreSQL)"],
        ["memory", f"{m['memory_gib']} GiB"],
        ["kernel", m["kernel"]],
        ["commit", f"`{commit}`"],
        ["date", m["date"] if not m.get("merged") else
         "; ".join(f"{NAMES[b]} {bench['backends'][b].get('date', '?')}" for b in BACKENDS if b in bench["backends"])
         + f" (two invocations of the same bench, merged with `--merge`)"],
        ["toolchain", f"{m['rustc']}; {m['postgres']}; SQLite CLI {m['sqlite_cli']}; {m['wrk']}; Python {m['python']}"],
        ["data", f"{p['contacts']:,} contacts, {p['companies']:,} companies (custom select field `region` on every contact)"],
        ["load", f"{p['connections']} connections, {p['threads']} wrk threads, {p['duration']} s per scenario and per "
                 f"reference; scale queries 1 connection, {p['scale_duration']} s each"],
        ["server", "release build, default settings except `RAPPORT_RATE_LIMIT_PER_MINUTE=10000000` and "
                   "`RAPPORT_LOG_FORMAT=json` (logs at `info`, one line per request, to a file); "
                   f"`RAPPORT_WORKERS` = cores"],
        ["PostgreSQL", f"shared with other work on the machine; `autovacuum` is `{m.get('autovacuum', '?')}`, so the "
                       "bench runs `ANALYZE` after each tenth of the seeding and before the timings (what "
                       "autovacuum's analyze would do)"],
        ["run time", f"{m.get('minutes', '—')} minutes" + (" (the last invocation)" if m.get("merged") else "")],
    ]
    return table(["", ""], rows)


def goals_section(bench: dict) -> str:
    rows = []
    for g in goals(bench):
        verdict = "met" if g["met"] else "**missed**"
        if g["informational"]:
            verdict = ("(met)" if g["met"] else "(not met)") + " info only"
        rows.append([NAMES[g["backend"]], g["what"], g["target"], g["shown"], verdict])
    return table(["backend", "goal", "target", "measured", "verdict"], rows)


def throughput_section(bench: dict) -> str:
    present = [b for b in BACKENDS if b in bench["backends"]]
    header = ["scenario"] + [f"{NAMES[b]} {h}" for b in present for h in ("req/s", "p50 ms", "p99 ms", "errors")]
    rows = []
    for key, label in THROUGHPUT_LABELS.items():
        row = [label]
        for b in present:
            r = bench["backends"][b]["throughput"].get(key)
            row += [num(r["rps"]), ms(r["p50_ms"]), ms(r["p99_ms"]), r["errors"]] if r else ["—"] * 4
        rows.append(row)
    pg = next((usable(bench["backends"][b]["throughput"].get("pgbench")) for b in present
               if usable(bench["backends"][b]["throughput"].get("pgbench"))), None)
    row = ["`pgbench -S -M prepared` (PostgreSQL ceiling)"]
    for b in present:
        r = usable(bench["backends"][b]["throughput"].get("pgbench"))
        row += [num(r["rps"]), ms(r["mean_ms"]) + " (mean)", "—", "—"] if r else ["—"] * 4
    rows.append(row)
    text = table(header, rows)
    ratio_rows = []
    for b in present:
        t = bench["backends"][b]["throughput"]
        ref = usable(t.get("pgbench")) or pg
        ratio_rows.append([NAMES[b], num(t["get"]["rps"]), num(t["health"]["rps"]),
                           f"**{t['get']['rps'] / t['health']['rps']:.2f}**",
                           num(ref["rps"]) if ref else "—",
                           f"**{t['get']['rps'] / ref['rps']:.2f}**" if ref else "—"])
    text += "\n\nGET by id beside its references, each measured next to it in this run:\n\n"
    text += table(["backend", "GET req/s", "/health/live req/s", "ratio", "pgbench -S tps", "ratio"], ratio_rows)
    return text


def writes_section(bench: dict) -> str:
    present = [b for b in BACKENDS if b in bench["backends"]]
    rows = []
    labels = [
        ("seed_companies", "seeding companies through batch upsert (empty → full table)"),
        ("seed_contacts", "seeding contacts through batch upsert (empty → full table)"),
        ("seed_contacts_tail", "… the last tenth of the seeding (table nearly full)"),
        ("batch_create", "batch upsert of new contacts at scale, time-boxed"),
        ("batch_update", "batch upsert changing existing contacts at scale"),
        ("import", "CSV import (`POST /v1/imports`, polled to completion)"),
    ]
    for key, label in labels:
        row = [label]
        for b in present:
            r = bench["backends"][b]
            s, w = r["seed"], r.get("writes", {})
            value = {
                "seed_companies": s["companies"]["rows_per_s"],
                "seed_contacts": s["contacts"]["rows_per_s"],
                "seed_contacts_tail": s["contacts"]["last_tenth_rows_per_s"],
                "batch_create": w.get("batch_create", {}).get("rows_per_s"),
                "batch_update": w.get("batch_update", {}).get("rows_per_s"),
                "import": w.get("import", {}).get("rows_per_s"),
            }[key]
            row.append(num(value))
        rows.append(row)
    text = table(["rows/s"] + [NAMES[b] for b in present], rows)
    clients = bench["meta"]["plan"]["seed_clients"]
    text += (f"\n\n1,000 rows per request, {clients} requests in flight. The goal is "
             f"{GOAL_ROWS_PER_S:,} rows/s on PostgreSQL; there is no reference for writes (pgbench's write "
             "transactions are not comparable to a CRM row with its events, keys and search text).")
    sizes = []
    for b in present:
        imp = bench["backends"][b].get("writes", {}).get("import")
        if imp:
            sizes.append(f"{NAMES[b]}: {imp['rows']:,} rows, {imp['bytes'] / 1e6:.1f} MB, {imp['seconds']} s "
                         f"(upload answered in {imp['upload_seconds']} s)"
                         + (f", **the job {imp['status']} after {imp['processed']:,} rows: {imp.get('error')}**"
                            if imp.get("status", "completed") != "completed" else ""))
    if sizes:
        text += " Import: " + "; ".join(sizes) + "."
    return text


def scale_section(bench: dict) -> str:
    present = [b for b in BACKENDS if b in bench["backends"]]
    header = ["query (limit 50)"] + [f"{NAMES[b]} {h}" for b in present for h in ("p50 ms", "p99 ms", "req/s")]
    rows = []
    for key, label in SCALE_LABELS.items():
        row = [label]
        for b in present:
            r = bench["backends"][b]["scale"].get(key)
            row += [ms(r["p50_ms"]), ms(r["p99_ms"]), num(r["rps"])] if r else ["—"] * 3
        rows.append(row)
    text = table(header, rows)
    walks = []
    for b in present:
        w = bench["backends"][b]["walk"]
        walks.append(f"{NAMES[b]}: {w['pages']:,} pages in {w['seconds']} s, median page "
                     f"{ms(w['first_100_p50_ms'])} ms over the first 100 and {ms(w['last_100_p50_ms'])} ms over the "
                     "last 100")
    text += "\n\nThe cursor walk to the deep page (one client, timed from Python): " + "; ".join(walks) + "."
    return text


def memory_section(bench: dict) -> str:
    rows = []
    for b in BACKENDS:
        r = bench["backends"].get(b)
        if not r:
            continue
        m = r["memory"]
        rows.append([NAMES[b], num(m["idle_rss_kb"] / 1024), num(m["idle_hwm_kb"] / 1024),
                     num(m["loaded_hwm_kb"] / 1024), num(m["load"]["rps"]), m["load"]["errors"],
                     num(r["seed"].get("server_peak_rss_kb", 0) / 1024)])
    text = table(["backend", "idle RSS MB", "idle peak (VmHWM) MB", "peak under 64 connections MB",
                  "mixed load req/s", "errors", "peak while seeding MB"], rows)
    text += ("\n\nA fresh server process after seeding; the peak is reset (`/proc/<pid>/clear_refs`) before the "
             "64-connection mixed load (reads, lists, searches, creates, patches). The seeding column is the "
             "seeding process's VmHWM, with 1,000-row batches in flight, for comparison.")
    return text


def plans_section(bench: dict) -> str:
    parts = []
    labels = dict(SCALE_LABELS, search_two="search with two conditions (throughput scenario)")
    for b in BACKENDS:
        r = bench["backends"].get(b)
        if not r or "plans" not in r:
            continue
        how = ("auto_explain (`log_analyze`, `log_buffers`), the last of 7 executions, read from the server log"
               if b == "postgres" else "the statement the server logged (`sqlx::query=debug`), through "
               "`EXPLAIN QUERY PLAN` in the sqlite3 CLI")
        parts.append(f"### {NAMES[b]}\n\n{how}; only the plan lines that name scans, indexes, filters and sorts.\n")
        for key, label in labels.items():
            p = r["plans"].get(key)
            if not p:
                continue
            extra = f" — {p['duration_ms']:.1f} ms in the database" if p.get("duration_ms") is not None else ""
            body = "\n".join(p["lines"]) or "(empty)"
            parts.append(f"**{label}**{extra}\n\n```\n{body}\n```\n")
    return "\n".join(parts)


def profiles_section(bench: dict) -> str:
    parts = []
    for b in BACKENDS:
        r = bench["backends"].get(b)
        for name, p in (r or {}).get("profiles", {}).items():
            if "error" in p:
                parts.append(f"### {NAMES[b]}: {name}\n\n{p['error']}\n")
                continue
            parts.append(
                f"### {NAMES[b]}: {name}\n\n`perf record` for {p['seconds']} s during a rerun of the "
                "scenario; the machine's CPU by role (`perf record -a`, `perf report --sort pid`, threads summed "
                "per process; the machine is shared, so other people's builds and tests show up too):\n\n"
                "```\n" + "\n".join(p["by_process"]) + "\n```\n\n"
                "The server's hottest functions, self time (`perf report --no-children --sort dso,sym` of the "
                "server's own recording, % of its samples):\n\n```\n" + "\n".join(p["server_functions"]) + "\n```\n")
            if p.get("server_inclusive"):
                parts.append("The server's own steps, time including what they call (`perf record -F 499 "
                             "--call-graph dwarf -p <server>`, `perf report --children --sort sym`; frames of "
                             "rapport, sqlx, serde, phonenumber, regex and a few more, generics elided, 2 % or "
                             "more):\n\n```\n"
                             + "\n".join(p["server_inclusive"]) + "\n```\n")
    return "\n".join(parts) if parts else "No goal with a profile was missed in this run, so none was taken."


def commands_section(bench: dict) -> str:
    m = bench["meta"]
    lines = [f"make bench            # = {m['command']}"]
    for backend, command in m.get("merged_commands", {}).items():
        lines.append(f"# {NAMES[backend]} results from: {command}")
    lines.append(m["build"])
    for b in BACKENDS:
        r = bench["backends"].get(b)
        if not r:
            continue
        for key in THROUGHPUT_LABELS:
            if key in r["throughput"]:
                lines.append(f"[{b}] {r['throughput'][key]['command']}")
        if "pgbench" in r["throughput"]:
            lines.append(f"[{b}] {r['throughput']['pgbench']['command']}")
        for key in SCALE_LABELS:
            if key in r["scale"]:
                lines.append(f"[{b}] {r['scale'][key]['command']}")
    return "```\n" + "\n".join(lines) + "\n```"


# ---------------------------------------------------------------------------------------
# Soak
# ---------------------------------------------------------------------------------------


def soak_growth(result: dict) -> dict:
    """First-minutes versus last-minutes medians, after a warm-up of a fifth of the run."""
    samples = [s for s in result["samples"] if s["t"] <= result["minutes"] * 60]
    n = len(samples)
    if n < 5:
        return {}
    early = samples[n // 5: n // 5 + max(1, n // 5)]
    late = samples[-max(1, n // 5):]
    out = {}
    for key in ("rss_kb", "fds", "pg_connections"):
        a, b = statistics.median(s[key] for s in early), statistics.median(s[key] for s in late)
        out[key] = {"early": a, "late": b, "max": max(s[key] for s in samples), "growth": (b - a) / a if a else 0.0}
    return out


def soak_verdict(result: dict) -> str:
    g = soak_growth(result)
    load = result["load"]
    errors = load["errors"]
    grew = [k for k, v in g.items() if v["growth"] > (0.10 if k == "rss_kb" else 0.0) and v["late"] - v["early"] > 2]
    words = [f"{load['requests']:,} requests, {errors} errors"]
    words.append("no growth" if not grew else "growth in " + ", ".join(grew))
    return "soak: " + "; ".join(words)


def soak_section(result: dict | None) -> str:
    if not result:
        return "Not run yet: `make soak` appends its summary here."
    load = result["load"]
    g = soak_growth(result)
    text = (f"`{result['meta']['command']}` on {result['meta']['date']}, commit `{result['meta']['commit'][:12]}`: "
            f"{result['minutes']:g} minutes of mixed load (40 % reads by id, 20 % list pages, 15 % searches, "
            f"10 % creates, 15 % If-Match patches) at {result['connections']} connections on PostgreSQL, "
            f"{result['seeded_contacts']:,} contacts seeded.\n\n")
    text += f"**{soak_verdict(result)}.**\n\n"
    text += table(["", "value"], [
        ["requests", f"{load['requests']:,} ({num(load['rps'])} req/s)"],
        ["latency p50 / p99", f"{ms(load['p50_ms'])} / {ms(load['p99_ms'])} ms"],
        ["statuses", ", ".join(f"{k}: {v:,}" for k, v in sorted(load["statuses"].items()))],
        ["socket errors", ", ".join(f"{k} {v}" for k, v in load["socket_errors"].items())],
        ["server log lines at WARN or ERROR", result["server_warnings"]],
        ["peak RSS (VmHWM)", f"{result['peak_rss_kb'] / 1024:.0f} MB"],
    ])
    if result.get("warning_kinds"):
        text += "\n\nThe server log's WARN and ERROR lines, commonest first:\n\n"
        text += table(["lines", "level, target, message"], [[n, f"`{k}`"] for k, n in result["warning_kinds"]])
    if g:
        text += "\n\nMedians over the second fifth of the run against the last fifth:\n\n"
        text += table(["measure", "early", "late", "max", "change"], [
            [label, num(g[k]["early"] / div, 1), num(g[k]["late"] / div, 1), num(g[k]["max"] / div, 1),
             f"{g[k]['growth'] * 100:+.1f} %"]
            for k, label, div in (("rss_kb", "server RSS MB", 1024), ("fds", "server open fds", 1),
                                  ("pg_connections", "connections in pg_stat_activity", 1))
        ])
    per_minute = {}
    for s in result["samples"]:
        per_minute.setdefault(s["t"] // 60, s)
    text += "\n\nSampled once a minute (every 10 s in bench/results/soak.json):\n\n"
    text += table(["minute", "RSS MB", "open fds", "pg connections"],
                  [[m, num(s["rss_kb"] / 1024, 1), s["fds"], s["pg_connections"]] for m, s in sorted(per_minute.items())])
    return text


# ---------------------------------------------------------------------------------------


def render(bench: dict, soak: dict | None) -> str:
    analysis = ANALYSIS.read_text().strip() if ANALYSIS.exists() and not bench["meta"].get("quick") else (
        "_Quick run: no analysis._")
    warning = ("\n> **Quick run** (`--quick`): small data and seconds-long scenarios, to check the bench. "
               "These are not the figures.\n" if bench["meta"].get("quick") else "")
    return string.Template(TEMPLATE.read_text()).substitute(
        quick_warning=warning,
        machine=machine_section(bench),
        goals=goals_section(bench),
        throughput=throughput_section(bench),
        writes=writes_section(bench),
        scale=scale_section(bench),
        memory=memory_section(bench),
        plans=plans_section(bench),
        profiles=profiles_section(bench),
        analysis=analysis,
        soak=soak_section(soak),
        commands=commands_section(bench),
    )
