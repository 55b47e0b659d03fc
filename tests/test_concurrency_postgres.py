"""Two people at once on PostgreSQL: exactly one of two concurrent transitions wins and one
event is written; an audit pack written while someone works is one consistent snapshot.
(SQLite serialises writers, so these races cannot happen there.)"""

import csv
import io
import json
import threading
import zipfile

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection
from django.utils import timezone

from obligations.exports import auditpack
from obligations.exports.auditpack import write_evidence, write_pack
from obligations.register.evidence import add_evidence_link
from obligations.register.models import Event
from obligations.register.states import CycleStatus, EventKind, EventSource, TransitionError
from obligations.register.workflow import do_approve, do_send_back, do_start, do_submit_for_review
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member
from tests.helpers import private_pem

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_concurrent_transitions_from_the_same_state_have_one_winner(catalogue, monkeypatch):
    org = OrganisationFactory()
    service = applied_service(provider=ProviderFactory(organisation=org))
    alice, bob = member(org, username="alice"), member(org, username="bob")
    cycle = service.obligations.get(duty__code="U2U-RECORDS").current_cycle
    cycle = do_start(actor=alice, cycle=cycle, source=EventSource.ADMIN)
    add_evidence_link(
        actor=alice, cycle=cycle, url="https://example.test/ra", title="RA", source="admin"
    )
    cycle = do_submit_for_review(actor=alice, cycle=cycle, source=EventSource.ADMIN)

    # Hold both requests after they have read "ready for review" and before they write, so
    # that each decides on the same state: the conditional update must pick the winner.
    both_read = threading.Barrier(2, timeout=10)
    real_now = timezone.now
    waited = threading.local()

    def now_after_both_read():  # type: ignore[no-untyped-def]
        if not getattr(waited, "done", False):
            waited.done = True
            both_read.wait()
        return real_now()

    monkeypatch.setattr(timezone, "now", now_after_both_read)
    outcomes: dict[str, str] = {}

    def act(name, action, **kwargs):  # type: ignore[no-untyped-def]
        try:
            action(cycle=cycle, source=EventSource.ADMIN, **kwargs)
            outcomes[name] = "won"
        except TransitionError as exc:
            outcomes[name] = str(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=act, args=("approve", do_approve), kwargs={"actor": bob}),
        threading.Thread(
            target=act,
            args=("send back", do_send_back),
            kwargs={"actor": bob, "reason": "Incomplete"},
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    monkeypatch.undo()

    assert sorted(outcomes.values()).count("won") == 1, outcomes
    loser = next(v for v in outcomes.values() if v != "won")
    assert "Someone else changed this obligation first" in loser
    cycle.refresh_from_db()
    events = Event.objects.filter(
        cycle=cycle, kind=EventKind.STATUS, from_status=CycleStatus.READY_FOR_REVIEW
    )
    assert events.count() == 1
    assert events.get().to_status == cycle.status


def test_a_pack_is_one_snapshot_though_work_is_committed_while_it_is_written(
    catalogue, monkeypatch, settings
):
    """Someone starts an obligation after the pack's register is written and before its
    history is: neither file may show the change, or the two would disagree."""
    settings.AUDIT_PACK_SIGNING_KEY = private_pem(Ed25519PrivateKey.generate())
    settings.AUDIT_PACK_SIGNING_KEY_FILE = ""
    org = OrganisationFactory()
    service = applied_service(provider=ProviderFactory(organisation=org))
    alice = member(org, username="alice")
    cycle = service.obligations.get(duty__code="U2U-RECORDS").current_cycle
    real_write_evidence = write_evidence

    def work_committed_meanwhile(*args, **kwargs):  # type: ignore[no-untyped-def]
        def start() -> None:
            try:
                do_start(actor=alice, cycle=cycle, source=EventSource.ADMIN)
            finally:
                connection.close()

        thread = threading.Thread(target=start)
        thread.start()
        thread.join(20)
        return real_write_evidence(*args, **kwargs)

    monkeypatch.setattr(auditpack, "write_evidence", work_committed_meanwhile)
    out = io.BytesIO()
    write_pack(obligations=service.obligations.all(), title="Snapshot", today=TODAY, out=out)
    assert Event.objects.filter(cycle=cycle, to_status=CycleStatus.IN_PROGRESS).exists()
    with zipfile.ZipFile(out) as zf:
        register = json.loads(zf.read("register.json"))["obligations"]
        events = csv.DictReader(io.StringIO(zf.read("history/events.csv").decode("utf-8-sig")))
        statuses = {row["to_status"] for row in events if row["cycle"] == str(cycle.pk)}
    [row] = [r for r in register if r["duty_code"] == "U2U-RECORDS"]
    assert row["status"] == CycleStatus.NOT_STARTED
    assert CycleStatus.IN_PROGRESS not in statuses
