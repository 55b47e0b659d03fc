"""The reminder sweep under trouble: one organisation's bad row never stops another's
reminders, a digest that cannot be sent costs its recipient alone, a live run keeps its rows
however long it takes, and one that stalls past its lease sends at most one digest twice.
(test_reminders.py kills a run at each point; test_workers.py kills a worker.)"""

import datetime as dt
import importlib
import io
from collections import Counter

import pytest
from django.apps import apps
from django.core import mail
from django.core.management import CommandError, call_command
from django.db.models import QuerySet
from django_celery_beat.models import PeriodicTask

from obligations.access.models import Role
from obligations.register.models import Event, Obligation
from obligations.register.states import CycleStatus
from obligations.reminders.delivery import Mailer, deliver
from obligations.reminders.models import Reminder, ReminderStatus
from obligations.reminders.outbox import SweepIncomplete, SweepResult
from obligations.reminders.sweep import london_midnight, run_sweep
from obligations.tasks import deliver_reminders, send_reminders
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, ProviderFactory, ServiceFactory, member
from tests.reminders.helpers import day, items_to, obligation


def team(name: str, people: str):  # type: ignore[no-untyped-def]
    """Another organisation, its owner and manager named from `people`."""
    organisation = OrganisationFactory(name=name)
    return {
        "org": organisation,
        "owner": member(organisation, username=f"{people}-owner"),
        "manager": member(organisation, Role.MANAGER, username=f"{people}-manager"),
        "service": ServiceFactory(provider=ProviderFactory(organisation=organisation)),
    }


# --- One bad row, one bad digest -------------------------------------------


def poisoned(org):  # type: ignore[no-untyped-def]
    """An organisation whose met recurring review is due on 30 Jun 2100, a date anyone may
    enter: rolling it forward a year gives 30 Jun 2101, which the database refuses (due dates
    stop at 2100), so that cycle's decision fails at its write, on every sweep. Before the
    sweep isolated failures this stopped every organisation's reminders."""
    bad = team("Poisoned Group", "pat")
    ob = obligation(bad, code="U2U-RECORDS", due=dt.date(2100, 6, 30), status=CycleStatus.MET)
    obligation(bad, code="CAA", due=day(7))  # its healthy work is still reminded
    return bad, ob.current_cycle


def test_a_poisoned_row_in_one_organisation_never_stops_another_organisations_reminders(
    org, caplog
):
    obligation(org, due=day(7))
    obligation(org, code="CAA", due=day(-2))
    bad, cycle = poisoned(org)
    mail.outbox.clear()
    with caplog.at_level("ERROR"), pytest.raises(SweepIncomplete) as raised:
        run_sweep(today=TODAY)
    result = raised.value.result
    # Every other reminder was recorded and e-mailed in the same run.
    assert len(items_to(org["owner"])) == 2 and len(items_to(org["manager"])) == 1
    assert len(items_to(bad["owner"])) == 1
    assert (result.sent, result.skipped) == (4, 1)
    assert Reminder.objects.filter(status=ReminderStatus.SENT).count() == 4
    assert "1 cycle(s) skipped after an error: see the log" in result.summary()
    assert f"cycle {cycle.pk} of organisation {bad['org'].pk} skipped" in caplog.text
    assert "cycle_due_date_plausible" in caplog.text  # the traceback says why
    # Nothing of the failed write stays, and the cycle is looked at again tomorrow.
    cycle.refresh_from_db()
    assert cycle.obligation.current_cycle_id == cycle.pk and cycle.status == CycleStatus.MET
    assert cycle.next_reminder_at == london_midnight(day(1))
    assert Event.objects.filter(obligation=cycle.obligation).count() == 5  # none added
    assert run_sweep(today=TODAY).skipped == 0  # not re-read today
    with pytest.raises(SweepIncomplete):
        run_sweep(today=day(1))


def test_the_command_reports_what_it_did_then_fails_naming_what_it_skipped(org):
    obligation(org, due=day(7))
    poisoned(org)
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"^1 cycle\(s\) skipped after an error: see the log$"):
        call_command("send_reminders", "--date", TODAY.isoformat(), stdout=out)
    assert "sent 2 reminder(s) in 2 digest(s)" in out.getvalue()


def test_the_task_fails_without_retrying_and_logs_the_summary(org, caplog):
    obligation(org, due=day(7))
    poisoned(org)
    with caplog.at_level("ERROR"):
        outcome = send_reminders.apply(kwargs={"date": TODAY.isoformat()})
    assert outcome.state == "FAILURE"
    assert isinstance(outcome.result, SweepIncomplete)
    assert "1 cycle(s) skipped after an error" in caplog.text
    assert len(mail.outbox) == 2  # sent once: no retry


def test_a_digest_that_cannot_be_sent_costs_its_recipient_alone(org, caplog):
    # A stored address with a line break: the mail library refuses it (a header injection).
    olive = org["owner"]
    olive.email = "olive@example.test\nBcc: eve@example.test"
    olive.save()
    obligation(org, due=day(7))
    obligation(org, code="CAA", due=day(-2))  # escalated to olive and to maya
    mail.outbox.clear()
    with caplog.at_level("ERROR"), pytest.raises(SweepIncomplete) as raised:
        run_sweep(today=TODAY)
    assert raised.value.result.not_sent == 1
    assert [message.to for message in mail.outbox] == [[org["manager"].email]]
    assert f"digest to user {olive.pk}" in caplog.text
    # Olive's rows are given back, pending, for the next delivery run once her address is fixed.
    rows = Reminder.objects.filter(recipient=olive)
    assert {(r.status, r.claim) for r in rows} == {(ReminderStatus.PENDING, "")}
    olive.email = "olive@example.test"
    olive.save()
    assert deliver().sent == 2


# --- The lease --------------------------------------------------------------

LEASE = 60  # seconds: a fixed, short lease, as the settings give it


@pytest.fixture
def lease(settings):  # type: ignore[no-untyped-def]
    settings.REMINDER_CLAIM_LEASE_SECONDS = LEASE
    return dt.timedelta(seconds=LEASE)


def owners(org, n):  # type: ignore[no-untyped-def]
    """n colleagues, each owning one obligation due in 7 days: n digests, one each."""
    codes = ("U2U-ILLEGAL-RA", "CAA", "U2U-RECORDS", "U2U-COMPLAINTS", "U2U-CHILD-RA")
    people = []
    for i, code in enumerate(codes[:n]):
        person = member(org["org"], username=f"owner{i}")
        ob = obligation(org, code=code, due=day(7))
        Obligation.objects.filter(pk=ob.pk).update(owner=person)
        people.append(person)
    return people


def slow_mail(monkeypatch, clock, each, during=None):  # type: ignore[no-untyped-def]
    """Each digest takes `each` to send; `during(n)` runs as the n-th is being sent."""
    send, sent = Mailer.send, []

    def slow(self, message):  # type: ignore[no-untyped-def]
        accepted = send(self, message)
        sent.append(message)
        clock.shift(each)
        if during:
            during(len(sent))
        return accepted

    monkeypatch.setattr(Mailer, "send", slow)


def test_a_run_longer_than_the_lease_keeps_its_rows_from_another_run(
    org, monkeypatch, clock, lease
):
    people = owners(org, 5)
    others: list[SweepResult] = []

    def another_run(n):  # type: ignore[no-untyped-def]
        if n == 4 and not others:  # 72 s into a run that holds its rows for 90 s
            others.append(deliver())

    slow_mail(monkeypatch, clock, lease * 0.3, another_run)
    mail.outbox.clear()
    assert run_sweep(today=TODAY).sent == 5
    assert others[0].sent == 0
    assert sorted(message.to[0] for message in mail.outbox) == sorted(p.email for p in people)


def test_a_long_run_stamps_again_only_the_rows_it_is_about_to_send_and_rarely_the_rest(
    org, monkeypatch, clock, lease
):
    # Each renewal is a write of every row renewed: at a million obligations, renewing all
    # 900,000 held rows every quarter of the lease cost more than the rest of the sweep.
    owners(org, 5)
    restamped: list[int] = []
    update = QuerySet.update

    def spy(self, **values):  # type: ignore[no-untyped-def]
        count = update(self, **values)
        if set(values) == {"claimed_at"} and values["claimed_at"] is not None:
            restamped.append(count)
        return count

    monkeypatch.setattr(QuerySet, "update", spy)
    slow_mail(monkeypatch, clock, lease * 0.3)
    assert run_sweep(today=TODAY).sent == 5
    # 18 s per digest, a 60 s lease: the 2nd, 3rd and 5th digests' own row just before each is
    # sent (a quarter of the lease after it was stamped), and the two rows still held at 54 s
    # (three quarters). Renewing all every quarter rewrote 4, 3, 2 and 1 rows.
    assert restamped == [1, 1, 2, 1]


def test_a_run_stalled_past_its_lease_sends_one_digest_twice_at_most_and_stops(
    org, monkeypatch, clock, lease, caplog
):
    people = owners(org, 4)
    others: list[SweepResult] = []

    def another_run(n):  # type: ignore[no-untyped-def]
        if n == 1:  # the first digest took longer than the lease
            others.append(deliver())

    slow_mail(monkeypatch, clock, lease + dt.timedelta(seconds=1), another_run)
    mail.outbox.clear()
    with caplog.at_level("WARNING"):
        stalled = run_sweep(today=TODAY)
    sent_to = Counter(message.to[0] for message in mail.outbox)
    assert sent_to == {people[0].email: 2, **{p.email: 1 for p in people[1:]}}
    assert (stalled.sent, others[0].sent) == (0, 4)  # its first digest was marked by the other
    assert "stalled past its lease" in caplog.text
    assert set(Reminder.objects.values_list("status", flat=True)) == {ReminderStatus.SENT}


# --- Beat and the worker ---------------------------------------------------


def test_beat_delivers_the_outbox_every_five_minutes_from_a_schedule_staff_can_edit(db):
    from tracker.celery import app

    task = PeriodicTask.objects.get(name="Reminder delivery")
    assert task.task == "obligations.deliver_reminders" and task.enabled
    assert task.task in app.tasks
    assert (task.interval.every, task.interval.period) == (5, "minutes")
    assert task.expire_seconds == 300  # a run still queued when the next is due is dropped
    # Migrating again never overwrites what staff changed.
    task.interval.every = 10
    task.interval.save()
    migration = importlib.import_module("obligations.migrations.0017_reminder_delivery_schedule")
    migration.schedule_delivery(apps, None)
    assert PeriodicTask.objects.get(name="Reminder delivery").interval.every == 10


def test_reminder_tasks_are_acknowledged_when_they_end_and_requeued_if_their_worker_dies():
    from django.conf import settings

    for task in (send_reminders, deliver_reminders):
        assert task.acks_late and task.reject_on_worker_lost
    # Redis hands a task to another worker only once it can no longer be running.
    visibility = settings.REDIS_VISIBILITY_TIMEOUT
    assert settings.CELERY_REDIS_TRANSPORT_OPTIONS["visibility_timeout"] == visibility
    longest = settings.TASK_RETRY_MAX_DELAY + send_reminders.app.conf.task_time_limit
    assert longest < visibility <= 30 * 60  # and a killed worker's task runs within the half hour
