"""`make load`: many people at once on the production server, with Locust (issue 30).

    python -m tests.load.run [--users 10,25,50] [--duration 60] [--size 100000]
                             [--web-workers N] [--spawn-rate 5] [--rebuild]
    python -m tests.load.run --markdown var/load/results.json

Run inside `python -m tests.servers postgres redis -- ...` (the Makefile does). The register is
the bench's (tests/bench.py: its cached pg_dump of `--size` obligations, generated when
missing), restored into the throwaway PostgreSQL and given the production roles' grants; the
people are tests/load/prepare.py's. The tracker then runs as a deployment runs it, through
bin/tracker with TRACKER_ENV=production: migrate, gunicorn with WEB_WORKERS processes, a Celery
worker and beat, on loopback. For each number of users Locust (tests/load/locustfile.py)
runs headless: the users start `--spawn-rate` a second, the statistics are reset once all
have signed in (so sign-ins and the ramp are left out), then it runs `--duration` seconds.
Meanwhile PostgreSQL's connections to the database are counted twice a second. Results go to
var/load/results.json and a markdown table on stdout; the servers' logs to var/load/logs/.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg

from tests import bench
from tests.lifecycle import free_port, stop
from tests.load.report import Row, markdown
from tests.servers import ROLES_SQL

ROOT = Path(__file__).resolve().parent.parent.parent
OUT = ROOT / "var" / "load"
LOGS = OUT / "logs"
ENTRY = str(ROOT / "bin" / "tracker")
LOCUSTFILE = str(Path(__file__).resolve().parent / "locustfile.py")
# Enough accounts per role that concurrent users are different people at 50 users (half of
# them compliance staff); the bench makes one compliance owner per 2,000 obligations.
PER_ROLE = 25
# Seconds allowed for every user to sign in (50 sign-ins queue behind each other on 2 cores).
SIGN_IN_ALLOWANCE = 180


def production_env(app_url: str, owner_url: str, port: int, workers: int) -> dict[str, str]:
    """The environment of a deployment on loopback, as tests/deploy/test_topology.py sets it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "DEBUG"))}
    env.update(
        TRACKER_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        SITE_URL=f"http://127.0.0.1:{port}",
        DATABASE_URL=app_url,
        DATABASE_OWNER_URL=owner_url,
        # Plain HTTP on loopback: no proxy in front to terminate TLS.
        SECURE_SSL_REDIRECT="0",
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        TRACKER_VAR_DIR=str(OUT / "var"),
        STATIC_ROOT=str(OUT / "static"),
        WEB_BIND=f"127.0.0.1:{port}",
        WEB_WORKERS=str(workers),
        WORKER_CONCURRENCY="1",
        LOG_LEVEL="WARNING",
        PYTHON=sys.executable,
        PYTHONUNBUFFERED="1",
    )
    return env


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], name: str) -> Iterator[None]:
    with (LOGS / f"{name}.log").open("wb") as out:
        proc = subprocess.Popen(
            [ENTRY, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield
        finally:
            stop(proc, timeout=30)


def wait_live(port: int) -> None:
    for _ in range(600):
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live/", timeout=5),
        ):
            return
        time.sleep(0.1)
    raise SystemExit(f"the web server did not start: see {LOGS / 'web.log'}")


class Connections:
    """PostgreSQL's connections to one database, counted twice a second: the most at once,
    and the most of them running a statement."""

    def __init__(self, server_url: str, database: str) -> None:
        self.server_url, self.database = server_url, database
        self.most = self.most_active = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def sample(self) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            while not self.done.wait(0.5):
                row = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE state = 'active') "
                    "FROM pg_stat_activity WHERE datname = %s",
                    [self.database],
                ).fetchone()
                if row:
                    self.most, self.most_active = (
                        max(self.most, row[0]),
                        max(self.most_active, row[1]),
                    )

    def __enter__(self) -> Connections:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def read_stats(prefix: Path) -> list[Row]:
    """Locust's per-page statistics (its CSV), the ramp left out."""
    rows = []
    with open(f"{prefix}_stats.csv", newline="") as f:
        for line in csv.DictReader(f):
            count = int(line["Request Count"])
            if not count:
                continue
            rows.append(
                {
                    "page": line["Name"] if line["Type"] else "all",
                    "method": line["Type"],
                    "requests": count,
                    "failures": int(line["Failure Count"]),
                    "per_s": round(float(line["Requests/s"]), 2),
                    "p50_ms": float(line["50%"]),
                    "p95_ms": float(line["95%"]),
                    "p99_ms": float(line["99%"]),
                }
            )
    return rows


def read_failures(prefix: Path) -> list[str]:
    with open(f"{prefix}_failures.csv", newline="") as f:
        return [
            f"{line['Occurrences']}x {line['Method']} {line['Name']}: {line['Error'][:200]}"
            for line in csv.DictReader(f)
        ]


def swarm(
    users: int, args: argparse.Namespace, host: str, watched: Connections, env: dict[str, str]
) -> Row:
    """One run of Locust at `users`, measured once all have signed in, its database's
    connections `watched`."""
    ramp = math.ceil(users / args.spawn_rate)
    # The locustfile ends the run `--duration` after the last sign-in; this is a backstop for a
    # sign-in that never comes (its error is in the log).
    backstop = ramp + SIGN_IN_ALLOWANCE + args.duration
    prefix = OUT / f"users-{users}"
    command = [
        *(sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless"),
        *("-u", str(users), "-r", str(args.spawn_rate), "-t", f"{backstop}s"),
        *("--only-summary", "--stop-timeout", "10"),
        *("--host", host, "--csv", str(prefix), "--loglevel", "WARNING"),
    ]
    with watched as connections:
        started = time.perf_counter()
        # Locust exits 1 when any request failed: that is a result, reported below.
        with (LOGS / f"locust-{users}.log").open("wb") as out:
            subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - started
    return {
        "users": users,
        "seconds_measured": args.duration,
        "seconds_wall": round(wall),
        "load_average_after": round(os.getloadavg()[0], 2),
        "pg_connections_max": connections.most,
        "pg_active_max": connections.most_active,
        "pages": read_stats(prefix),
        "failures": read_failures(prefix),
    }


def main(args: argparse.Namespace) -> int:
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())))
        return 0
    server = os.environ.get("DATABASE_SUPERUSER_URL", "")
    if not server.startswith("postgres") or not os.environ.get("REDIS_URL"):
        print("run it with `make load` (a throwaway PostgreSQL and Redis)", file=sys.stderr)
        return 2
    LOGS.mkdir(parents=True, exist_ok=True)
    info = bench.machine(server)
    info["web_workers"] = args.web_workers
    print(f"Machine: {bench.describe(info)}; {args.web_workers} web processes", flush=True)
    url, made = bench._database("postgres", server, args.size, bench.data_key(), args.rebuild)
    print(f"[data] {args.size:,} obligations: {json.dumps(made)}", flush=True)
    if "error" in made:
        return 1
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ROLES_SQL.read_text())
    password = secrets.token_urlsafe(16)
    prepared = subprocess.run(
        [sys.executable, "-m", "tests.load.prepare", password, str(PER_ROLE)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url, "TRACKER_VAR_DIR": str(OUT / "var")},
        capture_output=True,
        text=True,
        check=True,
    )
    accounts = prepared.stdout.strip().splitlines()[-1]
    port = free_port()
    app_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{database}"
    env = production_env(app_url, url, port, args.web_workers)
    for step in ("collectstatic", "migrate"):
        subprocess.run([ENTRY, step], cwd=ROOT, env=env, check=True, capture_output=True)
    results: Row = {"machine": info, "size": args.size, "data": made, "runs": []}
    host = f"http://127.0.0.1:{port}"
    locust_env = {
        **os.environ,
        "LOAD_ACCOUNTS": accounts,
        "LOAD_PASSWORD": password,
        "LOAD_DURATION": str(args.duration),
    }
    with contextlib.ExitStack() as stack:
        stack.enter_context(process(["web"], env, "web"))
        stack.enter_context(process(["worker"], env, "worker"))
        stack.enter_context(process(["beat"], env, "beat"))
        wait_live(port)
        for users in [int(n) for n in args.users.split(",")]:
            run = swarm(users, args, host, Connections(server, database), locust_env)
            results["runs"].append(run)
            print(f"[{users} users] {json.dumps(run['pages'][-1])}", flush=True)
    path = OUT / "results.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(markdown(results))
    print(f"\nResults: {path}; logs: {LOGS}")
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", default="10,25,50")
    parser.add_argument("--duration", type=int, default=60, help="seconds measured per run")
    parser.add_argument("--spawn-rate", type=float, default=5, help="users started a second")
    parser.add_argument("--size", type=int, default=100_000, help="obligations (bench sizes)")
    # Two a core, within the README's "two or three per core".
    parser.add_argument("--web-workers", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument("--rebuild", action="store_true", help="generate the data again")
    parser.add_argument("--markdown", help="print the tables of a results.json again")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main(parse(sys.argv[1:])))
