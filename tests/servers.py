"""Throwaway servers for the test suite, on loopback, started and stopped around a command.

    python -m tests.servers postgres redis -- pytest ...

starts a fresh PostgreSQL cluster in a temporary directory (as the `postgres`
system user when run as root: PostgreSQL refuses to run as root) and a Redis
server with no persistence, runs the command with DATABASE_URL and REDIS_URL
pointing at them, then stops the servers and removes their directories,
whatever the command's outcome. `s3` is moto's S3 server, in memory, with an empty
bucket; it sets the EVIDENCE_S3_* variables and dummy AWS keys (README, "Evidence in
object storage").

PostgreSQL has the two roles production has (tracker/database-roles.sql):
DATABASE_URL logs in as the app's role, which owns no table, and
DATABASE_OWNER_URL as the owner, who creates and migrates databases;
DATABASE_SUPERUSER_URL is for tools that manage the server (the bench).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3

from tests.lifecycle import free_port, stop
from tests.oidc_provider.server import running_provider

ROLES_SQL = Path(__file__).resolve().parent.parent / "tracker" / "database-roles.sql"


def pg_bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise SystemExit(
        "PostgreSQL is not installed: `make test` installs it (apt-get install postgresql)"
    )


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def create_roles(server: str) -> None:
    """The owner and the app's role, with the grants the README gives them, set in template1
    so that every database created afterwards (the test database) carries them."""
    import psycopg

    with psycopg.connect(f"{server}/template1", autocommit=True) as conn:
        conn.execute("CREATE ROLE osa_owner LOGIN CREATEDB")
        conn.execute("CREATE ROLE osa_app LOGIN")
        conn.execute(ROLES_SQL.read_text())


@contextlib.contextmanager
def postgres() -> Iterator[dict[str, str]]:
    bindir = pg_bindir()
    root = tempfile.mkdtemp(prefix="osa-pg-")
    data, sockets = os.path.join(root, "data"), os.path.join(root, "sock")
    os.makedirs(sockets)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
    port = free_port()
    subprocess.run(
        _as_postgres(
            [
                f"{bindir}/initdb",
                "-D",
                data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    server = subprocess.Popen(
        _as_postgres(
            [
                f"{bindir}/postgres",
                "-D",
                data,
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "-k",
                sockets,
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=50",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while (
            subprocess.run(
                [f"{bindir}/pg_isready", "-h", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
            ).returncode
            != 0
        ):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("PostgreSQL did not start")
            time.sleep(0.2)
        create_roles(f"postgres://postgres@127.0.0.1:{port}")
        yield {
            "DATABASE_URL": f"postgres://osa_app@127.0.0.1:{port}/postgres",
            "DATABASE_OWNER_URL": f"postgres://osa_owner@127.0.0.1:{port}/postgres",
            "DATABASE_SUPERUSER_URL": f"postgres://postgres@127.0.0.1:{port}/postgres",
        }
    finally:
        stop(server, timeout=20)
        shutil.rmtree(root, ignore_errors=True)


def redis_server_binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if not found:
        raise SystemExit("Redis is not installed: `make test` installs it (apt-get install redis)")
    return found


@contextlib.contextmanager
def redis(port: int | None = None) -> Iterator[dict[str, str]]:
    """A Redis server, on `port` when given (a test that stops one starts it again there)."""
    root = tempfile.mkdtemp(prefix="osa-redis-")
    port = port or free_port()
    server = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            root,
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=1) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("Redis did not start")
            time.sleep(0.1)
        yield {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    finally:
        stop(server, timeout=10)
        shutil.rmtree(root, ignore_errors=True)


S3_BUCKET, S3_REGION = "osa-evidence", "eu-west-2"


@contextlib.contextmanager
def s3() -> Iterator[dict[str, str]]:
    """moto in server mode: a real S3 API over HTTP, holding everything in memory."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("The S3 server (moto) did not start")
            time.sleep(0.1)
        env = {
            "EVIDENCE_S3_BUCKET": S3_BUCKET,
            "EVIDENCE_S3_ENDPOINT_URL": endpoint,
            "EVIDENCE_S3_REGION": S3_REGION,
            # moto accepts any keys; these only keep boto3 from looking for real ones.
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        s3_client(env).create_bucket(
            Bucket=S3_BUCKET, CreateBucketConfiguration={"LocationConstraint": S3_REGION}
        )
        yield env
    finally:
        stop(server, timeout=10)


def s3_client(env: dict[str, str]) -> Any:
    """A boto3 client for the server `s3()` started, to look in (or tamper with) its bucket."""
    return boto3.client(
        "s3",
        endpoint_url=env["EVIDENCE_S3_ENDPOINT_URL"],
        region_name=env["EVIDENCE_S3_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


@contextlib.contextmanager
def oidc() -> Iterator[dict[str, str]]:
    """The throwaway OpenID Connect provider (tests/oidc_provider/), for a tracker process the
    command starts: the tracker's OIDC_* variables, and the provider's own two, which
    `python -m tests.oidc_provider user NAME PASSWORD --group G` needs to add a user. Not
    for the whole suite: the access matrix expects no single sign-on URLs."""
    with running_provider() as provider:
        yield {
            **provider.tracker_settings(),
            "OIDC_PROVIDER_DIR": str(provider.directory),
            "OIDC_PROVIDER_ISSUER": provider.issuer,
        }


SERVERS: dict[str, Callable[[], contextlib.AbstractContextManager[dict[str, str]]]] = {
    "postgres": postgres,
    "redis": redis,
    "s3": s3,
    "oidc": oidc,
}


def _terminated(signum: int, frame: object) -> None:
    # SIGTERM ends Python without unwinding; as an exit, the servers stop with the runner
    # (and subprocess.run kills the command) instead of outliving it.
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == 0:
        print(__doc__)
        return 2
    signal.signal(signal.SIGTERM, _terminated)
    split = argv.index("--")
    names, command = argv[:split], argv[split + 1 :]
    env = dict(os.environ)
    with contextlib.ExitStack() as stack:
        for name in names:
            for variable, url in stack.enter_context(SERVERS[name]()).items():
                env[variable] = url
                print(f"[servers] {name}: {variable}={url}", flush=True)
        return subprocess.run(command, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
