#!/usr/bin/env python3
"""Failed sign-ins against a live server, watching its memory (issue 10, point 2).

Starts `rapport serve` on a fresh SQLite file in a temporary directory, signs one owner up,
then has CLIENTS threads send wrong passwords to POST /v1/auth/login for SECONDS seconds —
half for the owner's address, half for addresses nobody has — while sampling the server's
resident memory from /proc. Prints one JSON line: peak and final RSS, answers by status,
and requests per second.

    python3 bench/login_flood.py [--binary target/release/rapport] [--clients 64] [--seconds 30]

The per-address sign-in limit is lifted (RAPPORT_AUTH_RATE_LIMIT_PER_MINUTE) so every
request reaches the password check: this measures the bounded hashing, not the limiter.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> tuple[int, int]:
    """(current, peak) resident set in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def post(port: int, path: str, body: dict) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/rapport")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            RAPPORT_DATABASE_URL=f"sqlite://{tmp}/flood.db",
            RAPPORT_BIND=f"127.0.0.1:{port}",
            RAPPORT_AUTH_RATE_LIMIT_PER_MINUTE="10000000",
            RAPPORT_LOG_LEVEL="warn",
        )
        server = subprocess.Popen([args.binary, "serve"], env=env, stdout=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if server.poll() is not None:
                        raise SystemExit("the server stopped at start-up")
                    time.sleep(0.1)
            status = post(
                port,
                "/v1/auth/signup",
                {
                    "organization_name": "Flood",
                    "name": "Owner",
                    "email": "owner@flood.example",
                    "password": "a correct horse battery",
                },
            )
            assert status == 201, f"signup answered {status}"
            idle, _ = rss_kib(server.pid)

            answers: collections.Counter[int] = collections.Counter()
            lock = threading.Lock()
            deadline = time.monotonic() + args.seconds

            def client(n: int) -> None:
                i = 0
                while time.monotonic() < deadline:
                    email = "owner@flood.example" if i % 2 else f"nobody{n}-{i}@flood.example"
                    try:
                        code = post(port, "/v1/auth/login", {"email": email, "password": "wrong"})
                    except OSError:
                        code = 0
                    with lock:
                        answers[code] += 1
                    i += 1

            threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
            started = time.monotonic()
            for t in threads:
                t.start()
            peak_sampled = idle
            while any(t.is_alive() for t in threads):
                peak_sampled = max(peak_sampled, rss_kib(server.pid)[0])
                time.sleep(0.1)
            elapsed = time.monotonic() - started
            current, peak = rss_kib(server.pid)
            print(
                json.dumps(
                    {
                        "clients": args.clients,
                        "seconds": round(elapsed, 1),
                        "rss_idle_mib": round(idle / 1024, 1),
                        "rss_peak_mib": round(max(peak, peak_sampled) / 1024, 1),
                        "rss_after_mib": round(current / 1024, 1),
                        "answers": {str(k): v for k, v in sorted(answers.items())},
                        "requests_per_second": round(sum(answers.values()) / elapsed, 1),
                    }
                )
            )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
