"""The container recipe cannot be built here (no registry), so it is kept a thin wrapper
around bin/tracker, and these checks keep it honest: what it copies exists, every process it
runs is a bin/tracker command, and every variable it sets is one the tracker documents."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from django.conf import settings

from tests.deploy.test_settings import production, variables_documented
from tests.lifecycle import free_port
from tests.processes import running, wait_for

ROOT = Path(settings.BASE_DIR)
ENTRY = ROOT / "bin" / "tracker"


def commands() -> set[str]:
    """The commands bin/tracker's `case` knows."""
    return set(re.findall(r"^  ([a-z]+)\)$", ENTRY.read_text(), flags=re.M))


def test_bin_tracker_knows_each_role_and_explains_itself():
    assert commands() == {"migrate", "web", "worker", "beat", "probe", "collectstatic", "manage"}
    result = subprocess.run([ENTRY, "nonsense"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "bin/tracker web" in result.stderr and "bin/tracker beat" in result.stderr


def test_the_dockerfile_copies_what_exists_and_runs_bin_tracker():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for line in re.findall(r"^COPY (.+)$", dockerfile, flags=re.M):
        for source in line.split()[:-1]:
            assert (ROOT / source).exists(), source
    assert 'ENTRYPOINT ["bin/tracker"]' in dockerfile
    assert re.search(r"bin/tracker collectstatic", dockerfile)
    assert re.search(r"^USER (?!root)\w+", dockerfile, flags=re.M)


def test_compose_runs_the_topology_through_bin_tracker():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    tracker = {name: s for name, s in services.items() if s.get("image") == "osa-tracker"}
    assert {name: s["command"][0] for name, s in tracker.items()} == {
        "migrate": "migrate",
        "web": "web",
        "worker": "worker",
        "beat": "beat",
    }
    assert all(s["command"][0] in commands() for s in tracker.values())
    # One beat, or every nightly task runs twice.
    assert services["beat"]["deploy"]["replicas"] == 1
    assert {"db", "redis", "minio"} <= set(services)
    # The file systems are read-only: the settings must write nothing (test_settings.py).
    assert all(s["read_only"] for s in tracker.values())
    assert services["web"]["healthcheck"]["test"] == ["CMD", "bin/tracker", "probe"]
    documented = variables_documented()
    for name, service in tracker.items():
        assert set(service["environment"]) <= documented, name


def test_the_probe_passes_production_s_host_check_and_https_redirect(tmp_path):
    """`bin/tracker probe` (the container's health check) against a real production web
    server: HTTPS redirect on, one allowed host, which a plain-HTTP probe on loopback must
    still get an answer from."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS"))},
        **production(
            DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
            ALLOW_SQLITE_IN_PRODUCTION="1",
            REDIS_URL=None,
            ALLOW_FILESYSTEM_BROKER_IN_PRODUCTION="1",
            ALLOWED_HOSTS="osa.example.org",
        ),
        "TRACKER_VAR_DIR": str(tmp_path),
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_WORKERS": "1",
        "PYTHON": sys.executable,
    }
    env = {k: v for k, v in env.items() if v is not None}
    subprocess.run([ENTRY, "migrate"], env=env, check=True, capture_output=True, timeout=300)
    with running([str(ENTRY), "web"], env, tmp_path / "web.log"):
        probe = [ENTRY, "probe"]
        wait_for(
            lambda: subprocess.run(probe, env=env, capture_output=True).returncode == 0, "alive"
        )
        result = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "/health/live/: 200"
