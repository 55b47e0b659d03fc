"""`make bench`: the tracker measured at realistic sizes, on SQLite and PostgreSQL.

    python -m tests.bench [--sizes 1000,10000,100000] [--databases sqlite,postgres]
                          [--only reminders,...] [--repeat N]

For each database and size it builds a fresh register (bulk inserts, see tests/bulk.py), then
runs each measurement in its own child process, so that settings, caches and peak memory
belong to that measurement alone. PostgreSQL is used when DATABASE_URL points at a server
(`make bench` starts a throwaway one). Results go to var/bench/results.json and a table on
stdout. Targets are reported, not asserted: timing belongs here, not in the tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"
TODAY = dt.date(2026, 11, 24)
MEASURES: dict[str, Callable[[int], dict[str, Any]]] = {}  # filled by @measure below
# Targets from the issues, for the report (name -> (metric, limit, unit)).
TARGETS: dict[str, tuple[str, float, str]] = {
    "reminders": ("seconds", 10.0, "s at 100k"),
    "api_page": ("seconds", 0.15, "s per page of 100"),
    "dashboard": ("p95_seconds", 0.3, "s p95 at 100k"),
}


def measure(
    name: str,
) -> Callable[[Callable[[int], dict[str, Any]]], Callable[[int], dict[str, Any]]]:
    def register(fn: Callable[[int], dict[str, Any]]) -> Callable[[int], dict[str, Any]]:
        MEASURES[name] = fn
        return fn

    return register


# --- In the child: Django is set up against the bench database ------------


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")
    os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.dummy.EmailBackend")
    import django

    django.setup()


def prepare(size: int) -> dict[str, Any]:
    """Migrate, load the catalogue, and build a register of `size` obligations with history."""
    _django()
    import time_machine
    from django.core.management import call_command

    from obligations import models as m
    from obligations import services
    from tests.bulk import make_register

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    call_command("load_catalogue", verbosity=0)
    with time_machine.travel(dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC), tick=True):
        system = services.get_system_user()
        organisation = m.Organisation.objects.create(name="Bench Group")
        from django.contrib.auth.models import User

        owners = []
        for i in range(max(5, size // 2000)):
            user = User.objects.create(
                username=f"owner{i}", email=f"owner{i}@bench.example", is_staff=True
            )
            services.add_member(
                actor=system, organisation=organisation, user=user, role=m.Role.COMPLIANCE
            )
            owners.append(user)
        manager = User.objects.create(username="manager", email="manager@bench.example")
        services.add_member(
            actor=system, organisation=organisation, user=manager, role=m.Role.MANAGER
        )
        make_register(
            organisation=organisation,
            obligations=size,
            today=TODAY,
            owners=owners,
            events_per_obligation=3,
        )
    # A real database has planner statistics; one bulk-loaded a moment ago has none yet (on
    # PostgreSQL autovacuum would analyse it a little later), which makes plans worse than
    # any user would see.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"seconds": round(time.perf_counter() - started, 2), "obligations": size}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@measure("reminders")
def reminders_sweep(size: int) -> dict[str, Any]:
    """The daily sweep over every cycle (the worst case: all of them due to be looked at)."""
    _django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from obligations import models as m
    from obligations import reminders

    def reset() -> None:
        m.Reminder.objects.all().delete()
        m.ObligationCycle.objects.filter(
            pk__in=m.Obligation.objects.values("current_cycle")
        ).update(next_reminder_at=reminders.london_midnight(TODAY))

    # The first sweep over fresh data also rolls met recurring cycles forward (a write each).
    reset()
    started = time.perf_counter()
    first = reminders.run_sweep(today=TODAY)
    first_seconds = time.perf_counter() - started
    times, result, queries = [], None, 0
    for _ in range(3):
        reset()
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            result = reminders.run_sweep(today=TODAY)
            times.append(time.perf_counter() - started)
        queries = len(ctx.captured_queries)
    # Memory in a run of its own: tracemalloc slows Python down, so it is not timed.
    reset()
    tracemalloc.start()
    reminders.run_sweep(today=TODAY)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result is not None
    return {
        "seconds": round(statistics.median(times), 3),
        "queries": queries,
        "python_peak_mb": round(traced / 2**20, 1),
        "process_peak_rss_mb": round(_peak_rss_mb(), 1),
        "reminders": result.sent,
        "digests": result.digests,
        "cycles": result.cycles_checked,
        "first_run_seconds": round(first_seconds, 3),
        "rolled_forward": first.rolled_forward,
    }


def _api_client() -> Any:
    """A test client with a read-only token of a member who sees the whole register."""
    from django.contrib.auth.models import User
    from django.test import Client

    from obligations import services

    manager = User.objects.get(username="manager")
    _, key = services.create_api_token(actor=manager, user=manager, name="bench")
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


def _timed_get(client: Any, url: str, repeat: int = 5) -> tuple[float, int, Any]:
    """Median seconds and query count of a GET (after one warm-up request)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    times = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url)
            if response.streaming:
                for _chunk in response.streaming_content:
                    pass
            times.append(time.perf_counter() - started)
    return statistics.median(times), len(ctx.captured_queries), response


@measure("api_page")
def api_page(size: int) -> dict[str, Any]:
    """A page of 100 obligations from the API, first page and a page deep in the cursor."""
    _django()
    client = _api_client()
    first, queries, response = _timed_get(client, "/api/v1/obligations/?page_size=100")
    deep_url = response.json()["next"]
    for _ in range(min(20, size // 100 - 1)):
        deep_url = client.get(deep_url).json()["next"] or deep_url
    deep, _, _ = _timed_get(client, deep_url)
    filtered, _, _ = _timed_get(client, "/api/v1/obligations/?overdue=true&status=in_progress")
    return {
        "seconds": round(first, 4),
        "queries": queries,
        "deep_page_seconds": round(deep, 4),
        "filtered_seconds": round(filtered, 4),
    }


@measure("dashboard")
def dashboard(size: int) -> dict[str, Any]:
    """The managers' dashboard page (and its API twin): median and p95 of 20 loads."""
    _django()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(User.objects.get(username="manager"))
    results: dict[str, Any] = {}
    for name, url in (("page", "/dashboard/"), ("api", "/api/v1/dashboard/")):
        assert client.get(url).status_code == 200
        times = []
        for _ in range(20):
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                client.get(url)
                times.append(time.perf_counter() - started)
        times.sort()
        results[f"{name}_median_seconds"] = round(statistics.median(times), 4)
        results[f"{name}_p95_seconds"] = round(times[int(len(times) * 0.95) - 1], 4)
        results[f"{name}_queries"] = len(ctx.captured_queries)
    return {
        "seconds": results["page_median_seconds"],
        "p95_seconds": results["page_p95_seconds"],
        "queries": results["page_queries"],
        **results,
    }


@measure("csv_export")
def csv_export(size: int) -> dict[str, Any]:
    """The whole register as CSV, streamed: time, and peak memory in a run of its own."""
    _django()
    client = _api_client()
    seconds, queries, _ = _timed_get(client, "/api/v1/obligations/export/csv/", repeat=1)
    tracemalloc.start()
    response = client.get("/api/v1/obligations/export/csv/")
    rows = sum(chunk.count(b"\n") for chunk in response.streaming_content) - 1
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "seconds": round(seconds, 3),
        "queries": queries,
        "rows": rows,
        "python_peak_mb": round(traced / 2**20, 1),
        "process_peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def child(args: argparse.Namespace) -> None:
    fn = prepare if args.what == "prepare" else MEASURES[args.what]
    print(json.dumps(fn(args.size)))


# --- In the parent: one child process per database, size and measurement ---


def _databases(selected: list[str]) -> dict[str, str]:
    urls = {}
    if "sqlite" in selected:
        urls["sqlite"] = ""
    if "postgres" in selected:
        base = os.environ.get("DATABASE_URL", "")
        if base.startswith("postgres"):
            urls["postgres"] = base
        else:
            print("skipping PostgreSQL: DATABASE_URL is not a PostgreSQL URL", file=sys.stderr)
    return urls


def _fresh_database(kind: str, base: str, size: int) -> str:
    if kind == "sqlite":
        path = OUT / f"bench-{size}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    import psycopg

    name = f"bench_{size}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + f"/{name}"


def _run(what: str, size: int, url: str) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": url, "TRACKER_VAR_DIR": str(OUT / "var")}
    env.pop("REDIS_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.bench", "child", what, str(size)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(args: argparse.Namespace) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    names = args.only.split(",") if args.only else list(MEASURES)
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
        "runs": [],
    }
    for kind, base in _databases(args.databases.split(",")).items():
        for size in sizes:
            url = _fresh_database(kind, base, size)
            made = _run("prepare", size, url)
            print(f"[{kind} {size:>7}] data ready in {made.get('seconds')} s", flush=True)
            for name in names:
                row = {"database": kind, "size": size, "measure": name, **_run(name, size, url)}
                results["runs"].append(row)
                print(f"[{kind} {size:>7}] {name}: {json.dumps(row)}", flush=True)
    path = OUT / "results.json"
    path.write_text(json.dumps(results, indent=2))
    print()
    print(table(results))
    print(f"\nResults: {path}")
    return 0


NOTE_KEYS = (
    "reminders",
    "digests",
    "cycles",
    "first_run_seconds",
    "rolled_forward",
    "p95_seconds",
    "api_median_seconds",
    "api_p95_seconds",
    "deep_page_seconds",
    "filtered_seconds",
    "rows",
)


def table(results: dict[str, Any]) -> str:
    lines = [
        "| database | size | measure | seconds | queries | Python peak MB | process peak MB "
        "| notes |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in results["runs"]:
        notes = row.get("error") or ", ".join(
            f"{k.replace('_', ' ')} {row[k]}" for k in NOTE_KEYS if k in row
        )
        target = TARGETS.get(row["measure"])
        if target and target[0] in row:
            metric, limit, unit = target
            verdict = "met" if row[metric] < limit else "missed"
            notes += f"; target {metric.replace('_', ' ')} < {limit} {unit}: {verdict}"
        lines.append(
            f"| {row['database']} | {row['size']:,} | {row['measure']} | {row.get('seconds', '-')} "
            f"| {row.get('queries', '-')} | {row.get('python_peak_mb', '-')} "
            f"| {row.get('process_peak_rss_mb', '-')} | {notes} |"
        )
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    c = sub.add_parser("child")
    c.add_argument("what")
    c.add_argument("size", type=int)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--only", default="")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    if arguments.command == "child":
        child(arguments)
        sys.exit(0)
    sys.exit(main(arguments))
