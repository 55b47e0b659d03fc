"""The production topology, started through `bin/tracker` as a deployment starts it: two web
servers (gunicorn) on different ports, two Celery workers and one beat, on PostgreSQL (its own
database, migrated by the owner, used by the app's role), Redis, an S3-compatible server and
an OpenID Connect provider, all on loopback with TRACKER_ENV=production.

One journey: a compliance officer signs in through the identity provider on one web server
(her group there makes her compliance) and uploads evidence; a reviewer signs in with a
password on the other and approves. The evidence is in the bucket
under its hash; a reminder sweep run by both workers at once sends each reminder once;
/health/ is healthy, unhealthy while Redis is stopped, and healthy again once it is back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from celery import Celery
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

from tests import servers
from tests.browser import SHOTS, browser_sign_in
from tests.helpers import private_pem
from tests.lifecycle import free_port
from tests.oidc_provider.server import running_provider
from tests.processes import mailed_items, running, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.browser]

ROOT = Path(settings.BASE_DIR)
LOGS = ROOT / "test-artifacts" / "topology"
ENTRY = str(ROOT / "bin" / "tracker")
# Beat's heartbeat every 10 s here (60 s in a real installation): /health/ then allows 20 s.
HEARTBEAT_SECONDS = 10


@pytest.fixture
def clock() -> Iterator[None]:
    """Real processes keep real time: this test does not freeze the clock."""
    yield None


@contextlib.contextmanager
def topology_database() -> Iterator[tuple[str, str]]:
    """A database of its own on the run's PostgreSQL, made and dropped by the owner; yields
    the owner's URL and the app's, as a DBA would hand them out."""
    owner, app = os.environ["DATABASE_OWNER_URL"], os.environ["DATABASE_URL"]
    name = f"osa_topology_{os.getpid()}"
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield owner.rsplit("/", 1)[0] + f"/{name}", app.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(owner, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def health(port: int) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/health/", headers={"Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())
    except OSError:
        return 0, {}


def healthy(port: int) -> bool:
    return health(port)[0] == 200


def broker_down(port: int) -> bool:
    status, report = health(port)
    return (
        status == 503 and report.get("Broker") == "Unavailable: The broker (Redis) does not answer"
    )


class Topology:
    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp, self.env = tmp, env

    def run(self, *args: str, **env: str) -> str:
        result = subprocess.run(
            [ENTRY, *args],
            cwd=ROOT,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def shell(self, code: str) -> Any:
        """Run ORM code in a management shell of the deployment; it prints one JSON value."""
        return json.loads(self.run("manage", "shell", "-c", code).strip().splitlines()[-1])

    def start(self, stack: contextlib.ExitStack, name: str, *args: str, **env: str) -> None:
        stack.enter_context(running([ENTRY, *args], {**self.env, **env}, LOGS / f"{name}.log"))


def logs_tail() -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-2500:]}"
        for log in sorted(LOGS.glob("*.log"))
    )


def test_the_production_topology_end_to_end(tmp_path, browser):
    LOGS.mkdir(parents=True, exist_ok=True)
    web_a, web_b = free_port(), free_port()
    with contextlib.ExitStack() as stack:
        owner_url, app_url = stack.enter_context(topology_database())
        s3 = stack.enter_context(servers.s3())
        idp = stack.enter_context(running_provider(name="Northwind IdP"))
        idp.add_user("grace", "pw-grace-topology", groups=["northwind-compliance"])
        redis = RedisServer()
        redis.start()
        stack.callback(redis.stop)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS"))},
            **s3,
            "REDIS_URL": redis.url,
            "TRACKER_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SITE_URL": f"http://127.0.0.1:{web_a}",
            "DATABASE_URL": app_url,
            "DATABASE_OWNER_URL": owner_url,
            "AUDIT_PACK_SIGNING_KEY": private_pem(Ed25519PrivateKey.generate()),
            # Plain HTTP on loopback: no proxy in front to terminate TLS.
            "SECURE_SSL_REDIRECT": "0",
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "TRACKER_VAR_DIR": str(tmp_path / "var"),
            "STATIC_ROOT": str(tmp_path / "static"),
            "WEB_WORKERS": "2",
            "WORKER_CONCURRENCY": "1",
            "PYTHON": sys.executable,
            "PYTHONUNBUFFERED": "1",
            **idp.tracker_settings(),
        }
        env.pop("DEBUG", None)
        deployment = Topology(tmp_path, env)

        # The deploy: static files, migrations as the owner, the catalogue; then demo data
        # and a heartbeat quick enough for a test.
        deployment.run("collectstatic")
        deployment.run("migrate")
        deployment.run("manage", "load_demo")
        # Northwind's admins map their identity provider's group to a role.
        deployment.shell(
            "import json; from obligations.access.models import Organisation, SsoGroupRole; "
            "SsoGroupRole.objects.create(organisation=Organisation.objects.get("
            "name='Northwind Media Group'), group='northwind-compliance', role='compliance'); "
            "print(json.dumps(SsoGroupRole.objects.count()))"
        )
        deployment.shell(
            "import json; from django_celery_beat.models import PeriodicTask; "
            "task = PeriodicTask.objects.get(name='Beat heartbeat'); "
            f"task.interval.every = {HEARTBEAT_SECONDS}; task.interval.save(); "
            "print(json.dumps(task.pk))"
        )

        deployment.start(stack, "web-a", "web", WEB_BIND=f"127.0.0.1:{web_a}")
        deployment.start(stack, "web-b", "web", WEB_BIND=f"127.0.0.1:{web_b}")
        deployment.start(stack, "worker-1", "worker", "--hostname=worker1@%h")
        deployment.start(stack, "worker-2", "worker", "--hostname=worker2@%h")
        deployment.start(stack, "beat", "beat")
        for port in (web_a, web_b):
            wait_for(lambda port=port: healthy(port), f"web on {port} healthy", LOGS / "beat.log")

        journey(deployment, browser, tmp_path, web_a, web_b)
        evidence_in_the_bucket(deployment, s3)
        a_double_sweep_sends_each_reminder_once(deployment, redis.url, tmp_path / "var")

        # Redis stops: both web servers say so, and stay in the load balancer's rotation;
        # back on its port, both are healthy again.
        redis.stop()
        wait_for(lambda: broker_down(web_a), "unhealthy while Redis is stopped")
        assert broker_down(web_b)
        assert deployment.run("probe", WEB_BIND=f"127.0.0.1:{web_a}").strip() == (
            "/health/live/: 200"
        )
        redis.start()
        wait_for(lambda: healthy(web_a) and healthy(web_b), "healthy again", LOGS / "beat.log")


class RedisServer:
    """The topology's Redis, stopped and started again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.server: contextlib.AbstractContextManager[dict[str, str]] | None = None

    def start(self) -> None:
        self.server = servers.redis(self.port)
        self.server.__enter__()

    def stop(self) -> None:
        if self.server is not None:
            self.server.__exit__(None, None, None)
            self.server = None


EVIDENCE = b"%PDF-1.4\n% illegal content risk assessment, production topology\n%%EOF\n"
OBLIGATION = "Obligation.objects.get(service__name='Northwind Social', duty__code='U2U-ILLEGAL-RA')"


def transition(page: Any, label: str) -> None:
    page.click(f"#workflow button:has-text('{label}')")
    page.wait_for_load_state()


def journey(deployment: Topology, browser: Any, tmp: Path, web_a: int, web_b: int) -> None:
    """Compliance works on web server A; the reviewer approves on web server B."""
    pk = deployment.shell(
        "import json; from obligations.models import Obligation; "
        f"print(json.dumps({OBLIGATION}.pk))"
    )
    pdf = tmp / "illegal-content-ra.pdf"
    pdf.write_bytes(EVIDENCE)
    viewport = {"width": 1366, "height": 768}

    # Grace signs in through the identity provider: her group makes her compliance.
    page = browser.new_context(viewport=viewport).new_page()
    on_a = f"http://127.0.0.1:{web_a}"
    page.goto(f"{on_a}/admin/login/?next=/admin/")
    page.click("#single-sign-on a")
    page.wait_for_selector("#provider-login")
    page.fill("#id_username", "grace")
    page.fill("#id_password", "pw-grace-topology")
    page.screenshot(path=SHOTS / "topology-01-identity-provider.png")
    page.click("#provider-login button[type=submit]")
    page.wait_for_selector("#user-tools")
    assert page.url.startswith(on_a)
    page.goto(f"{on_a}/admin/obligations/obligation/{pk}/change/")
    transition(page, "Start work")
    page.fill("#evidence #id_title", "Illegal content risk assessment 2026")
    page.set_input_files("#evidence input[type=file]", str(pdf))
    page.click("#evidence button:has-text('Add evidence')")
    page.wait_for_load_state()
    assert "Evidence added." in page.inner_text(".messagelist")
    transition(page, "Submit for review")
    assert "Ready for review" in page.inner_text("#workflow-title")
    page.screenshot(path=SHOTS / "topology-02-submitted-on-a.png", full_page=True)

    reviewer = browser.new_context(viewport=viewport).new_page()
    on_b = f"http://127.0.0.1:{web_b}"
    browser_sign_in(reviewer, on_b, "reviewer")
    reviewer.goto(f"{on_b}/admin/obligations/obligation/{pk}/change/")
    assert "Ready for review" in reviewer.inner_text("#workflow-title")
    transition(reviewer, "Approve")
    assert "Met" in reviewer.inner_text("#workflow-title")
    reviewer.screenshot(path=SHOTS / "topology-03-approved-on-b.png", full_page=True)

    steps = deployment.shell(
        "import json; from obligations.models import Obligation; "
        f"print(json.dumps(list({OBLIGATION}.events.filter(kind='status')"
        ".order_by('at', 'id').values_list('to_status', 'actor__username'))))"
    )
    assert steps == [
        ["in_progress", "grace"],
        ["ready_for_review", "grace"],
        ["met", "reviewer"],
    ]


def evidence_in_the_bucket(deployment: Topology, s3: dict[str, str]) -> None:
    [row] = deployment.shell(
        "import json; from obligations.models import Evidence; "
        "print(json.dumps(list(Evidence.objects.filter(title='Illegal content risk assessment "
        "2026').values('file', 'sha256'))))"
    )
    body = (
        servers.s3_client(s3)
        .get_object(Bucket=s3["EVIDENCE_S3_BUCKET"], Key=row["file"])["Body"]
        .read()
    )
    assert body == EVIDENCE
    assert row["sha256"] == hashlib.sha256(EVIDENCE).hexdigest()
    assert row["file"] == f"evidence/{row['sha256'][:2]}/{row['sha256']}"


def a_double_sweep_sends_each_reminder_once(
    deployment: Topology, redis_url: str, var: Path
) -> None:
    """The daily sweep queued twice at once: each worker takes one, and each reminder is
    e-mailed once."""
    count = (
        "import json; from obligations.reminders.models import Reminder; "
        "print(json.dumps({s: Reminder.objects.filter(status=s).count() "
        "for s in ('pending', 'sent')}))"
    )
    # What the journey sent already (the review request), once delivered.
    wait_for(lambda: deployment.shell(count)["pending"] == 0, "the outbox empty")
    before = deployment.shell(count)["sent"]
    # Not the current app: that stays tracker's for the rest of the test run.
    client = Celery(broker=redis_url, set_as_current=False)
    for _ in range(2):
        client.send_task("obligations.send_reminders")

    def delivered() -> bool:
        counts = deployment.shell(count)
        return (
            counts["sent"] > 0
            and counts["pending"] == 0
            and (len(mailed_items(var)) >= counts["sent"])
        )

    wait_for(delivered, "the reminders e-mailed", LOGS / "worker-1.log")
    sent = deployment.shell(
        "import json; from obligations.reminders.models import Reminder; "
        "print(json.dumps([[r.recipient.email, r.reason] for r in "
        "Reminder.objects.filter(status='sent').select_related('recipient')]))"
    )
    mailed = Counter(mailed_items(var))
    assert mailed == Counter((email, reason) for email, reason in sent)
    assert max(mailed.values()) == 1
    # Both sweeps ran; between them they sent each reminder once.
    runs = [
        int(count)
        for worker in ("worker-1", "worker-2")
        for count in re.findall(
            r"send_reminders\[[0-9a-f-]+\] succeeded in [^:]+: \{'date': '[0-9-]+', 'sent': (\d+)",
            (LOGS / f"{worker}.log").read_text(),
        )
    ]
    assert len(runs) == 2 and sum(runs) == len(sent) - before > 0, (runs, before, len(sent))
