"""Reminders that never miss and never spam, on a fixed clock: digests on the right days,
grouped by recipient; weekly escalation to owners and managers; recurring cycles rolled
forward; expiring evidence; notice dates; the outbox's exactly-once delivery, and the one
documented window where a duplicate is possible."""

import datetime as dt
import io
import json

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from obligations import tasks
from obligations.access.actions import end_membership
from obligations.access.models import Membership, Role
from obligations.access.users import get_system_user
from obligations.catalogue.models import Duty
from obligations.notices.actions import change_notice, move_technology_notice, record_notice
from obligations.notices.models import NoticeStage, TechnologyNotice
from obligations.register.actions import assign_owner, set_due_date
from obligations.register.cycles import recheck_reminders
from obligations.register.evidence import add_evidence_link
from obligations.register.models import Evidence, Obligation, ObligationCycle
from obligations.register.states import CycleStatus, EventSource
from obligations.register.workflow import (
    do_mark_not_applicable,
    do_start,
    do_submit_for_review,
)
from obligations.reminders import delivery
from obligations.reminders import sweep as sweep_module
from obligations.reminders.actions import set_lead_days
from obligations.reminders.delivery import DeliveryFailed, Mailer, deliver
from obligations.reminders.models import Reminder, ReminderKind, ReminderStatus
from obligations.reminders.outbox import SweepIncomplete, SweepResult, claim_lease
from obligations.reminders.sweep import run_sweep
from tests.bulk import make_register
from tests.conftest import NOW, TODAY
from tests.factories import (
    OrganisationFactory,
    member,
)
from tests.helpers import assert_constant_queries
from tests.reminders.helpers import day, items_to, obligation

ADMIN = EventSource.ADMIN


def sweep(on: dt.date) -> SweepResult:
    mail.outbox.clear()
    return run_sweep(today=on)


# --- Digests on the right days --------------------------------------------


def test_an_owner_is_reminded_30_7_and_1_days_before_and_not_in_between(org):
    obligation(org, due=day(30))
    sent_on = {}
    for n in range(0, 31):
        result = sweep(day(n))
        if result.sent:
            sent_on[n] = items_to(org["owner"])
    assert list(sent_on) == [0, 23, 29]
    assert "is due on 24 Dec 2026 (in 30 days)" in sent_on[0][0]
    assert "(in 7 days)" in sent_on[23][0]
    assert "(in 1 day)" in sent_on[29][0]


def test_a_missed_day_sends_the_most_specific_reminder_once(org):
    obligation(org, due=day(5))  # first sweep already inside the 7-day lead
    assert sweep(TODAY).sent == 1
    assert "(in 5 days)" in items_to(org["owner"])[0]
    assert sweep(day(1)).sent == 0


def test_lead_times_are_configurable_per_organisation_and_per_duty(org):
    system = get_system_user()
    set_lead_days(actor=system, organisation=org["org"], lead_days=[14])
    obligation(org, due=day(20))
    obligation(org, code="CAA", due=day(20))
    set_lead_days(
        actor=system,
        organisation=org["org"],
        lead_days=[20, 3],
        duty=Duty.objects.get(code="CAA"),
    )
    assert [n for n in range(0, 21) if sweep(day(n)).sent] == [0, 6, 17]
    # day 0: CAA (20 days); day 6: the RA (14 days); day 17: CAA (3 days)


def test_one_digest_per_recipient_whatever_the_number_of_obligations(org):
    other = member(org["org"], username="otto")
    obligation(org, due=day(7))
    obligation(org, code="CAA", due=day(1))
    obligation(org, code="U2U-RECORDS", due=day(30))
    ob = obligation(org, code="U2U-COMPLAINTS", due=day(7))
    assign_owner(actor=org["owner"], obligation=ob, owner=other, source=ADMIN)
    result = sweep(TODAY)
    assert (result.digests, result.recipients, result.sent) == (2, 2, 4)
    assert len(items_to(org["owner"])) == 3 and len(items_to(other)) == 1
    digest = next(msg for msg in mail.outbox if msg.to == [org["owner"].email])
    assert digest.subject == "OSA tracker: 3 due soon"
    html = digest.alternatives[0][0]
    path = reverse("admin:obligations_obligation_change", args=[ob.pk - 1])
    assert f'href="http://127.0.0.1:8000{path}"' in html
    assert f"http://127.0.0.1:8000{path}" in digest.body


def test_unowned_work_goes_to_the_organisations_admins(org):
    admin = member(org["org"], Role.ADMIN, username="ada")
    obligation(org, due=day(7), owner=None)
    sweep(TODAY)
    assert len(items_to(admin)) == 1 and items_to(org["owner"]) == []


# --- Escalation -----------------------------------------------------------


def test_a_leaver_is_told_nothing_more_and_their_work_goes_to_the_admins(org):
    """Ending a membership ends the reminders: the sweep sends the leaver's work to the
    organisation's admins, and a reminder already in the outbox for them is cancelled."""
    admin = member(org["org"], Role.ADMIN, username="ada")
    obligation(org, due=day(7))
    mine = obligation(org, code="U2U-RECORDS", due=day(20))
    run_sweep(today=TODAY)
    assert len(items_to(org["owner"])) == 2  # both reminded, while a member
    mail.outbox.clear()
    Reminder.objects.create(  # in the outbox, still true, not yet sent when they leave
        cycle=mine.current_cycle,
        kind=ReminderKind.DUE_SOON,
        step=7,
        deadline=day(20),
        recipient=org["owner"],
        reason="Recorded before leaving.",
        created_at=timezone.now(),
    )
    leaving = Membership.objects.get(user=org["owner"], organisation=org["org"])
    end_membership(actor=admin, membership=leaving)
    result = run_sweep(today=TODAY + dt.timedelta(days=6))
    assert items_to(org["owner"]) == []
    assert len(items_to(admin)) == 1 and "(in 1 day)" in items_to(admin)[0]
    assert result.cancelled == 1


def test_overdue_work_escalates_to_owner_and_managers_weekly_until_met(org):
    ob = obligation(org, due=day(-1))
    first = sweep(TODAY)
    assert first.escalations == 2  # the owner and the manager
    assert "1 day overdue" in items_to(org["manager"])[0]
    assert "week 1" in items_to(org["owner"])[0]
    assert [n for n in range(1, 15) if sweep(day(n)).sent] == [7, 14]
    assert "week 3" in items_to(org["manager"])[0]  # due yesterday: day 14 is 15 days late
    system = get_system_user()
    cycle = ob.current_cycle
    do_mark_not_applicable(actor=system, cycle=cycle, source=ADMIN, reason="Service closed.")
    assert [n for n in range(15, 30) if sweep(day(n)).sent] == []


def test_escalations_name_the_week(org):
    obligation(org, due=day(-8))
    sweep(TODAY)
    assert "8 days overdue" in items_to(org["manager"])[0]
    assert "week 2" in items_to(org["manager"])[0]


# --- Recurring cycles and evidence ----------------------------------------


def test_a_met_recurring_cycle_rolls_forward_to_its_next_anniversary(org):
    ob = obligation(
        org, code="U2U-RECORDS", due=day(10), status=CycleStatus.MET
    )  # recurs every 12 months
    met = ob.current_cycle
    result = sweep(TODAY)
    assert result.rolled_forward == 1
    ob.refresh_from_db()
    nxt = ob.current_cycle
    assert nxt.pk != met.pk
    assert (nxt.status, nxt.trigger, nxt.due_date) == (
        CycleStatus.NOT_STARTED,
        "recurrence",
        day(10 + 365),
    )
    assert ObligationCycle.objects.get(pk=met.pk).status == CycleStatus.MET  # never reopened
    assert sweep(day(1)).rolled_forward == 0


def test_a_late_cycle_opens_its_successor_not_already_overdue(org):
    ob = obligation(org, code="U2U-RECORDS", due=dt.date(2025, 3, 16), status=CycleStatus.MET)
    sweep(TODAY)
    ob.refresh_from_db()
    assert ob.current_cycle.due_date == dt.date(2027, 3, 16)


def test_expiring_evidence_is_flagged_30_days_before(org):
    ob = obligation(org, code="U2U-CHILD-HEAA", due=day(100))
    add_evidence_link(
        actor=org["owner"],
        cycle=ob.current_cycle,
        url="https://example.test/audit",
        title="Age assurance audit",
        source=ADMIN,
        expires_on=day(40),
    )
    flagged = [n for n in range(0, 41) if any("expires on" in i for i in _sweep_items(org, n))]
    assert flagged == [10]


def _sweep_items(org, n):  # type: ignore[no-untyped-def]
    sweep(day(n))
    return items_to(org["owner"])


def test_a_met_obligation_whose_evidence_all_expired_is_no_longer_met(org):
    ob = obligation(
        org, code="U2U-CHILD-HEAA", due=day(5), status=CycleStatus.MET
    )  # does not recur
    evidence = Evidence.objects.get(cycle=ob.current_cycle)
    evidence.expires_on = day(20)
    evidence.save()
    recheck_reminders(ob.current_cycle)
    assert sweep(day(20)).no_longer_met == 0
    result = sweep(day(21))
    assert result.no_longer_met == 1
    ob.refresh_from_db()
    cycle = ob.current_cycle
    assert (cycle.status, cycle.trigger, cycle.due_date) == (
        CycleStatus.NOT_STARTED,
        "evidence_expired",
        day(20),
    )
    assert "expired on 14 Dec 2026" in cycle.trigger_note
    # The new cycle is overdue at once: escalated on the next sweep.
    assert sweep(day(22)).escalations == 2


# --- Ofcom notice dates ---------------------------------------------------


def test_a_technology_notices_representations_date_is_reminded(org):
    notice = record_notice(
        actor=org["owner"],
        notice=TechnologyNotice(
            service=org["service"],
            csea_public=True,
            skilled_report_on=day(-30),
            warning_given_on=day(-1),
            representations_due=day(7),
        ),
        source=ADMIN,
    )
    move_technology_notice(
        actor=org["owner"], notice=notice, to=NoticeStage.WARNING, on=day(-1), source=ADMIN
    )
    tn = Obligation.objects.get(technology_notice=notice)
    assign_owner(actor=org["owner"], obligation=tn, owner=org["owner"], source=ADMIN)
    sweep(TODAY)
    assert any("TN-REPRESENTATIONS" in i and "(in 7 days)" in i for i in items_to(org["owner"]))
    # The notice's date moves: the reminder follows the new deadline.
    change_notice(
        actor=org["owner"], notice=notice, changes={"representations_due": day(3)}, source=ADMIN
    )
    sweep(day(1))
    assert any("due on 27 Nov 2026 (in 2 days)" in i for i in items_to(org["owner"]))


# --- Notifications in the admin -------------------------------------------


def test_users_see_their_notifications_and_managers_see_every_reminder(client, org):
    nobody_email = member(org["org"], username="noemail", email="")
    ob = obligation(org, due=day(1))
    assign_owner(actor=org["owner"], obligation=ob, owner=nobody_email, source=ADMIN)
    obligation(org, code="CAA", due=day(-3))
    result = sweep(TODAY)
    assert result.in_app_only == 1  # no e-mail address: in the admin only
    url = reverse("admin:obligations_reminder_changelist")
    client.force_login(nobody_email)
    own = client.get(url).content.decode()
    assert "U2U-ILLEGAL-RA" in own and "In the admin only" in own
    assert "CAA" not in own
    client.force_login(org["manager"])
    everything = client.get(url).content.decode()
    assert "U2U-ILLEGAL-RA" in everything and "CAA" in everything
    assert "noemail" in everything and "olive" in everything
    stranger = member(OrganisationFactory(), username="stranger")
    client.force_login(stranger)
    assert "U2U-ILLEGAL-RA" not in client.get(url).content.decode()
    reminder = Reminder.objects.first()
    change = reverse("admin:obligations_reminder_change", args=[reminder.pk])
    assert client.get(change).status_code == 404


# --- Exactly once ---------------------------------------------------------


def test_running_the_sweep_twice_sends_nothing_twice(org):
    obligation(org, due=day(7))
    obligation(org, code="CAA", due=day(-2))
    first = sweep(TODAY)
    assert first.sent == 3
    second = sweep(TODAY)
    assert (second.sent, second.digests) == (0, 0)
    # A due date moved and moved back: the cycle is looked at again, and nothing is resent.
    ob = Obligation.objects.get(duty__code="U2U-ILLEGAL-RA")
    set_due_date(actor=org["owner"], cycle=ob.current_cycle, due=day(7), reason="x", source=ADMIN)
    recheck_reminders(ob.current_cycle)
    third = sweep(TODAY)
    assert (third.sent, third.already_sent) == (0, 1)


class Died(BaseException):
    """The worker process dying (SIGKILL): nothing after this point runs."""


def crash(monkeypatch, where):  # type: ignore[no-untyped-def]
    """Make the next sweep die at one point of its work."""
    if where == "deciding":

        def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise Died

        monkeypatch.setattr(sweep_module, "update_by_pk", boom)
    elif where == "before_the_mail_server_accepts":

        def refuse(self, message):  # type: ignore[no-untyped-def]
            raise Died

        monkeypatch.setattr(Mailer, "send", refuse)
    elif where == "after_accepting_before_marking_sent":

        def die(ids, token):  # type: ignore[no-untyped-def]
            raise Died

        monkeypatch.setattr(delivery, "mark_sent", die)


@pytest.mark.parametrize(
    ("where", "deliveries"),
    [
        ("deciding", 1),
        ("before_the_mail_server_accepts", 1),
        # The documented window: the only path to a duplicate.
        ("after_accepting_before_marking_sent", 2),
    ],
)
def test_a_run_that_dies_is_finished_by_the_next_and_only_one_window_duplicates(
    org, monkeypatch, clock, settings, where, deliveries
):
    from obligations.tasks import deliver_reminders  # what beat runs every few minutes

    settings.REMINDER_CLAIM_LEASE_SECONDS = 60
    obligation(org, due=day(7))
    mail.outbox.clear()
    with monkeypatch.context() as patch:
        crash(patch, where)
        with pytest.raises(Died):
            run_sweep(today=TODAY)
    # Until the lease lapses, the dead run's claim holds: nothing is sent twice in a hurry.
    run_sweep(today=TODAY)
    clock.shift(dt.timedelta(seconds=59))
    assert deliver_reminders.apply().result["sent"] == 0
    # Then beat's next delivery takes the rows over.
    clock.shift(dt.timedelta(seconds=2))
    deliver_reminders.apply()
    delivered = [i for msg in mail.outbox for i in msg.body.splitlines() if "U2U-ILLEGAL-RA" in i]
    assert len(delivered) == deliveries
    assert Reminder.objects.get().status == ReminderStatus.SENT


def test_a_refused_send_is_released_for_the_retry_and_raises_for_it(org, monkeypatch):
    import smtplib

    obligation(org, due=day(7))

    def refuse(self, message):  # type: ignore[no-untyped-def]
        raise smtplib.SMTPServerDisconnected("gone")

    with monkeypatch.context() as patch:
        patch.setattr(Mailer, "send", refuse)
        with pytest.raises(DeliveryFailed):
            sweep(TODAY)
    row = Reminder.objects.get()
    assert (row.status, row.claim) == (ReminderStatus.PENDING, "")
    assert sweep(TODAY).sent == 1  # the retry, at once: no lease to wait for


def test_a_reminder_that_stopped_being_relevant_is_not_sent(org, monkeypatch, clock):
    ob = obligation(org, due=day(7))
    with monkeypatch.context() as patch:
        patch.setattr(sweep_module, "deliver", lambda **kwargs: kwargs["result"])
        sweep(TODAY)  # decided, never delivered
    do_mark_not_applicable(
        actor=org["owner"], cycle=ob.current_cycle, source=ADMIN, reason="Closed."
    )
    clock.shift(claim_lease() + dt.timedelta(minutes=1))
    result = deliver()
    assert (result.sent, result.cancelled) == (0, 1)
    assert Reminder.objects.get().status == ReminderStatus.CANCELLED


# --- Review requests: written with the transition, delivered by a worker ---


def test_submitting_for_review_notifies_colleagues_who_can_approve(
    org, django_capture_on_commit_callbacks
):
    reviewer = member(org["org"], username="rex")
    ob = obligation(org, due=day(30))
    do_start(actor=org["owner"], cycle=ob.current_cycle, source=ADMIN)
    with django_capture_on_commit_callbacks() as callbacks:
        do_submit_for_review(actor=org["owner"], cycle=ob.current_cycle, source=ADMIN)
    assert len(callbacks) == 1  # the worker is asked only once the transition commits
    pending = Reminder.objects.filter(kind=ReminderKind.REVIEW_REQUESTED)
    # The reviewer and the manager (managers review too); never the owner who submitted.
    assert {(r.recipient, r.status) for r in pending} == {
        (reviewer, ReminderStatus.PENDING),
        (org["manager"], ReminderStatus.PENDING),
    }
    deliver()
    assert sorted(msg.to[0] for msg in mail.outbox) == sorted(
        [reviewer.email, org["manager"].email]
    )
    assert "submitted U2U-ILLEGAL-RA" in mail.outbox[0].body


def test_with_the_broker_down_the_web_still_saves_and_the_sweep_delivers(
    client, org, switch_broker, caplog, django_capture_on_commit_callbacks
):
    # Nothing listens on port 9: publishing fails at once, as with Redis down.
    switch_broker("redis://127.0.0.1:9/0", settings.CELERY_REDIS_TRANSPORT_OPTIONS)
    member(org["org"], username="rex")
    ob = obligation(org, due=day(30))
    do_start(actor=org["owner"], cycle=ob.current_cycle, source=ADMIN)
    client.force_login(org["owner"])
    url = reverse("admin:obligations_obligation_transition", args=[ob.pk])
    with caplog.at_level("ERROR"), django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(url, {"to": CycleStatus.READY_FOR_REVIEW})
    assert response.status_code == 302
    assert len(callbacks) == 1 and "enqueue_delivery" in caplog.text  # logged, not raised
    assert (
        ObligationCycle.objects.get(pk=ob.current_cycle_id).status == CycleStatus.READY_FOR_REVIEW
    )
    rows = Reminder.objects.filter(kind=ReminderKind.REVIEW_REQUESTED)
    assert {row.status for row in rows} == {ReminderStatus.PENDING}
    assert sweep(TODAY).sent >= 1  # the nightly sweep catches up, without the broker
    assert {row.status for row in rows.all()} == {ReminderStatus.SENT}


# --- The command, the demo, and the cost in queries ------------------------


def test_the_command_reports_as_text_or_json_and_refuses_a_bad_date(org):
    obligation(org, due=day(7))
    out = io.StringIO()
    call_command("send_reminders", "--date", TODAY.isoformat(), "--dry-run", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {
        "date": "2026-11-24",
        "sent": 1,
        "already_sent": 0,
        "recipients": 1,
        "escalations": 0,
        "digests": 1,
    }
    assert not Reminder.objects.exists()  # the dry run wrote nothing
    out = io.StringIO()
    call_command("send_reminders", "--date", TODAY.isoformat(), stdout=out)
    assert "sent 1 reminder(s) in 1 digest(s) to 1 recipient(s)" in out.getvalue()
    with pytest.raises(CommandError, match="--date must be a YYYY-MM-DD date, not '24/11/2026'"):
        call_command("send_reminders", "--date", "24/11/2026")


def test_on_the_demo_data_the_first_run_sends_and_the_second_sends_none(catalogue):
    call_command("load_demo", stdout=io.StringIO())
    first, second = io.StringIO(), io.StringIO()
    call_command("send_reminders", "--json", stdout=first)
    call_command("send_reminders", "--json", stdout=second)
    first_result, second_result = json.loads(first.getvalue()), json.loads(second.getvalue())
    assert first_result["sent"] > 0 and first_result["escalations"] > 0
    assert first_result["digests"] == first_result["recipients"] >= 2
    assert second_result["sent"] == 0 and second_result["digests"] == 0


def test_the_sweep_costs_the_same_queries_for_20_and_2000_obligations(catalogue):
    organisation = OrganisationFactory()
    owners = [member(organisation, username=f"owner{i}") for i in range(3)]
    member(organisation, Role.MANAGER, username="boss")
    open_only = (
        CycleStatus.NOT_STARTED,
        CycleStatus.IN_PROGRESS,
        CycleStatus.READY_FOR_REVIEW,
        CycleStatus.SENT_BACK,
    )
    total = {"n": 0}

    def grow(size: int) -> None:
        make_register(
            organisation=organisation,
            obligations=size - total["n"],
            today=TODAY,
            owners=owners,
            statuses=open_only,
            name_prefix=f"S{size}",
        )
        total["n"] = size

    def measure() -> None:
        # Fresh state each time: every cycle due to be looked at, nothing sent yet. The
        # outbox's rows are never deleted (on PostgreSQL a trigger refuses), so the sweep's
        # are rolled back.
        with transaction.atomic():
            ObligationCycle.objects.update(next_reminder_at=NOW)
            mail.outbox.clear()
            result = run_sweep(today=TODAY)
            transaction.set_rollback(True)
        assert result.digests == 4  # three owners and the manager, at both sizes

    assert_constant_queries(grow, measure, sizes=(20, 2000))


@pytest.mark.parametrize(
    ("error", "attempts"),
    [
        (ConnectionRefusedError("mail server unreachable"), 9),  # 1 + max_retries
        (DeliveryFailed("1 digest(s) not sent"), 9),
        (KeyError("a bug"), 1),  # never retried into a storm
        # The rest was done; what was skipped comes back tomorrow or at the next delivery.
        (SweepIncomplete("1 cycle(s) skipped after an error: see the log"), 1),
    ],
)
def test_the_task_retries_transport_failures_only(monkeypatch, error, attempts):
    from obligations.tasks import send_reminders

    calls = []

    def fail(**kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs)
        raise error

    monkeypatch.setattr(tasks, "run_sweep", fail)
    # Run in this process (Celery runs an eager task's retries at once, without the backoff).
    result = send_reminders.apply(kwargs={"date": TODAY.isoformat()})
    assert result.state == "FAILURE"
    assert len(calls) == attempts


def test_beat_runs_the_sweep_daily_from_a_schedule_staff_can_edit(db):
    from django_celery_beat.models import PeriodicTask

    from tracker.celery import app

    task = PeriodicTask.objects.get(name="Daily reminder sweep")
    assert task.task == "obligations.send_reminders" and task.enabled
    assert task.task in app.tasks  # the name beat sends is a task the worker knows
    assert (task.crontab.hour, task.crontab.minute) == ("7", "0")
    assert str(task.crontab.timezone) == "Europe/London"


def test_a_long_digest_lists_the_most_urgent_and_counts_the_rest(org, settings):
    settings.REMINDER_DIGEST_MAX_ITEMS = 2
    for n, code in enumerate(("U2U-ILLEGAL-RA", "CAA", "U2U-RECORDS", "U2U-COMPLAINTS")):
        obligation(org, code=code, due=day(-1 - n))
    result = sweep(TODAY)
    assert result.sent == 8  # four escalations each to the owner and the manager
    digest = next(msg for msg in mail.outbox if msg.to == [org["owner"].email])
    assert digest.subject == "OSA tracker: 4 overdue"
    assert len(items_to(org["owner"])) == 2
    assert "... and 2 more: http://127.0.0.1:8000/admin/obligations/reminder/" in digest.body
    assert "4 days overdue" in items_to(org["owner"])[0]  # oldest first
