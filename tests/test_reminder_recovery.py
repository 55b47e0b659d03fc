"""The reminder sweep under trouble: one organisation's bad row never stops another's
reminders, and a digest that cannot be sent costs its recipient alone."""

import datetime as dt
import io

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from obligations import models as m
from obligations import reminders, tasks
from tests import test_reminders
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, ProviderFactory, ServiceFactory, member
from tests.test_reminders import day, items_to, obligation

# Acme Group, its owner olive and manager maya, as in tests/test_reminders.py.
org = test_reminders.org

S = m.CycleStatus


def team(name: str, people: str):  # type: ignore[no-untyped-def]
    """Another organisation, its owner and manager named from `people`."""
    organisation = OrganisationFactory(name=name)
    return {
        "org": organisation,
        "owner": member(organisation, username=f"{people}-owner"),
        "manager": member(organisation, m.Role.MANAGER, username=f"{people}-manager"),
        "service": ServiceFactory(provider=ProviderFactory(organisation=organisation)),
    }


# --- One bad row, one bad digest -------------------------------------------


def poisoned(org):  # type: ignore[no-untyped-def]
    """An organisation whose met recurring review is due on 30 Jun 2100, a date anyone may
    enter: rolling it forward a year gives 30 Jun 2101, which the database refuses (due dates
    stop at 2100), so that cycle's decision fails at its write, on every sweep. Before the
    sweep isolated failures this stopped every organisation's reminders."""
    bad = team("Poisoned Group", "pat")
    ob = obligation(bad, code="U2U-RECORDS", due=dt.date(2100, 6, 30), status=S.MET)
    obligation(bad, code="CAA", due=day(7))  # its healthy work is still reminded
    return bad, ob.current_cycle


def test_a_poisoned_row_in_one_organisation_never_stops_another_organisations_reminders(
    org, caplog
):
    obligation(org, due=day(7))
    obligation(org, code="CAA", due=day(-2))
    bad, cycle = poisoned(org)
    mail.outbox.clear()
    with caplog.at_level("ERROR"), pytest.raises(reminders.SweepIncomplete) as raised:
        reminders.run_sweep(today=TODAY)
    result = raised.value.result
    # Every other reminder was recorded and e-mailed in the same run.
    assert len(items_to(org["owner"])) == 2 and len(items_to(org["manager"])) == 1
    assert len(items_to(bad["owner"])) == 1
    assert (result.sent, result.skipped) == (4, 1)
    assert m.Reminder.objects.filter(status=m.ReminderStatus.SENT).count() == 4
    assert "1 cycle(s) skipped after an error: see the log" in result.summary()
    assert f"cycle {cycle.pk} of organisation {bad['org'].pk} skipped" in caplog.text
    assert "cycle_due_date_plausible" in caplog.text  # the traceback says why
    # Nothing of the failed write stays, and the cycle is looked at again tomorrow.
    cycle.refresh_from_db()
    assert cycle.obligation.current_cycle_id == cycle.pk and cycle.status == S.MET
    assert cycle.next_reminder_at == reminders.london_midnight(day(1))
    assert m.Event.objects.filter(obligation=cycle.obligation).count() == 5  # none added
    assert reminders.run_sweep(today=TODAY).skipped == 0  # not re-read today
    with pytest.raises(reminders.SweepIncomplete):
        reminders.run_sweep(today=day(1))


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
        outcome = tasks.send_reminders.apply(kwargs={"date": TODAY.isoformat()})
    assert outcome.state == "FAILURE"
    assert isinstance(outcome.result, reminders.SweepIncomplete)
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
    with caplog.at_level("ERROR"), pytest.raises(reminders.SweepIncomplete) as raised:
        reminders.run_sweep(today=TODAY)
    assert raised.value.result.not_sent == 1
    assert [message.to for message in mail.outbox] == [[org["manager"].email]]
    assert f"digest to user {olive.pk}" in caplog.text
    # Olive's rows are given back, pending, for the next delivery run once her address is fixed.
    rows = m.Reminder.objects.filter(recipient=olive)
    assert {(r.status, r.claim) for r in rows} == {(m.ReminderStatus.PENDING, "")}
    olive.email = "olive@example.test"
    olive.save()
    assert reminders.deliver().sent == 2
