#!/usr/bin/env python3
"""Rapport's benchmark and soak test (`make bench`, `make soak`).

It builds the release binary, starts it on a fresh SQLite file and on a fresh PostgreSQL
database, seeds both through the public batch API, and measures each scenario beside a
reference taken in the same run (pgbench, /health/live), because the machines it runs on
are shared and noisy: a ratio to a neighbour survives noise that an absolute figure does not.
Results go to bench/results/*.json and are rendered into bench/RESULTS.md (see report.py).

    python3 bench/bench.py run [--quick] [--backends sqlite,postgres]
    python3 bench/bench.py soak [--minutes 10] [--quick]
    python3 bench/bench.py render      # RESULTS.md again from the JSON
    python3 bench/bench.py clean       # drop databases left by a killed run

Standard library only (Python 3.11), so that it runs wherever the project builds.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import datetime
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402  (the renderer beside this file)

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
WRK_DIR = BENCH / "wrk"
PG = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_LOG = Path("/var/log/postgresql/postgresql-15-main.log")
# The most RAPPORT_RATE_LIMIT_PER_MINUTE accepts: rate limiting must not shape the figures.
RATE_LIMIT = "10000000"
DB_PREFIX = "rapport_bench_"


def log(message: str) -> None:
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    print(f"[bench {stamp}] {message}", flush=True)


class BenchError(Exception):
    """The bench itself cannot go on (a setup step failed, or a scenario is invalid)."""


# ---------------------------------------------------------------------------------------
# Sizes and durations
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Plan:
    contacts: int
    companies: int
    duration: int  # seconds of each throughput scenario, and of its reference
    scale_duration: int  # seconds of each single-client query at scale
    deep_pages: int  # how deep the cursor walk goes
    import_rows: int
    pgbench_scale: int
    profile_seconds: int
    connections: int = 32
    threads: int = 2
    memory_connections: int = 64
    seed_clients: int = 2  # batch requests in flight while seeding and in the batch scenario
    get_ids: int = 10_000
    patch_targets: int = 512  # records the PATCH scenario cycles through (>> connections)


FULL = Plan(
    contacts=1_000_000,
    companies=100_000,
    duration=20,
    scale_duration=15,
    deep_pages=10_000,
    import_rows=100_000,
    pgbench_scale=10,
    profile_seconds=12,
)
QUICK = Plan(
    contacts=20_000,
    companies=2_000,
    duration=5,
    scale_duration=3,
    deep_pages=100,
    import_rows=5_000,
    pgbench_scale=1,
    profile_seconds=4,
    get_ids=2_000,
    patch_targets=256,
)


# ---------------------------------------------------------------------------------------
# Clean-up that also runs on SIGINT/SIGTERM
# ---------------------------------------------------------------------------------------


class Cleanup:
    """Undo steps, run newest first, whatever way the run ends."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, callable]] = []

    def push(self, what: str, step) -> None:
        self.steps.append((what, step))

    def pop(self, step) -> None:
        """Runs one step now (its work is done) and forgets it."""
        for i, (what, s) in enumerate(self.steps):
            # `==`, not `is`: each `server.stop` is a new bound-method object, equal to the others.
            if s == step:
                del self.steps[i]
                self._run_one(what, s)
                return
        raise AssertionError(f"no clean-up step {step!r}")

    def run(self) -> None:
        while self.steps:
            what, step = self.steps.pop()
            self._run_one(what, step)

    @staticmethod
    def _run_one(what: str, step) -> None:
        try:
            step()
        except Exception as error:  # clean-up must go on past one failure
            log(f"clean-up: {what}: {error}")


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP end the run like Ctrl-C, so that `finally` blocks clean up."""

    def handler(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def die_with_parent() -> None:
    """In a child: get SIGTERM when the bench dies, even by SIGKILL (no orphaned servers)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


# ---------------------------------------------------------------------------------------
# Tools, build, machine
# ---------------------------------------------------------------------------------------


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def sudo() -> list[str]:
    return [] if os.geteuid() == 0 else ["sudo"]


def ensure_tools(need_postgres: bool) -> None:
    if shutil.which("wrk") is None:
        log("installing wrk (Debian package)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = sudo() + ["apt-get", "install", "-y", "-qq", "wrk"]
        if subprocess.run(install, env=env).returncode != 0:
            subprocess.run(sudo() + ["apt-get", "update", "-qq"], env=env, check=True)
            subprocess.run(install, env=env, check=True)
    for tool in ("sqlite3", "psql"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed")
    if need_postgres:
        if not (PG_BIN / "pgbench").exists():
            raise BenchError(f"pgbench is not at {PG_BIN / 'pgbench'}")
        ensure_postgres_running()


def ensure_postgres_running() -> None:
    ready = ["pg_isready", "-q", "-h", PG["host"], "-p", PG["port"]]
    if subprocess.run(ready).returncode == 0:
        return
    log("starting PostgreSQL")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "start"])
    for _ in range(40):
        if subprocess.run(ready).returncode == 0:
            return
        time.sleep(0.5)
    raise BenchError("PostgreSQL is not reachable on 127.0.0.1:5432")


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


BUILD_COMMAND = ["cargo", "build", "--release", "--bin", "rapport"]


def build() -> Path:
    # Line tables give perf symbols and source lines without changing the optimised code.
    env = dict(os.environ, CARGO_PROFILE_RELEASE_DEBUG="line-tables-only")
    log("building: CARGO_PROFILE_RELEASE_DEBUG=line-tables-only " + " ".join(BUILD_COMMAND))
    subprocess.run(BUILD_COMMAND, cwd=REPO, env=env, check=True)
    binary = target_dir() / "release" / "rapport"
    if not binary.exists():
        raise BenchError(f"no binary at {binary}")
    return binary


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])

    def version(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, text=True, capture_output=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    commit = version(["git", "-C", str(REPO), "rev-parse", "HEAD"])
    # Which files differ from the commit: the figures are of the product at the commit only
    # when none of them is product code.
    dirty = [line[3:] for line in subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain"], text=True, capture_output=True,
    ).stdout.splitlines() if line.strip()]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": os.uname().release,
        "commit": commit,
        "uncommitted_changes": dirty,
        "product_changes": [p for p in dirty if p.startswith(("crates", "migrations", "Cargo."))],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "rustc": version(["rustc", "--version"]),
        "postgres": version(["psql", "-h", PG["host"], "-U", PG["user"], "-Atc", "show server_version"]),
        "sqlite_cli": version(["sqlite3", "--version"]).split(" ")[0],
        "wrk": version(["wrk", "--version"]).split(" [")[0],
        "python": sys.version.split()[0],
    }


# ---------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------


def psql(sql: str, db: str = "postgres") -> str:
    cmd = ["psql", "-h", PG["host"], "-p", PG["port"], "-U", PG["user"], "-d", db]
    return sh(cmd + ["-v", "ON_ERROR_STOP=1", "-Atqc", sql]).stdout.strip()


def create_pg_database(cleanup: Cleanup, purpose: str) -> str:
    name = f"{DB_PREFIX}{purpose}_{uuid.uuid4().hex[:8]}"
    psql(f"create database {name}")
    cleanup.push(f"drop database {name}", lambda: psql(f"drop database if exists {name} with (force)"))
    return name


def pg_url(db: str) -> str:
    return f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{db}"


@dataclasses.dataclass
class Backend:
    name: str  # sqlite | postgres
    url: str
    pg_database: str | None = None
    sqlite_file: Path | None = None


def fresh_backend(name: str, workdir: Path, cleanup: Cleanup) -> Backend:
    if name == "sqlite":
        file = workdir / "bench.db"
        return Backend(name, f"sqlite://{file}", sqlite_file=file)
    db = create_pg_database(cleanup, "api")
    return Backend(name, pg_url(db), pg_database=db)


def drop_leftover_databases() -> None:
    names = psql(f"select datname from pg_database where datname like '{DB_PREFIX}%'")
    for name in filter(None, names.splitlines()):
        log(f"dropping {name}")
        psql(f"drop database if exists {name} with (force)")


# ---------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One rapport process on loopback, with its log in the work directory."""

    def __init__(self, binary: Path, backend: Backend, workdir: Path, label: str, env: dict | None = None):
        self.binary, self.backend, self.workdir, self.label = binary, backend, workdir, label
        self.extra_env = env or {}
        self.port = free_port()
        self.log_path = workdir / f"server-{backend.name}-{label}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
        env.update(
            RAPPORT_DATABASE_URL=self.backend.url,
            RAPPORT_BIND=f"127.0.0.1:{self.port}",
            RAPPORT_RATE_LIMIT_PER_MINUTE=RATE_LIMIT,
            RAPPORT_AUTH_RATE_LIMIT_PER_MINUTE=RATE_LIMIT,
            # JSON lines: the SQLite plan pass reads statements out of them.
            RAPPORT_LOG_FORMAT="json",
        )
        env.update(self.extra_env)
        return env

    def start(self) -> "Server":
        log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(self.binary), "serve"],
            env=self.env(),
            stdout=log_file,
            stderr=log_file,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the bench, which stops the server itself
            preexec_fn=die_with_parent,
        )
        log_file.close()
        deadline = time.monotonic() + 120  # migrations of a fresh database take a moment
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"the server exited with {self.process.returncode}; see {self.log_path}")
            try:
                if Api(self.url).call("GET", "/health/ready").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError(f"the server did not become ready; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def pid(self) -> int:
        return self.process.pid

    def status_kb(self, field: str) -> int:
        """VmRSS, VmHWM, … from /proc/<pid>/status, in kB."""
        text = Path(f"/proc/{self.pid}/status").read_text()
        return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M)[1])

    def reset_peak(self) -> bool:
        """Resets VmHWM to the current RSS (Linux clear_refs 5), to measure one phase's peak."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


def running(cleanup: Cleanup, server: Server) -> Server:
    cleanup.push(f"stop server {server.label}", server.stop)
    return server.start()


# ---------------------------------------------------------------------------------------
# A small HTTP client (keep-alive, JSON)
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body) if self.body else None


class Api:
    def __init__(self, base_url: str, key: str | None = None, timeout: float = 600):
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port, self.key, self.timeout = parts.hostname, parts.port, key, timeout
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body=None, headers: dict | None = None) -> Reply:
        data, hdrs = body, dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if self.key:
            hdrs.setdefault("Authorization", f"Bearer {self.key}")
        for attempt in (1, 2):  # once more on a dropped keep-alive connection
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.conn.request(method, path, body=data, headers=hdrs)
                resp = self.conn.getresponse()
                payload = resp.read()
                return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload)
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def expect(self, status: int, method: str, path: str, body=None, headers=None):
        reply = self.call(method, path, body, headers)
        if reply.status != status:
            raise BenchError(f"{method} {path}: {reply.status} {reply.body[:500]!r}")
        return reply.json()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def sign_up(server: Server) -> str:
    """An organization, its owner, a custom field, and an API key with every scope."""
    api = Api(server.url)
    signup = api.expect(201, "POST", "/v1/auth/signup", {
        "organization_name": "Bench Trading Co.",
        "name": "Bench Owner",
        "email": f"owner.{uuid.uuid4().hex[:8]}@bench.example",
        "password": "correct horse battery staple",
    })
    api.key = signup["access_token"]
    api.expect(201, "POST", "/v1/custom-fields", {
        "object": "contact", "key": "region", "label": "Region", "type": "select", "options": REGIONS,
    })
    key = api.expect(201, "POST", "/v1/api-keys", {"name": "bench", "scopes": ["*"]})
    return key["secret"]


# ---------------------------------------------------------------------------------------
# Data: deterministic, CRM-shaped
# ---------------------------------------------------------------------------------------

REGIONS = ["华东", "华北", "华南", "华中", "西南", "西北", "东北", "海外"]
INDUSTRIES = [
    "software", "retail", "manufacturing", "logistics", "finance", "healthcare", "education",
    "energy", "media", "agriculture", "construction", "hospitality", "telecom", "automotive",
    "pharma", "insurance", "real_estate", "consulting", "food", "textiles",
]
FIRST = [
    "wei", "fang", "min", "jing", "lei", "yan", "jun", "hui", "xin", "tao", "anna", "james",
    "maria", "david", "sofia", "lucas", "emma", "noah", "olga", "yuki", "hana", "omar", "lina",
    "ivan", "chloe", "mateo", "zara", "kenji", "priya", "arjun",
]
LAST = [
    "wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun",
    "ma", "zhu", "hu", "guo", "he", "lin", "garcia", "smith", "johnson", "muller", "rossi",
    "nguyen", "kim", "tanaka", "silva", "novak", "dubois", "jensen",
]
WORDS = ["golden", "river", "eastern", "harbor", "summit", "jade", "pacific", "silk", "north", "bright"]
NOUNS = ["trading", "works", "logistics", "foods", "systems", "textiles", "motors", "labs", "partners", "tea"]
CITIES = ["上海", "北京", "深圳", "杭州", "成都", "武汉", "西安", "沈阳", "Singapore", "Berlin"]
TITLES = ["buyer", "purchasing manager", "ceo", "cto", "engineer", "sales director", "analyst", "owner"]
STAGES = ["subscriber", "lead", "opportunity", "customer", "loyal", "churned"]


def company_rows(start: int, count: int) -> list[dict]:
    rng = random.Random(start)
    return [
        {
            "external_id": f"C-{k}",
            "name": f"{rng.choice(WORDS).title()} {rng.choice(NOUNS).title()} {k}",
            "domain": f"c{k}.example",
            "industry": INDUSTRIES[k % len(INDUSTRIES)],
            "employee_count": rng.randint(5, 5000),
            "address": {"city": rng.choice(CITIES), "country": "CN"},
        }
        for k in range(start, start + count)
    ]


def contact_rows(start: int, count: int, companies: int, tag: str = "P") -> list[dict]:
    rng = random.Random(start * 31 + len(tag))
    rows = []
    for i in range(start, start + count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        row = {
            "external_id": f"{tag}-{i}",
            "first_name": first.title(),
            "last_name": last.title(),
            "email": f"{first}.{last}.{tag.lower()}{i}@mail{i % 97}.example",
            "phones": [{"number": f"+86 13{i % 10} {rng.randint(0, 9999):04d} {i % 10000:04d}", "kind": "mobile"}],
            "title": rng.choice(TITLES),
            "lifecycle_stage": rng.choice(STAGES),
            "company_external_id": f"C-{rng.randrange(companies)}",
            "address": {"city": rng.choice(CITIES), "country": "CN"},
            "custom": {"region": rng.choice(REGIONS)},
        }
        if i % 10 == 0:
            row["tags"] = ["vip"]
        rows.append(row)
    return rows


def contacts_csv(start: int, count: int, companies: int, tag: str = "I") -> str:
    """The same kind of contacts as a CSV file for POST /v1/imports."""
    header = "external_id,first_name,last_name,email,phones,title,lifecycle_stage,company_external_id,address.city,custom.region"
    lines = [header]
    for r in contact_rows(start, count, companies, tag=tag):
        lines.append(",".join([
            r["external_id"], r["first_name"], r["last_name"], r["email"], r["phones"][0]["number"],
            r["title"], r["lifecycle_stage"], r["company_external_id"], r["address"]["city"],
            r["custom"]["region"],
        ]))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# Seeding through the batch API (this is also the batch upsert measurement)
# ---------------------------------------------------------------------------------------

BATCH = 1000


def upsert_batches(server: Server, key: str, path: str, batches: list, make_rows, clients: int,
                   sample_every: int = 0, deadline: float | None = None, every_tenth=None) -> dict:
    """Sends 1,000-row batch upserts, `clients` at a time; answers timings and sampled ids.

    `batches` are start offsets; `make_rows(start)` builds one batch. With a deadline, batches
    not started by then are skipped (a time-boxed run). `every_tenth()` runs after each tenth
    of the batches."""
    local = threading.local()
    sampled: list[str] = []
    timings: list[tuple[float, float, int]] = []
    lock = threading.Lock()

    def send(start: int):
        if deadline is not None and time.monotonic() >= deadline:
            return
        if not hasattr(local, "api"):
            local.api = Api(server.url, key)
        rows = make_rows(start)
        body = json.dumps({"id_property": "external_id", "records": rows}).encode()
        began = time.monotonic()
        answer = local.api.expect(200, "POST", path, body, {"Content-Type": "application/json"})
        ended = time.monotonic()
        failed = [r for r in answer["results"] if r["status"] not in ("created", "updated", "unchanged")]
        if failed:
            raise BenchError(f"{path}: {len(failed)} rows failed, first: {json.dumps(failed[0])[:600]}")
        with lock:
            timings.append((began, ended, len(rows)))
            if sample_every:
                sampled.extend(r["id"] for r in answer["results"] if r["index"] % sample_every == 0)
            tenth = len(batches) >= 100 and len(timings) % (len(batches) // 10) == 0
        if tenth:
            log(f"    {len(timings) * 100 // len(batches)} %")  # long seedings show progress
            if every_tenth:
                every_tenth()

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for _ in pool.map(send, batches):
            pass
    wall = time.monotonic() - began
    rows = sum(t[2] for t in timings)
    return {"rows": rows, "seconds": wall, "rows_per_s": rows / wall if wall else 0.0,
            "timings": timings, "ids": sampled}


def tail_rate(timings: list, fraction: float = 0.1) -> float:
    """Rows/s over the last `fraction` of the batches: the rate once the table is big."""
    ordered = sorted(timings)
    tail = ordered[int(len(ordered) * (1 - fraction)):]
    if not tail:
        return 0.0
    span = max(t[1] for t in tail) - min(t[0] for t in tail)
    return sum(t[2] for t in tail) / span if span > 0 else 0.0


def seed(server: Server, key: str, plan: Plan) -> dict:
    # What autovacuum would do while the tables grow (it is off on this machine's shared
    # PostgreSQL): without fresh statistics the batch lookups plan as if the tables were empty.
    analyze = (lambda: analyze_postgres(server.backend)) if server.backend.pg_database else None
    log(f"seeding {plan.companies:,} companies")
    companies = upsert_batches(
        server, key, "/v1/companies/batch/upsert", list(range(0, plan.companies, BATCH)),
        lambda s: company_rows(s, min(BATCH, plan.companies - s)), plan.seed_clients, every_tenth=analyze)
    log(f"  {companies['rows_per_s']:,.0f} rows/s; seeding {plan.contacts:,} contacts")
    # Keep a quarter more ids than the samples need, spread over the whole table: few enough
    # to hold at 1,000,000.
    needed = plan.get_ids + plan.patch_targets
    contacts = upsert_batches(
        server, key, "/v1/contacts/batch/upsert", list(range(0, plan.contacts, BATCH)),
        lambda s: contact_rows(s, min(BATCH, plan.contacts - s), plan.companies),
        plan.seed_clients, sample_every=max(1, plan.contacts * 4 // (needed * 5)), every_tenth=analyze)
    log(f"  {contacts['rows_per_s']:,.0f} rows/s")
    ids = contacts.pop("ids")
    random.Random(7).shuffle(ids)
    summary = {}
    for name, result in (("companies", companies), ("contacts", contacts)):
        summary[name] = {
            "rows": result["rows"],
            "seconds": round(result["seconds"], 1),
            "rows_per_s": round(result["rows_per_s"]),
            "last_tenth_rows_per_s": round(tail_rate(result["timings"])),
        }
    # The patched records first: the PATCH scripts need more of them than connections.
    patch_ids = ids[: plan.patch_targets]
    if len(patch_ids) < 4 * plan.memory_connections:
        raise BenchError(f"only {len(patch_ids)} records to patch; the scripts need 4 per connection")
    return {
        "summary": summary,
        "patch_ids": patch_ids,
        "get_ids": ids[plan.patch_targets: plan.patch_targets + plan.get_ids],
    }


def analyze_postgres(backend: Backend) -> None:
    """What autovacuum's analyze does to tables that grow (autovacuum is off on this machine's
    PostgreSQL), done at fixed points so that the plans do not depend on when it happened."""
    if backend.pg_database:
        psql("analyze", backend.pg_database)


def autovacuum_setting() -> str:
    try:
        return psql("show autovacuum")
    except subprocess.CalledProcessError:
        return "unknown"


# ---------------------------------------------------------------------------------------
# wrk and pgbench
# ---------------------------------------------------------------------------------------


def write_lines(path: Path, lines) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def run_wrk(url: str, script: str, connections: int, threads: int, seconds: int, key: str | None,
            env: dict | None = None) -> dict:
    """Runs wrk with a script of bench/wrk; answers its JSON summary plus derived figures."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
           "-s", str(WRK_DIR / script)]
    if key:
        cmd += ["-H", f"Authorization: Bearer {key}"]
    cmd.append(url)
    run_env = dict(os.environ, BENCH_WRK_DIR=str(WRK_DIR), BENCH_RUN=uuid.uuid4().hex[:8],
                   BENCH_THREADS=str(threads), **(env or {}))
    out = subprocess.run(cmd, env=run_env, text=True, capture_output=True)
    found = re.search(r"^BENCH_JSON (.*)$", out.stdout, re.M)
    if out.returncode != 0 or not found:
        raise BenchError(f"wrk failed ({out.returncode}): {out.stderr[-800:]} {out.stdout[-800:]}")
    raw = json.loads(found[1])
    statuses = {k: int(v) for k, v in (raw.get("statuses") or {}).items()}
    errors = {k: int(v) for k, v in raw["errors"].items()}
    requests = int(raw["requests"])
    seconds_run = raw["duration_us"] / 1e6
    bad = sum(n for s, n in statuses.items() if not s.startswith("2"))
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    shown = " ".join(a if " " not in a else repr(a) for a in cmd)
    shown = re.sub(r"Bearer [^\s']+", "Bearer $KEY", shown)
    return {
        "rps": requests / seconds_run,
        "requests": requests,
        "p50_ms": raw["latency_us"]["p50"] / 1000,
        "p90_ms": raw["latency_us"]["p90"] / 1000,
        "p99_ms": raw["latency_us"]["p99"] / 1000,
        "max_ms": raw["latency_us"]["max"] / 1000,
        "statuses": statuses,
        "errors": bad + socket_errors + int(raw.get("script_errors", 0)),
        "socket_errors": errors,
        "connections": connections,
        "seconds": seconds,
        "command": shown,
    }


def check_clean(name: str, result: dict) -> None:
    if result["statuses"].get("412"):
        raise BenchError(f"{name}: {result['statuses']['412']} answers were 412: the bench gave two "
                         "requests one record at once (see bench/wrk/patch.lua)")
    if result["errors"]:
        log(f"  WARNING {name}: {result['errors']} errors, statuses {result['statuses']}, "
            f"socket errors {result['socket_errors']}")


def pgbench_init(cleanup: Cleanup, plan: Plan) -> str:
    db = create_pg_database(cleanup, "pgbench")
    log(f"pgbench -i -s {plan.pgbench_scale} on {db}")
    sh([str(PG_BIN / "pgbench"), "-i", "-q", "-s", str(plan.pgbench_scale), "-h", PG["host"],
        "-p", PG["port"], "-U", PG["user"], db])
    return db


def run_pgbench(db: str, connections: int, threads: int, seconds: int) -> dict:
    """pgbench -S -M prepared: PostgreSQL's own point-read ceiling on this machine."""
    cmd = [str(PG_BIN / "pgbench"), "-S", "-M", "prepared", "-n", "-c", str(connections),
           "-j", str(threads), "-T", str(seconds), "-h", PG["host"], "-p", PG["port"], "-U", PG["user"], db]
    # The PostgreSQL is shared: other people's test databases can take the connection slots
    # for a while ("too many clients"). Wait for them rather than lose the reference.
    for attempt in range(6):
        run = subprocess.run(cmd, text=True, capture_output=True)
        if run.returncode == 0:
            break
        log(f"  pgbench failed ({run.stderr.strip().splitlines()[-1:]}); retrying in 10 s")
        time.sleep(10)
    else:
        return {"error": run.stderr.strip()[-300:], "command": " ".join(cmd[:-1] + ["$PGBENCH_DB"])}
    out = run.stdout
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)[1])
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    return {
        "rps": tps,
        "mean_ms": float(latency[1]) if latency else None,
        "connections": connections,
        "seconds": seconds,
        "command": " ".join(cmd[:-1] + ["$PGBENCH_DB"]),
    }


# ---------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------

# Two conditions that a CRM list view sends: a custom field and a standard one.
SEARCH_TWO = {
    "filter": {"and": [
        {"field": "custom.region", "op": "eq", "value": "华东"},
        {"field": "lifecycle_stage", "op": "eq", "value": "customer"},
    ]},
    "limit": 50,
}


def current_versions(server: Server, key: str, ids: list[str]) -> list[str]:
    """'id version' lines for the PATCH scripts: versions change with every patch run."""
    api = Api(server.url, key)
    lines = []
    for id_ in ids:
        contact = api.expect(200, "GET", f"/v1/contacts/{id_}")
        lines.append(f"{id_} {contact['version']}")
    api.close()
    return lines


def walk_cursors(server: Server, key: str, pages: int) -> dict:
    """Follows next_cursor `pages` pages deep (the deep-page query starts there), timing every
    page, and keeps cursors from all depths for the list scenario."""
    api = Api(server.url, key)
    cursor, times, keep = None, [], [""]
    every = max(1, pages // 100)
    for page in range(pages):
        path = "/v1/contacts?limit=50" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        began = time.perf_counter()
        body = api.expect(200, "GET", path)
        times.append((time.perf_counter() - began) * 1000)
        cursor = body["next_cursor"]
        if cursor is None:
            raise BenchError(f"the walk ran out of contacts at page {page + 1}")
        if (page + 1) % every == 0:
            keep.append(urllib.parse.quote(cursor, safe=""))
    api.close()
    head, tail = sorted(times[:100]), sorted(times[-100:])
    return {
        "pages": pages,
        "seconds": round(sum(times) / 1000, 1),
        "first_100_p50_ms": head[len(head) // 2],
        "last_100_p50_ms": tail[len(tail) // 2],
        "deep_cursor": urllib.parse.quote(cursor, safe=""),
        "list_cursors": keep,
    }


def throughput(server: Server, key: str, plan: Plan, files: dict, pgbench_db: str | None) -> dict:
    """Each scenario at `connections` for `duration`, its reference right beside it."""
    c, t, d, url = plan.connections, plan.threads, plan.duration, server.url
    results = {}

    def wrk(name, script, path="/", env=None, auth=True):
        log(f"  {name}")
        result = run_wrk(url + path, script, c, t, d, key if auth else None, env)
        check_clean(name, result)
        results[name] = result

    wrk("health", "static.lua", "/health/live")
    wrk("get", "get_by_id.lua", env={"BENCH_IDS_FILE": str(files["ids"])})
    if pgbench_db:
        log("  pgbench")
        results["pgbench"] = run_pgbench(pgbench_db, c, t, d)
    wrk("list", "list.lua", env={"BENCH_CURSORS_FILE": str(files["cursors"])})
    wrk("search", "static.lua", "/v1/contacts/search",
        env={"BENCH_METHOD": "POST", "BENCH_BODY_FILE": str(files["search_two"])})
    wrk("create", "create.lua")
    write_lines(files["targets"], current_versions(server, key, files["patch_ids"]))
    wrk("patch", "patch.lua", env={"BENCH_TARGETS_FILE": str(files["targets"])})
    return results


def scale_queries(deep_cursor: str) -> list[tuple[str, str, str, dict | None]]:
    """(name, method, path, body) of the single-client queries at 1,000,000 contacts."""
    return [
        ("first_page", "GET", "/v1/contacts?limit=50", None),
        ("deep_page", "GET", f"/v1/contacts?limit=50&cursor={deep_cursor}", None),
        ("custom_field", "POST", "/v1/contacts/search",
         {"filter": {"field": "custom.region", "op": "eq", "value": "西北"}, "limit": 50}),
        ("related_company", "POST", "/v1/contacts/search",
         {"filter": {"field": "company.industry", "op": "eq", "value": "logistics"}, "limit": 50}),
        ("q_2_chars", "GET", "/v1/contacts?limit=50&q=zh", None),
        ("q_6_chars", "GET", "/v1/contacts?limit=50&q=garcia", None),
    ]


def scale(server: Server, key: str, plan: Plan, deep_cursor: str, workdir: Path) -> dict:
    results = {}
    for name, method, path, body in scale_queries(deep_cursor):
        log(f"  {name}")
        env = {"BENCH_METHOD": method}
        if body is not None:
            body_file = workdir / f"scale-{name}.json"
            body_file.write_text(json.dumps(body, ensure_ascii=False))
            env["BENCH_BODY_FILE"] = str(body_file)
        # One request first: the answer must be a page, or the timing means nothing.
        api = Api(server.url, key)
        page = api.expect(200, method, path, body)
        api.close()
        result = run_wrk(server.url + path, "static.lua", 1, 1, plan.scale_duration, key, env)
        check_clean(name, result)
        result["rows"] = len(page["data"])
        results[name] = result
    return results


def memory(server: Server, key: str, plan: Plan, files: dict) -> dict:
    """Peak RSS idle, then under 64 connections of the mixed load."""
    api = Api(server.url, key)
    for _ in range(20):  # a few requests so that the idle figure is of a working server
        api.expect(200, "GET", "/v1/contacts?limit=50")
    api.close()
    time.sleep(2)
    idle = {"rss_kb": server.status_kb("VmRSS"), "hwm_kb": server.status_kb("VmHWM")}
    reset = server.reset_peak()
    write_lines(files["targets"], current_versions(server, key, files["patch_ids"]))
    log(f"  mixed load at {plan.memory_connections} connections")
    load = run_wrk(server.url + "/", "mixed.lua", plan.memory_connections, plan.threads, plan.duration, key,
                   {"BENCH_IDS_FILE": str(files["ids"]), "BENCH_CURSORS_FILE": str(files["cursors"]),
                    "BENCH_TARGETS_FILE": str(files["targets"])})
    check_clean("memory mixed load", load)
    return {
        "idle_rss_kb": idle["rss_kb"],
        "idle_hwm_kb": idle["hwm_kb"],
        "loaded_hwm_kb": server.status_kb("VmHWM"),
        "loaded_rss_after_kb": server.status_kb("VmRSS"),
        "peak_was_reset": reset,
        "load": load,
    }


def batch_writes(server: Server, key: str, plan: Plan, next_row: int) -> dict:
    """Time-boxed 1,000-row batch upserts: new contacts, then the same contacts changed."""
    results = {}
    starts = list(range(next_row, next_row + 2000 * BATCH, BATCH))
    log("  batch upsert, new rows")
    created = upsert_batches(server, key, "/v1/contacts/batch/upsert", starts,
                             lambda s: contact_rows(s, BATCH, plan.companies, tag="B"), plan.seed_clients,
                             deadline=time.monotonic() + plan.duration)
    batches_created = len(created["timings"])
    results["batch_create"] = {"rows": created["rows"], "seconds": round(created["seconds"], 1),
                               "rows_per_s": round(created["rows_per_s"]), "clients": plan.seed_clients}
    log("  batch upsert, existing rows changed")

    def changed(s):
        rows = contact_rows(s, BATCH, plan.companies, tag="B")
        for row in rows:
            row["title"] = "changed " + row["title"]
        return rows

    updated = upsert_batches(server, key, "/v1/contacts/batch/upsert", starts[:batches_created], changed,
                             plan.seed_clients, deadline=time.monotonic() + plan.duration)
    results["batch_update"] = {"rows": updated["rows"], "seconds": round(updated["seconds"], 1),
                               "rows_per_s": round(updated["rows_per_s"]), "clients": plan.seed_clients}
    return results


def csv_import(server: Server, key: str, plan: Plan, tag: str = "I") -> dict:
    """POST /v1/imports (multipart), then poll the job until it is done."""
    log(f"  CSV import of {plan.import_rows:,} rows")
    text = contacts_csv(0, plan.import_rows, plan.companies, tag).encode()
    boundary = uuid.uuid4().hex
    parts = [("object", b"contact"), ("id_property", b"external_id")]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
        for name, value in parts
    )
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="contacts.csv"\r\n'
             "Content-Type: text/csv\r\n\r\n").encode() + text + f"\r\n--{boundary}--\r\n".encode()
    api = Api(server.url, key)
    began = time.monotonic()
    job = api.expect(202, "POST", "/v1/imports", body,
                     {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    accepted = time.monotonic() - began
    while job["status"] in ("queued", "running"):
        time.sleep(0.2)
        job = api.expect(200, "GET", f"/v1/imports/{job['id']}")
    seconds = time.monotonic() - began
    api.close()
    if job["status"] != "completed" or job["failed"]:
        # A product failure, not the bench's: reported with the figures, the run goes on.
        log(f"  WARNING the import ended {job['status']} after {job['processed']:,} rows: {job.get('error')}")
    return {"rows": job["total"], "processed": job["processed"], "created": job["created"],
            "status": job["status"], "error": job.get("error"), "failed_rows": job["failed"],
            "seconds": round(seconds, 1), "upload_seconds": round(accepted, 2),
            "rows_per_s": round(job["processed"] / seconds), "bytes": len(text)}


# ---------------------------------------------------------------------------------------
# Profiles (only where a goal is missed) and plans
# ---------------------------------------------------------------------------------------


def perf_profile(server: Server, seconds: int, load) -> dict:
    """perf while `load()` runs: the CPU split between processes over the whole machine (load
    generator, server and database share the cores), and the server's own time with DWARF call
    graphs (a release build has no frame pointers, so -g alone would lose the callers)."""
    if shutil.which("perf") is None:
        return {"error": "perf is not installed"}
    machine_data = server.workdir / f"perf-all-{uuid.uuid4().hex[:6]}.data"
    server_data = server.workdir / f"perf-server-{uuid.uuid4().hex[:6]}.data"
    recorders = [
        subprocess.Popen(["perf", "record", "-a", "-o", str(machine_data), "--", "sleep", str(seconds)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen(["perf", "record", "-F", "499", "--call-graph", "dwarf,32768", "-p", str(server.pid),
                          "-o", str(server_data), "--", "sleep", str(seconds)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        load()
    finally:
        for recorder in recorders:
            recorder.wait()

    def perf_report(data: Path, *args) -> list[str]:
        out = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "-g", "none", *args],
                             text=True, capture_output=True)
        return [line.rstrip() for line in out.stdout.splitlines() if line.strip() and not line.startswith("#")]

    by_process = cpu_split(perf_report(machine_data, "--no-children", "--sort", "pid"), server)
    # Self time says which leaf functions burn the cycles; time including callees says which
    # of the server's own steps (auth, the query, JSON, routing) they belong to.
    self_time = perf_report(server_data, "--no-children", "--sort", "dso,sym", "--percent-limit", "0.8")
    inclusive = perf_report(server_data, "--children", "--sort", "sym", "--percent-limit", "2")
    for data in (machine_data, server_data):
        data.unlink(missing_ok=True)
    return {"by_process": by_process[:15], "server_functions": self_time[:30],
            "server_inclusive": readable_steps(inclusive), "seconds": seconds}


def cpu_split(lines: list[str], server: Server) -> list[str]:
    """`perf report --sort pid` (per thread) summed per role: this server, its PostgreSQL
    backends, wrk, the bench itself, and everything else on the shared machine."""
    db = server.backend.pg_database or "\0"
    shares: dict[str, float] = {}
    for line in lines:
        found = re.match(r"\s*([\d.]+)%\s+(\d+):(.*)$", line)
        if not found:
            continue
        share, tid, comm = float(found[1]), int(found[2]), found[3].strip()
        try:
            tgid = int(re.search(r"^Tgid:\s+(\d+)", Path(f"/proc/{tid}/status").read_text(), re.M)[1])
            cmdline = Path(f"/proc/{tgid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, TypeError):
            tgid, cmdline = -1, ""
        if tgid == server.pid:
            role = "rapport server"
        elif comm.startswith("postgres") and db in cmdline:
            role = "PostgreSQL backends of the bench database"
        elif comm.startswith("postgres"):
            role = "PostgreSQL, other backends and background processes"
        elif comm == "wrk":
            role = "wrk (load generator)"
        elif tgid == os.getpid():
            role = "bench.py (batch client)"
        elif comm == "swapper":
            role = "idle"
        else:
            role = "other processes on the shared machine"
        shares[role] = shares.get(role, 0.0) + share
    return [f"{share:6.2f}%  {role}" for role, share in sorted(shares.items(), key=lambda kv: -kv[1])]


# The crates whose frames say what the server is doing (the rest is runtime plumbing).
STEP_CRATES = re.compile(r"^(rapport\w*|sqlx\w*|serde\w*|phonenumber|regex\w*|tracing_subscriber|"
                         r"actix_router|actix_http::h1::encoder|jsonwebtoken|sha2|uuid|chrono|alloc::collections)::")


def short_symbol(symbol: str) -> str:
    """`a::b<T<U>>::c::{{closure}}` → `a::b::c`: Rust's async symbols are unreadable in full."""
    previous = None
    while previous != symbol:
        previous = symbol
        symbol = re.sub(r"(?<=[\w)])<[^<>]*>", "", symbol)  # generic arguments
        symbol = re.sub(r"<impl [^<>]*? for ([^<>]*)>", r"\1", symbol)  # <impl Trait for Type>
        symbol = re.sub(r"<([^<>]*?) as [^<>]*>", r"\1", symbol)  # <Type as Trait>
    symbol = re.sub(r"::\{\{closure\}\}|\{closure#\d+\}|\(inlined\)", "", symbol)
    return re.sub(r"(::)+$", "", symbol.strip())


def readable_steps(lines: list[str]) -> list[str]:
    """From `perf report --children` lines, the product's own frames, shortened, once each."""
    seen, out = set(), []
    for line in lines:
        found = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\[[.k]\]\s+(.*)$", line)
        if not found:
            continue
        name = short_symbol(found[3])
        if not STEP_CRATES.match(name) or name in seen:
            continue
        seen.add(name)
        out.append(f"{float(found[1]):6.2f}%  {name[:150]}")
    return out[:40]


def profile_scenarios(server: Server, key: str, plan: Plan, files: dict, wanted: set[str]) -> dict:
    profiles = {}
    loads = {
        "get": lambda: run_wrk(server.url + "/", "get_by_id.lua", plan.connections, plan.threads,
                               plan.profile_seconds, key, {"BENCH_IDS_FILE": str(files["ids"])}),
        "import": lambda: csv_import(server, key, dataclasses.replace(plan, import_rows=plan.import_rows // 2),
                                     tag="J"),
        "batch_create": lambda: upsert_batches(
            server, key, "/v1/contacts/batch/upsert", list(range(10_000_000, 10_000_000 + 500 * BATCH, BATCH)),
            lambda s: contact_rows(s, BATCH, plan.companies, tag="F"), plan.seed_clients,
            deadline=time.monotonic() + plan.profile_seconds),
    }
    for name in sorted(wanted & loads.keys()):
        log(f"  perf profile of {name}")
        profiles[name] = perf_profile(server, plan.profile_seconds, loads[name])
    return profiles


LIST_SQL = re.compile(r"\bfrom contacts t where t\.org_id\b", re.I)


def plan_lines(plan_text: list[str]) -> list[str]:
    """The lines of a PostgreSQL plan that say which index serves the query, and how well."""
    keep = re.compile(r"(->|^\s*(Limit|Sort|Index|Bitmap|Seq|Nested|Hash|Merge|Incremental)|Index Cond|"
                      r"Recheck Cond|Filter|Rows Removed|Sort Key|Sort Method|Heap Blocks|Execution Time|"
                      r"Buffers)")
    out = []
    for line in plan_text:
        if line.strip().startswith("Query Text"):
            continue
        if keep.search(line):
            line = re.sub(r"\s*\(cost=[^)]*\)", "", line)
            out.append(line.rstrip()[:220])
    return out


def read_new(path: Path, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def postgres_plans(binary: Path, backend: Backend, key: str, deep_cursor: str, workdir: Path,
                   cleanup: Cleanup) -> dict:
    """auto_explain in a pass of its own, after the timing: every statement of the bench
    database is logged with its plan (EXPLAIN ANALYZE) to the PostgreSQL server log."""
    db = backend.pg_database
    settings = {
        "session_preload_libraries": "'auto_explain'",
        "auto_explain.log_min_duration": "0",
        "auto_explain.log_analyze": "on",
        "auto_explain.log_buffers": "on",
    }
    for name, value in settings.items():
        psql(f"alter database {db} set {name} = {value}")

    def reset():
        for name in settings:
            psql(f"alter database {db} reset {name}")

    cleanup.push("reset auto_explain", reset)
    # A new server: the settings apply to new connections only.
    server = running(cleanup, Server(binary, backend, workdir, "plans"))
    api = Api(server.url, key)
    plans = {}
    for name, method, path, body in scale_queries(deep_cursor) + [("search_two", "POST", "/v1/contacts/search",
                                                                     SEARCH_TWO)]:
        # Several times: after five executions PostgreSQL may switch a prepared statement to
        # its generic plan, which is what the timed runs mostly used. The last one counts.
        for _ in range(7):
            offset = PG_LOG.stat().st_size
            api.expect(200, method, path, body)
            time.sleep(0.3)
            entries = auto_explain_entries(read_new(PG_LOG, offset), db)
        chosen = [e for e in entries if LIST_SQL.search(e["query"])]
        plans[name] = {"lines": plan_lines(chosen[-1]["plan"]) if chosen else ["(no plan found in the log)"],
                       "duration_ms": chosen[-1]["duration_ms"] if chosen else None}
    api.close()
    cleanup.pop(server.stop)
    cleanup.pop(reset)
    return plans


def auto_explain_entries(text: str, db: str) -> list[dict]:
    """Splits PostgreSQL log text into auto_explain entries of database `db`."""
    entries, current = [], None
    head = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
    for line in text.splitlines():
        if head.match(line):
            current = None
            found = re.search(rf"@{db} LOG:  duration: ([\d.]+) ms  plan:", line)
            if found:
                current = {"duration_ms": float(found[1]), "query": "", "plan": []}
                entries.append(current)
        elif current is not None:
            if line.strip().startswith("Query Text:"):
                current["query"] = line.split("Query Text:", 1)[1].strip()
            current["plan"].append(line)
    return entries


def sqlite_plans(binary: Path, backend: Backend, key: str, deep_cursor: str, workdir: Path,
                 cleanup: Cleanup) -> dict:
    """The SQL the server runs (sqlx logs it at debug level), through EXPLAIN QUERY PLAN."""
    server = running(cleanup, Server(binary, backend, workdir, "plans",
                                     {"RAPPORT_LOG_LEVEL": "rapport=warn,sqlx::query=debug"}))
    api = Api(server.url, key)
    plans = {}
    for name, method, path, body in scale_queries(deep_cursor) + [("search_two", "POST", "/v1/contacts/search",
                                                                     SEARCH_TWO)]:
        offset = server.log_path.stat().st_size
        api.expect(200, method, path, body)
        time.sleep(0.3)
        statements = []
        for line in read_new(server.log_path, offset).splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            sql = event.get("db.statement") or event.get("summary") or ""
            if LIST_SQL.search(sql):
                statements.append(sql.strip())
        if not statements:
            plans[name] = {"lines": ["(the statement was not found in the server log)"], "sql": None}
            continue
        sql = statements[-1]
        out = subprocess.run(["sqlite3", "-readonly", str(backend.sqlite_file), f"EXPLAIN QUERY PLAN {sql}"],
                             text=True, capture_output=True)
        lines = [line.rstrip() for line in (out.stdout or out.stderr).splitlines() if line.strip()]
        plans[name] = {"lines": lines, "sql": sql}
    api.close()
    cleanup.pop(server.stop)
    return plans


# ---------------------------------------------------------------------------------------
# One backend, start to end
# ---------------------------------------------------------------------------------------


def bench_backend(name: str, binary: Path, plan: Plan, pgbench_db: str | None, workdir: Path,
                  profile: str) -> dict:
    cleanup = Cleanup()
    try:
        backend = fresh_backend(name, workdir, cleanup)
        out: dict = {"database_url": re.sub(r"/[^/]*$", "/<fresh>", backend.url),
                     "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
        files = {k: workdir / f"{name}-{k}.txt" for k in ("ids", "cursors", "targets")}
        files["search_two"] = workdir / "search-two.json"
        files["search_two"].write_text(json.dumps(SEARCH_TWO, ensure_ascii=False))

        log(f"[{name}] seeding")
        server = running(cleanup, Server(binary, backend, workdir, "seed"))
        key = sign_up(server)
        seeded = seed(server, key, plan)
        out["seed"] = seeded["summary"]
        write_lines(files["ids"], seeded["get_ids"])
        files["patch_ids"] = seeded["patch_ids"]
        analyze_postgres(backend)
        log(f"[{name}] walking {plan.deep_pages:,} pages by cursor")
        walk = walk_cursors(server, key, plan.deep_pages)
        write_lines(files["cursors"], walk.pop("list_cursors"))
        out["walk"] = walk
        out["seed"]["server_peak_rss_kb"] = server.status_kb("VmHWM")
        cleanup.pop(server.stop)

        # The queries at scale first, on the seeded data alone: the contacts that the create
        # scenarios add later are the newest, and would stand in front of every page.
        server = running(cleanup, Server(binary, backend, workdir, "scale"))
        log(f"[{name}] single-client queries at scale, {plan.scale_duration} s each")
        out["scale"] = scale(server, key, plan, walk["deep_cursor"], workdir)
        cleanup.pop(server.stop)

        # Their plans, in a pass of its own (logging every plan would disturb the timing), and
        # before the import below, which analyzes the tables (the SQLite timing had no stats).
        log(f"[{name}] query plans")
        planner = postgres_plans if name == "postgres" else sqlite_plans
        out["plans"] = planner(binary, backend, key, walk["deep_cursor"], workdir, cleanup)

        # A fresh process: its idle and loaded peaks are not those of the seeding.
        server = running(cleanup, Server(binary, backend, workdir, "timed"))
        log(f"[{name}] memory")
        out["memory"] = memory(server, key, plan, files)
        log(f"[{name}] throughput at {plan.connections} connections, {plan.duration} s each")
        out["throughput"] = throughput(server, key, plan, files, pgbench_db)
        log(f"[{name}] batch upsert and CSV import")
        out["writes"] = batch_writes(server, key, plan, plan.contacts + 1_000_000)
        out["writes"]["import"] = csv_import(server, key, plan)

        wanted = set(report.missed_scenarios(name, out)) if profile == "missed" else set()
        if profile == "all":
            wanted = {"get", "batch_create"}
        if wanted:
            log(f"[{name}] profiles of {', '.join(sorted(wanted))}")
            out["profiles"] = profile_scenarios(server, key, plan, files, wanted)
        cleanup.pop(server.stop)
        return out
    finally:
        cleanup.run()


# ---------------------------------------------------------------------------------------
# The soak
# ---------------------------------------------------------------------------------------


def pg_connections(db: str) -> int:
    return int(psql(f"select count(*) from pg_stat_activity where datname = '{db}'"))


def warning_lines(log_path: Path) -> tuple[int, list[list]]:
    """The server log's WARN and ERROR lines: how many, and the commonest messages with counts
    (the log itself goes with the work directory)."""
    kinds: dict[str, int] = {}
    count = 0
    for line in log_path.read_text(errors="replace").splitlines():
        if '"level":"WARN"' not in line and '"level":"ERROR"' not in line:
            continue
        count += 1
        try:
            entry = json.loads(line)
        except ValueError:
            entry = {"message": line[:120]}
        what = " ".join(str(entry.get(k, "")) for k in ("level", "target", "message")).strip()
        kinds[what] = kinds.get(what, 0) + 1
    return count, [[k, n] for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:10]]


def soak(binary: Path, plan: Plan, minutes: float, workdir: Path) -> dict:
    """Mixed load for `minutes` on PostgreSQL, sampling memory, descriptors and connections."""
    cleanup = Cleanup()
    try:
        backend = fresh_backend("postgres", workdir, cleanup)
        server = running(cleanup, Server(binary, backend, workdir, "soak"))
        key = sign_up(server)
        small = dataclasses.replace(plan, contacts=min(plan.contacts, 100_000), companies=min(plan.companies, 10_000))
        log(f"soak: seeding {small.contacts:,} contacts")
        seeded = seed(server, key, small)
        analyze_postgres(backend)
        files = {"ids": write_lines(workdir / "soak-ids.txt", seeded["get_ids"])}
        walk = walk_cursors(server, key, min(200, small.contacts // 100))
        files["cursors"] = write_lines(workdir / "soak-cursors.txt", walk["list_cursors"])
        files["targets"] = write_lines(workdir / "soak-targets.txt",
                                       current_versions(server, key, seeded["patch_ids"]))
        seconds = int(minutes * 60)
        samples: list[dict] = []
        began = time.monotonic()
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                samples.append({
                    "t": round(time.monotonic() - began),
                    "rss_kb": server.status_kb("VmRSS"),
                    "fds": server.open_fds(),
                    "pg_connections": pg_connections(backend.pg_database),
                })
                stop.wait(10)

        sampler = threading.Thread(target=sample, daemon=True)
        log(f"soak: {minutes:g} minutes of mixed load at {plan.connections} connections")
        sampler.start()
        load = run_wrk(server.url + "/", "mixed.lua", plan.connections, plan.threads, seconds, key,
                       {"BENCH_IDS_FILE": str(files["ids"]), "BENCH_CURSORS_FILE": str(files["cursors"]),
                        "BENCH_TARGETS_FILE": str(files["targets"])})
        time.sleep(10)  # one sample after the load: what is left when it stops
        stop.set()
        sampler.join()
        warnings, kinds = warning_lines(server.log_path)
        return {"minutes": minutes, "connections": plan.connections, "seeded_contacts": small.contacts,
                "load": load, "samples": samples, "server_warnings": warnings, "warning_kinds": kinds,
                "peak_rss_kb": server.status_kb("VmHWM")}
    finally:
        cleanup.run()


# ---------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------


def results_dir(quick: bool) -> Path:
    # Quick runs never overwrite the committed results.
    path = BENCH / ("out" if quick else "results")
    path.mkdir(parents=True, exist_ok=True)
    return path


def render(out_dir: Path) -> Path:
    bench_json, soak_json = out_dir / "bench.json", out_dir / "soak.json"
    if not bench_json.exists():
        raise BenchError(f"no {bench_json}: run the bench first")
    bench = json.loads(bench_json.read_text())
    soak_result = json.loads(soak_json.read_text()) if soak_json.exists() else None
    target = out_dir.parent / "RESULTS.md" if out_dir.name == "results" else out_dir / "RESULTS.md"
    target.write_text(report.render(bench, soak_result))
    log(f"wrote {target.relative_to(REPO)}")
    return target


def command_line(args) -> str:
    return "python3 bench/bench.py " + " ".join(sys.argv[1:])


def cmd_run(args) -> None:
    plan = QUICK if args.quick else FULL
    if args.contacts:
        plan = dataclasses.replace(plan, contacts=args.contacts)
    if args.duration:
        plan = dataclasses.replace(plan, duration=args.duration)
    backends = args.backends.split(",")
    ensure_tools(need_postgres=True)
    binary = Path(args.binary) if args.binary else build()
    out_dir = results_dir(args.quick)
    meta = machine()
    meta.update(plan=dataclasses.asdict(plan), quick=args.quick, command=command_line(args),
                build="CARGO_PROFILE_RELEASE_DEBUG=line-tables-only " + " ".join(BUILD_COMMAND))
    meta["autovacuum"] = autovacuum_setting()
    results = {"meta": meta, "backends": {}}
    previous = out_dir / "bench.json"
    if args.merge and previous.exists():
        # Keep the other backends of the last run (e.g. to rerun one backend after a failure).
        kept = json.loads(previous.read_text())["backends"]
        results["backends"] = {k: v for k, v in kept.items() if k not in backends}
        meta["merged"] = sorted(results["backends"])
    cleanup = Cleanup()
    workdir = Path(tempfile.mkdtemp(prefix="rapport-bench-"))
    if not args.keep:
        cleanup.push(f"remove {workdir}", lambda: shutil.rmtree(workdir, ignore_errors=True))
    try:
        pgbench_db = pgbench_init(cleanup, plan)
        began = time.monotonic()
        for name in backends:
            results["backends"][name] = bench_backend(name, binary, plan, pgbench_db, workdir, args.profile)
            # Written after each backend, so that a long run that fails later keeps its figures.
            (out_dir / "bench.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
        meta["minutes"] = round((time.monotonic() - began) / 60, 1)
        (out_dir / "bench.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
        render(out_dir)
    finally:
        cleanup.run()
    if args.keep:
        log(f"work files kept in {workdir}")


def cmd_soak(args) -> None:
    plan = QUICK if args.quick else FULL
    ensure_tools(need_postgres=True)
    binary = Path(args.binary) if args.binary else build()
    out_dir = results_dir(args.quick)
    workdir = Path(tempfile.mkdtemp(prefix="rapport-soak-"))
    try:
        result = soak(binary, plan, args.minutes, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["meta"] = machine()
    result["meta"]["command"] = command_line(args)
    (out_dir / "soak.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    log(report.soak_verdict(result))
    if (out_dir / "bench.json").exists():
        render(out_dir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the benchmark (make bench)")
    run.add_argument("--quick", action="store_true", help="20,000 contacts and seconds-long scenarios, to check the bench")
    run.add_argument("--backends", default="sqlite,postgres")
    run.add_argument("--contacts", type=int, help="override the number of contacts")
    run.add_argument("--duration", type=int, help="override the seconds of each throughput scenario")
    run.add_argument("--profile", choices=["missed", "all", "none"], default="missed",
                     help="perf profiles: where a goal is missed (default), always, or never")
    run.add_argument("--binary", help="use this rapport binary instead of building one")
    run.add_argument("--keep", action="store_true", help="keep the work directory (server logs)")
    run.add_argument("--merge", action="store_true",
                     help="keep the results of the backends not run now from the last bench.json")
    run.set_defaults(func=cmd_run)
    soak_cmd = sub.add_parser("soak", help="mixed load for minutes, watching for growth (make soak)")
    soak_cmd.add_argument("--minutes", type=float, default=10)
    soak_cmd.add_argument("--quick", action="store_true")
    soak_cmd.add_argument("--binary")
    soak_cmd.set_defaults(func=cmd_soak)
    render_cmd = sub.add_parser("render", help="write RESULTS.md again from the JSON")
    render_cmd.add_argument("--quick", action="store_true")
    render_cmd.set_defaults(func=lambda a: render(results_dir(a.quick)))
    clean = sub.add_parser("clean", help=f"drop {DB_PREFIX}* databases left by a killed run")
    clean.set_defaults(func=lambda a: drop_leftover_databases())
    args = parser.parse_args()
    exit_on_signals()
    try:
        args.func(args)
    except BenchError as error:
        log(f"failed: {error}")
        return 1
    except KeyboardInterrupt:
        log("interrupted; cleaned up")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
