"""Two people clicking at once: on PostgreSQL, exactly one transition wins and one event is
written. (SQLite serialises writers, so the race cannot happen there.)"""

import threading

import pytest
from django.db import connection

from obligations import models as m
from obligations import services
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_concurrent_transitions_from_the_same_state_have_one_winner(catalogue, monkeypatch):
    org = OrganisationFactory()
    service = applied_service(provider=ProviderFactory(organisation=org))
    alice, bob = member(org, username="alice"), member(org, username="bob")
    cycle = service.obligations.get(duty__code="U2U-RECORDS").current_cycle
    cycle = services.do_start(actor=alice, cycle=cycle, source=m.EventSource.ADMIN)
    services.add_evidence_link(
        actor=alice, cycle=cycle, url="https://example.test/ra", title="RA", source="admin"
    )
    cycle = services.do_submit_for_review(actor=alice, cycle=cycle, source=m.EventSource.ADMIN)

    # Hold both requests after they have read "ready for review" and before they write, so
    # that each decides on the same state: the conditional update must pick the winner.
    both_read = threading.Barrier(2, timeout=10)
    real_now = services.timezone.now
    waited = threading.local()

    def now_after_both_read():  # type: ignore[no-untyped-def]
        if not getattr(waited, "done", False):
            waited.done = True
            both_read.wait()
        return real_now()

    monkeypatch.setattr(services.timezone, "now", now_after_both_read)
    outcomes: dict[str, str] = {}

    def act(name, action, **kwargs):  # type: ignore[no-untyped-def]
        try:
            action(cycle=cycle, source=m.EventSource.ADMIN, **kwargs)
            outcomes[name] = "won"
        except services.TransitionError as exc:
            outcomes[name] = str(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=act, args=("approve", services.do_approve), kwargs={"actor": bob}),
        threading.Thread(
            target=act,
            args=("send back", services.do_send_back),
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
    events = m.Event.objects.filter(
        cycle=cycle, kind=m.EventKind.STATUS, from_status=m.CycleStatus.READY_FOR_REVIEW
    )
    assert events.count() == 1
    assert events.get().to_status == cycle.status
