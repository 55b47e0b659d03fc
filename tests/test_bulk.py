"""The bench's generator (tests/bulk.py) writes what the services would: on PostgreSQL by
COPY, with ids it reserves from the sequences itself, so the app's next row must still get a
fresh one."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import F
from django.utils import timezone

from obligations.register.models import Event, Evidence, Obligation, ObligationCycle
from obligations.register.states import CycleStatus, CycleTrigger, EventKind, EventSource
from tests import bulk
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, member


@pytest.mark.django_db
def test_a_register_written_in_bulk_is_consistent(catalogue: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(bulk, "COPY_FROM", 10)  # by COPY on PostgreSQL from 10 rows
    organisation = OrganisationFactory()
    owner = member(organisation)
    bulk.make_register(
        organisation=organisation,
        obligations=70,
        today=TODAY,
        owners=[owner],
        events_per_obligation=2,
        past_cycles=2,
        evidence_per_cycle=2,
        field_history=True,
        rolled_forward=True,
    )
    register = Obligation.objects.filter(provider__organisation=organisation)
    assert register.count() == 70
    for obligation in register.select_related("current_cycle"):
        current = obligation.current_cycle
        assert current is not None and current.obligation_id == obligation.pk
        assert (obligation.status, obligation.due_date) == (current.status, current.due_date)
        assert obligation.created_at is not None and obligation.updated_at is not None
    # As the nightly sweep leaves a register: no recurring duty's current cycle is met.
    recurring = register.filter(duty__deadline__has_key="recurrence")
    assert recurring.exists()
    assert not recurring.filter(status=CycleStatus.MET).exists()
    assert recurring.filter(current_cycle__trigger=CycleTrigger.RECURRENCE).exists()
    cycles = ObligationCycle.objects.filter(obligation__in=register)
    assert cycles.count() > 70  # closed yearly cycles before the current ones
    evidence = Evidence.objects.filter(cycle__in=cycles)
    assert evidence.exists()
    added = Event.objects.filter(kind=EventKind.EVIDENCE_ADDED, obligation__in=register)
    assert added.count() == evidence.count()
    assert not added.exclude(evidence__cycle__obligation=F("obligation")).exists()
    assert Obligation.history.filter(history_type="+", id__in=register).count() == 70
    assert Obligation.history.filter(history_type="~", id__in=register).count() == 35
    assert Evidence.history.filter(id__in=evidence).count() == evidence.count()

    latest = Event.objects.order_by("-pk").values_list("pk", flat=True)[0]
    made = Event.objects.create(
        obligation=register[0],
        kind=EventKind.CREATED,
        actor=owner,
        at=timezone.now(),
        source=EventSource.ADMIN,
    )
    assert made.pk > latest
