#!/usr/bin/env python3
"""Contract fuzzing: runs schemathesis over every operation of openapi/openapi.json against a
live server, once on SQLite and once on PostgreSQL, with a valid API key.

    tests/contract/run.py [--examples N] [--backend sqlite|postgres|both] [-- extra st args]

The server is the debug binary (built first); each backend gets a fresh database that is
removed afterwards. Checks and their settings live in tests/contract/schemathesis.toml.
Standard library only; schemathesis itself is installed into target/contract-venv, pinned.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMATHESIS = "schemathesis==4.32.5"
VENV = os.path.join(ROOT, "target", "contract-venv")
CONFIG = os.path.join(ROOT, "tests", "contract", "schemathesis.toml")
POSTGRES_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def log(message):
    print(f"contract: {message}", flush=True)


def schemathesis():
    """The pinned schemathesis, installed once into a venv of the build directory."""
    exe = os.path.join(VENV, "bin", "schemathesis")
    marker = os.path.join(VENV, SCHEMATHESIS)
    if not os.path.exists(marker):
        log(f"installing {SCHEMATHESIS} into {VENV}")
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q", SCHEMATHESIS], check=True)
        open(marker, "w").close()
    return exe


def build():
    cargo = os.environ.get("CARGO", "cargo")
    subprocess.run([cargo, "build", "-q", "--bin", "rapport"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "debug", "rapport")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, method="GET", body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def psql(sql):
    subprocess.run(["psql", POSTGRES_ADMIN, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                   check=True, stdout=subprocess.DEVNULL)


class Server:
    """The binary serving one fresh database; stops it and removes the database on exit."""

    def __init__(self, binary, backend, workdir):
        self.backend = backend
        self.workdir = workdir
        self.database = None
        if backend == "sqlite":
            url = f"sqlite://{workdir}/rapport.db"
        else:
            self.database = f"rapport_contract_{uuid.uuid4().hex[:12]}"
            psql(f"create database {self.database}")
            url = POSTGRES_ADMIN.rsplit("/", 1)[0] + "/" + self.database
        self.address = f"http://127.0.0.1:{free_port()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
        env.update({
            "RAPPORT_DATABASE_URL": url,
            "RAPPORT_BIND": self.address.removeprefix("http://"),
            # The fuzzer sends thousands of requests a minute with one key.
            "RAPPORT_RATE_LIMIT_PER_MINUTE": "10000000",
            # Every request comes from 127.0.0.1, sign-ins and sign-ups included.
            "RAPPORT_AUTH_RATE_LIMIT_PER_MINUTE": "10000000",
            "RAPPORT_LOG_LEVEL": "warn",
            "RAPPORT_WORKERS": "2",
        })
        self.log_path = os.path.join(workdir, f"server-{backend}.log")
        self.process = subprocess.Popen([binary, "serve"], env=env, cwd=workdir,
                                        stdout=subprocess.DEVNULL,
                                        stderr=open(self.log_path, "w"))
        deadline = time.monotonic() + 60
        while True:
            try:
                call(self.address + "/health/ready")
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the {backend} server did not start; see {self.log_path}")
                time.sleep(0.2)

    def api_key(self):
        """Signs up an organization with a little data and answers an API key for everything."""
        session = call(self.address + "/v1/auth/signup", "POST", {
            "organization_name": "Contract", "name": "Fuzzer",
            "email": "fuzzer@contract.example", "password": "correct horse battery staple"})
        token = session["access_token"]
        key = call(self.address + "/v1/api-keys", "POST", {"name": "contract", "scopes": ["*"]}, token)
        # What the document's examples name, so that they reach the API's logic instead of a
        # 422 for an undefined custom field or an unknown sku.
        for object in ("contact", "company"):
            call(self.address + "/v1/custom-fields", "POST", {
                "object": object, "key": "region", "label": "Region", "type": "select",
                "options": ["华东", "华北", "华南"]}, token)
        call(self.address + "/v1/products", "POST", {
            "sku": "TEA-001", "name": "龙井茶 250 g", "unit_price_minor": 12900, "currency": "CNY"}, token)
        return key["secret"]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.database:
            psql(f"drop database if exists {self.database} with (force)")


def run(binary, backend, examples, config, extra):
    workdir = tempfile.mkdtemp(prefix=f"rapport-contract-{backend}-")
    server = Server(binary, backend, workdir)
    try:
        key = server.api_key()
        log(f"{backend}: fuzzing {server.address} with {examples} examples per operation")
        command = [schemathesis(), "--config-file", config, "--no-color", "run",
                   os.path.join(ROOT, "openapi", "openapi.json"),
                   "--url", server.address,
                   "--header", f"Authorization: Bearer {key}",
                   "--max-examples", str(examples),
                   "--report-dir", os.path.join(workdir, "report"),
                   *extra]
        code = subprocess.run(command, cwd=workdir).returncode
        if server.process.poll() is not None:
            log(f"{backend}: the server died; see {server.log_path}")
            code = code or 1
        if code:
            log(f"{backend}: FAILED (server log {server.log_path})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        return code
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=int(os.environ.get("CONTRACT_EXAMPLES", "25")))
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--config", default=CONFIG, help="schemathesis settings (default %(default)s)")
    parser.add_argument("extra", nargs="*", help="more schemathesis arguments, after --")
    args = parser.parse_args()
    schemathesis()
    binary = build()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    failed = [b for b in backends if run(binary, b, args.examples, args.config, args.extra)]
    if failed:
        log(f"failures on {', '.join(failed)}")
        sys.exit(1)
    log("no failures")


if __name__ == "__main__":
    main()
