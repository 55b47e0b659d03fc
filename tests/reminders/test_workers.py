"""Integration: real worker processes, real brokers, real concurrency.

- A task the web process enqueues runs in a separate Celery worker with the file-system broker
  (the default `make run` path, no server).
- Against a real Redis (make test starts one for the PostgreSQL run), a worker runs the sweep
  end to end and writes the e-mails.
- Two sweeps started at once against PostgreSQL send every reminder exactly once.
- A worker killed outright in the middle of delivering (real Redis) leaves nothing undelivered:
  the next delivery run after the lease, or the killed task itself given back by Redis, sends
  the rest, and only the digest the mail server had just accepted goes twice.
"""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import redis
from django.conf import settings
from django.urls import reverse

from obligations.access.models import Role
from obligations.catalogue.models import Duty
from obligations.register.cycles import open_cycle
from obligations.register.models import Obligation
from obligations.register.states import CycleStatus, CycleTrigger, EventSource
from obligations.register.workflow import do_start
from obligations.reminders.endpoints import create_webhook
from obligations.reminders.models import (
    Reminder,
    ReminderKind,
    ReminderStatus,
    WebhookDelivery,
    WebhookKind,
    WebhookStatus,
)
from tests.bulk import make_register
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, ProviderFactory, ServiceFactory, member
from tests.processes import celery_worker, environment, mailed_items, wait_for
from tests.reminders.receiver import receiver

ADMIN = EventSource.ADMIN
__all__ = ["receiver"]  # the fixture, used by name


@pytest.fixture
def team(transactional_db, catalogue):  # type: ignore[no-untyped-def]
    org = OrganisationFactory(name="Worker Test Group")
    owner = member(org, username="olive")
    reviewer = member(org, username="rex")
    manager = member(org, Role.MANAGER, username="maya")
    service = ServiceFactory(provider=ProviderFactory(organisation=org), name="Worker Chat")
    return {
        "org": org,
        "owner": owner,
        "reviewer": reviewer,
        "manager": manager,
        "service": service,
    }


def open_obligation(team, code, due):  # type: ignore[no-untyped-def]
    ob = Obligation.objects.create(
        provider=team["service"].provider,
        service=team["service"],
        duty=Duty.objects.get(code=code),
        owner=team["owner"],
        why="test",
    )
    open_cycle(
        actor=team["owner"], obligation=ob, due=due, trigger=CycleTrigger.INITIAL, source=ADMIN
    )
    ob.refresh_from_db()
    return ob


def test_the_web_enqueues_and_a_separate_worker_delivers_over_the_filesystem_broker(
    team, client, tmp_path, test_broker
):
    ob = open_obligation(team, "U2U-ILLEGAL-RA", TODAY + dt.timedelta(days=40))
    do_start(actor=team["owner"], cycle=ob.current_cycle, source=ADMIN)
    log = tmp_path / "worker.log"
    env = environment(tmp_path, CELERY_BROKER_DIR=str(test_broker))
    with celery_worker(env, log):
        client.force_login(team["owner"])
        url = reverse("admin:obligations_obligation_transition", args=[ob.pk])
        response = client.post(url, {"to": CycleStatus.READY_FOR_REVIEW})
        assert response.status_code == 302
        rows = Reminder.objects.filter(kind=ReminderKind.REVIEW_REQUESTED)
        assert rows.count() == 2  # the reviewer and the manager

        def delivered() -> bool:
            return not rows.exclude(status=ReminderStatus.SENT).exists()

        wait_for(delivered, "the worker to deliver the review request", log)
    assert "obligations.deliver_reminders" in log.read_text()
    asked = "olive submitted U2U-ILLEGAL-RA Illegal content risk assessment for Worker Chat "
    asked += "for review."
    assert sorted(mailed_items(tmp_path)) == sorted(
        [(team["reviewer"].email, asked), (team["manager"].email, asked)]
    )


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="make test runs this with a Redis")
def test_a_worker_on_redis_runs_the_sweep_end_to_end(team, tmp_path, switch_broker):
    open_obligation(team, "U2U-ILLEGAL-RA", TODAY + dt.timedelta(days=7))
    open_obligation(team, "CAA", TODAY - dt.timedelta(days=3))
    redis_url = os.environ["REDIS_URL"]
    switch_broker(redis_url, settings.CELERY_REDIS_TRANSPORT_OPTIONS)
    log = tmp_path / "worker.log"
    from obligations.tasks import send_reminders

    with celery_worker(environment(tmp_path, REDIS_URL=redis_url), log):
        send_reminders.apply_async(kwargs={"date": TODAY.isoformat()})
        wait_for(
            lambda: Reminder.objects.filter(status=ReminderStatus.SENT).count() == 3,
            "the sweep to send three reminders",
            log,
        )
        # The same sweep again: nothing more is sent.
        send_reminders.apply_async(kwargs={"date": TODAY.isoformat()})
        wait_for(
            lambda: log.read_text().count("obligations.send_reminders") >= 4,
            "the second sweep to finish",
            log,
        )
    items = mailed_items(tmp_path)
    owner, manager = team["owner"].email, team["manager"].email
    assert sorted((to, "due on 1 Dec" in i, "3 days overdue" in i) for to, i in items) == sorted(
        [(owner, True, False), (owner, False, True), (manager, False, True)]
    )
    assert Reminder.objects.count() == 3


@pytest.mark.postgres
def test_two_sweeps_at_once_against_postgres_send_each_reminder_once(team, tmp_path, receiver):
    owners = [team["owner"], *(member(team["org"], username=f"o{i}") for i in range(5))]
    create_webhook(
        actor=member(team["org"], Role.ADMIN, username="ada"),
        organisation=team["org"],
        kind=WebhookKind.SIGNED,
        url=receiver.url,
        name="Compliance channel",
    )
    make_register(
        organisation=team["org"],
        obligations=600,
        today=TODAY,
        owners=owners,
        statuses=(CycleStatus.NOT_STARTED, CycleStatus.IN_PROGRESS),
        due_spread=(-30, 30),
    )
    command = [
        sys.executable,
        "manage.py",
        "send_reminders",
        "--date",
        TODAY.isoformat(),
        "--json",
    ]
    runs = [tmp_path / "a", tmp_path / "b"]
    procs = [
        subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            # Every item listed, so that the e-mails can be checked against the outbox.
            # DEBUG: the webhook receiver is plain http on loopback.
            env=environment(run, REMINDER_DIGEST_MAX_ITEMS="100000", DEBUG="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for run in runs
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out))
    rows = Reminder.objects.filter(status=ReminderStatus.SENT).select_related("recipient")
    mailed = Counter(item for run in runs for item in mailed_items(run))
    assert rows.count() > 300
    # Every reminder e-mailed exactly once, by one run or the other, and nothing else.
    assert mailed == Counter((r.recipient.email, r.reason) for r in rows)
    assert max(mailed.values()) == 1
    assert sum(r["sent"] for r in results) == rows.count()
    # And every reminder posted to the team's webhook exactly once: one post per reminder,
    # however many people it was e-mailed to.
    posted = WebhookDelivery.objects.filter(status=WebhookStatus.SENT)
    reminders = set(rows.values_list("cycle_id", "kind", "step", "deadline"))
    assert len(reminders) == posted.count() == len(receiver.posts) < rows.count()
    assert Counter(receiver.keys()) == Counter(
        str(pk) for pk in posted.values_list("pk", flat=True)
    )


LEASE = 2  # seconds: REMINDER_CLAIM_LEASE_SECONDS for the workers below


@pytest.fixture
def redis_broker(switch_broker):  # type: ignore[no-untyped-def]
    """This process publishes to the test Redis, emptied before and after (a killed worker's
    unacknowledged task must not reach the next test)."""
    url = os.environ["REDIS_URL"]
    switch_broker(url, settings.CELERY_REDIS_TRANSPORT_OPTIONS)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url, client
    client.flushdb()


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="make test runs this with a Redis")
@pytest.mark.parametrize("next_run", ["beat's delivery", "the killed task, given back by Redis"])
def test_a_worker_killed_mid_delivery_is_finished_by_the_next_run(
    team, tmp_path, redis_broker, next_run
):
    from obligations.tasks import deliver_reminders, send_reminders

    people = [team["owner"], *(member(team["org"], username=f"owner{i}") for i in range(3))]
    codes = ("U2U-ILLEGAL-RA", "CAA", "U2U-RECORDS", "U2U-COMPLAINTS")
    for person, code in zip(people, codes, strict=True):
        ob = open_obligation(team, code, TODAY + dt.timedelta(days=7))
        Obligation.objects.filter(pk=ob.pk).update(owner=person)
    url, client = redis_broker
    env = environment(tmp_path, REDIS_URL=url, REMINDER_CLAIM_LEASE_SECONDS=str(LEASE))
    # One digest per owner, in the order of their ids: the worker dies just after the mail
    # server accepted the second, before marking it sent.
    dying = {**env, "EMAIL_BACKEND": "tests.dying_mail.EmailBackend", "DIE_AFTER_MESSAGES": "2"}
    with celery_worker(dying, tmp_path / "killed.log") as killed:
        send_reminders.apply_async(kwargs={"date": TODAY.isoformat()})
        wait_for(lambda: killed.poll() is not None, "the worker to die", tmp_path / "killed.log")
    assert killed.returncode == -signal.SIGKILL
    rows = Reminder.objects.select_related("recipient")
    pending = ReminderStatus.PENDING
    assert [r.status for r in rows.order_by("recipient")] == ["sent"] + [pending] * 3
    # Acknowledged late: the killed task is still Redis's, to be given back.
    assert client.hlen("unacked") == 1

    log = tmp_path / "next.log"
    if next_run == "beat's delivery":
        time.sleep(LEASE + 0.5)  # the dead run's claim lapses
        with celery_worker(env, log):
            deliver_reminders.apply_async()  # as beat does every five minutes
            wait_for(lambda: not rows.filter(status=pending).exists(), "delivery", log)
        assert client.hlen("unacked") == 1  # the sweep too would run again, in 20 minutes
    else:
        visibility = LEASE + 2
        time.sleep(visibility + 0.5)
        quick = {**env, "TEST_VISIBILITY_TIMEOUT": str(visibility)}
        with celery_worker(quick, log, app="tests.quick_redelivery"):
            wait_for(lambda: not rows.filter(status=pending).exists(), "the sweep again", log)
        assert "obligations.send_reminders" in log.read_text()
        assert client.hlen("unacked") == 0

    # Every reminder owed was e-mailed; the one digest accepted as the worker died, twice.
    owed = Counter((r.recipient.email, r.reason) for r in rows)
    second = Counter(item for item in owed if item[0] == people[1].email)
    assert Counter(mailed_items(tmp_path)) == owed + second
    assert len(second) == 1
