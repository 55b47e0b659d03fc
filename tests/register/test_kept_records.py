"""Evidence, cycles, the reminder outbox and memberships are live rows that are also the
record. On PostgreSQL (migration 0016) none is ever deleted, and an update may change what
the app changes (a purge, a transition, a claim, a role) but never what a row records:
not by a script, a mistaken query or the app's own database role."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError

from obligations.access.actions import change_role, end_membership
from obligations.access.models import Membership, MembershipEvent, Role
from obligations.register.actions import set_due_date
from obligations.register.evidence import add_evidence_file, purge_evidence
from obligations.register.models import EvidenceKind
from obligations.register.states import CycleStatus
from obligations.register.workflow import do_approve, do_start, do_submit_for_review
from obligations.reminders.delivery import deliver
from obligations.reminders.models import Reminder, ReminderKind, ReminderStatus
from obligations.reminders.sweep import run_sweep
from tests.conftest import TODAY
from tests.factories import SOURCE, OrganisationFactory, ProviderFactory, applied_service, member

pytestmark = pytest.mark.postgres

PDF = b"%PDF-1.4\n" + b"policy " * 50 + b"\n%%EOF\n"


@pytest.fixture
def work(catalogue) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A cycle in review with its evidence, the reviewer's reminder, and memberships; and a
    second organisation's rows to point them at."""
    ours, theirs = OrganisationFactory(name="Ours"), OrganisationFactory(name="Theirs")
    service = applied_service(provider=ProviderFactory(organisation=ours))
    casey, ada = member(ours, username="casey"), member(ours, Role.ADMIN, username="ada")
    eve = member(theirs, username="eve")
    obligation = service.obligations.get(duty__code="U2U-RECORDS")
    cycle = do_start(actor=casey, cycle=obligation.current_cycle, source=SOURCE)
    evidence = add_evidence_file(
        actor=casey,
        cycle=cycle,
        uploaded=SimpleUploadedFile("policy.pdf", PDF),
        title="Policy",
        source=SOURCE,
    )
    cycle = do_submit_for_review(actor=casey, cycle=cycle, source=SOURCE)
    return {
        "casey": casey,
        "ada": ada,
        "eve": eve,
        "cycle": cycle,
        "other_cycle": service.obligations.get(duty__code="U2U-REPORTING").current_cycle,
        "evidence": evidence,
        "reminder": Reminder.objects.get(recipient=ada),
        "membership": Membership.objects.get(user=casey),
        "theirs": theirs,
    }


def refused(sql: str, params: list[Any]) -> None:
    with (
        pytest.raises(DatabaseError, match="is a record"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)


def rows(work: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each kept row, every column, as the database holds it now."""
    return {
        name: type(work[name]).objects.filter(pk=work[name].pk).values().get()
        for name in ("evidence", "cycle", "reminder", "membership")
    }


def test_no_evidence_cycle_reminder_or_membership_is_ever_deleted(work):
    for name in ("evidence", "cycle", "reminder", "membership"):
        row = work[name]
        refused(f"DELETE FROM {row._meta.db_table} WHERE id = %s", [row.pk])
    # As a script would: Django refuses first (the membership's events protect it), and a
    # delete past Django is refused by the trigger above.
    with pytest.raises(ProtectedError), transaction.atomic():
        Membership.objects.filter(user=work["casey"]).delete()
    assert all(rows(work).values())


# (row, column, the value a forger would write)
RECORD_COLUMNS = [
    ("evidence", "sha256", lambda w: "0" * 64),
    ("evidence", "uploaded_by_id", lambda w: w["eve"].pk),
    ("evidence", "uploaded_at", lambda w: w["evidence"].uploaded_at - dt.timedelta(days=30)),
    ("evidence", "kind", lambda w: EvidenceKind.LINK),
    ("evidence", "url", lambda w: "https://elsewhere.test/"),
    ("evidence", "original_name", lambda w: "other.pdf"),
    ("evidence", "file", lambda w: "evidence/other.pdf"),
    ("evidence", "cycle_id", lambda w: w["other_cycle"].pk),
    ("cycle", "obligation_id", lambda w: w["other_cycle"].obligation_id),
    ("cycle", "period_start", lambda w: dt.date(2020, 1, 1)),
    ("reminder", "cycle_id", lambda w: w["other_cycle"].pk),
    ("reminder", "kind", lambda w: ReminderKind.OVERDUE),
    ("reminder", "deadline", lambda w: dt.date(2030, 1, 1)),
    ("reminder", "recipient_id", lambda w: w["casey"].pk),
    ("membership", "user_id", lambda w: w["eve"].pk),
    ("membership", "organisation_id", lambda w: w["theirs"].pk),
    ("membership", "created_at", lambda w: w["membership"].created_at - dt.timedelta(days=30)),
]


def test_what_a_row_records_never_changes(work):
    before = rows(work)
    for name, column, forged in RECORD_COLUMNS:
        row = work[name]
        refused(
            f'UPDATE {row._meta.db_table} SET "{column}" = %s WHERE id = %s', [forged(work), row.pk]
        )
    assert rows(work) == before


def test_a_purge_is_never_undone_and_a_closed_cycle_never_reopened(work):
    cycle = do_approve(actor=work["ada"], cycle=work["cycle"], source=SOURCE)
    evidence = work["evidence"]
    purge_evidence(actor=work["ada"], evidence=evidence, reason="Retention", source=SOURCE)
    before = rows(work)
    for column, value in [
        ("purged_at", None),
        ("purge_reason", "Nothing to see"),
        ("purged_by_id", work["casey"].pk),
        ("file", "evidence/policy.pdf"),
    ]:
        refused(
            f'UPDATE obligations_evidence SET "{column}" = %s WHERE id = %s', [value, evidence.pk]
        )
    for column, value in [
        ("status", CycleStatus.IN_PROGRESS),
        ("reviewer_id", work["casey"].pk),
        ("submitted_by_id", work["ada"].pk),
        ("closed_at", None),
        ("status_reason", "Forged"),
    ]:
        refused(
            f'UPDATE obligations_obligationcycle SET "{column}" = %s WHERE id = %s',
            [value, cycle.pk],
        )
    assert rows(work) == before


def test_the_apps_own_updates_of_these_rows_still_happen(work):
    """A due date moved, the reminder claimed and sent, a transition, the sweep's schedule,
    a purge and a role changed: each an update of a kept row."""
    set_due_date(
        actor=work["casey"],
        cycle=work["cycle"],
        due=dt.date(2027, 3, 1),
        reason="Agreed",
        source=SOURCE,
    )
    assert deliver().sent == 1
    do_approve(actor=work["ada"], cycle=work["cycle"], source=SOURCE)
    run_sweep(today=TODAY)
    purge_evidence(actor=work["ada"], evidence=work["evidence"], reason="Retention", source=SOURCE)
    change_role(actor=work["ada"], membership=work["membership"], role=Role.MANAGER)

    now = rows(work)
    assert (now["cycle"]["status"], now["cycle"]["due_date"]) == (
        CycleStatus.MET,
        dt.date(2027, 3, 1),
    )
    assert now["reminder"]["status"] == ReminderStatus.SENT
    assert now["evidence"]["file"] == "" and now["evidence"]["purged_at"] is not None
    assert now["membership"]["role"] == Role.MANAGER


def test_an_ended_membership_keeps_its_role_and_its_end_and_its_events_are_append_only(work):
    membership = work["membership"]
    end_membership(actor=work["ada"], membership=membership)
    table = membership._meta.db_table
    refused(f"UPDATE {table} SET role = 'admin' WHERE id = %s", [membership.pk])
    refused(
        f"UPDATE {table} SET ended_at = NULL, ended_by_id = NULL WHERE id = %s", [membership.pk]
    )
    event = MembershipEvent.objects.filter(membership=membership).latest("pk")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        MembershipEvent.objects.filter(pk=event.pk).update(actor=work["casey"])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        MembershipEvent.objects.filter(pk=event.pk).delete()
