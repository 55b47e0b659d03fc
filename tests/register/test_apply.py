"""Applying the catalogue to a saved service: idempotent, never deletes, explains itself."""

import datetime as dt

from obligations.catalogue.models import Exemption, RegisterCategory
from obligations.providers.actions import record_significant_change
from obligations.register.apply import apply_catalogue
from obligations.register.models import Event, Obligation, ObligationCycle
from obligations.register.states import CycleStatus, CycleTrigger, EventKind, EventSource
from tests.conftest import TODAY
from tests.factories import UserFactory, applied_service, put_in

SYSTEM = EventSource.ADMIN


def codes(service, applicable=True):  # type: ignore[no-untyped-def]
    return set(
        service.obligations.filter(applicable=applicable).values_list("duty__code", flat=True)
    )


def test_saving_a_service_creates_its_obligations_with_a_first_cycle(catalogue):
    service = applied_service(children_likely_to_access=False)
    assert "U2U-ILLEGAL-RA" in codes(service)
    obligation = service.obligations.get(duty__code="U2U-ILLEGAL-RA")
    assert obligation.why == (
        "user-to-user service; links with the UK not recorded: treated as having them (s.4(5)-(6))"
    )
    assert obligation.current_cycle.due_date == dt.date(2025, 3, 16)
    assert obligation.current_cycle.status == CycleStatus.NOT_STARTED
    assert obligation.current_cycle.period_start == TODAY
    assert list(obligation.events.values_list("kind", flat=True).order_by("id")) == [
        EventKind.CREATED,
        EventKind.CYCLE_OPENED,
    ]


def test_reapplying_is_idempotent(catalogue):
    service = applied_service()
    before = (
        Obligation.objects.count(),
        ObligationCycle.objects.count(),
        Event.objects.count(),
    )
    result = apply_catalogue(actor=UserFactory(), service=service, source=SYSTEM)
    assert not (result.created or result.reapplied or result.not_applicable)
    assert before == (
        Obligation.objects.count(),
        ObligationCycle.objects.count(),
        Event.objects.count(),
    )


def test_profile_change_adds_duties_and_marks_dropped_ones_with_the_reason(catalogue):
    service = applied_service(children_likely_to_access=True)
    actor = UserFactory()
    total = service.obligations.count()
    assert {"U2U-CHILD-RA", "U2U-CHILD-SAFETY"} <= codes(service)

    # The children's access assessment now concludes children are not likely to access it.
    service.children_likely_to_access = False
    service.save()
    result = apply_catalogue(actor=actor, service=service, source=SYSTEM)
    assert set(result.not_applicable) == {"U2U-CHILD-RA", "U2U-CHILD-SAFETY"}
    dropped = service.obligations.get(duty__code="U2U-CHILD-RA")
    assert not dropped.applicable
    assert "children likely to access" in dropped.not_applicable_reason
    assert dropped.current_cycle.status == CycleStatus.NOT_APPLICABLE
    assert dropped.current_cycle.status_reason == dropped.not_applicable_reason
    event = dropped.events.get(kind=EventKind.NOT_APPLICABLE)
    assert (event.actor, event.source) == (actor, SYSTEM)
    assert service.obligations.count() == total  # nothing deleted

    # Later it becomes Category 2B: new duties appear.
    service.categories.set(RegisterCategory.objects.filter(code="2B"))
    result = apply_catalogue(actor=actor, service=service, source=SYSTEM)
    assert set(result.created) == {"DECEASED-CHILD", "TRANSPARENCY"}

    # And children are found likely again: the dropped duties apply again in a new cycle.
    service.children_likely_to_access = True
    service.save()
    result = apply_catalogue(actor=actor, service=service, source=SYSTEM)
    assert set(result.reapplied) == {"U2U-CHILD-RA", "U2U-CHILD-SAFETY"}
    again = service.obligations.get(duty__code="U2U-CHILD-RA")
    assert again.applicable and again.not_applicable_reason == ""
    assert again.cycles.count() == 2
    assert again.current_cycle.trigger == CycleTrigger.REAPPLIED
    # It starts to apply again today (24 Nov 2026): the three months beginning with today
    # end on 23 Feb 2027 (Sch.3 para 5(2)), not on the long-past first date.
    assert again.applies_since == TODAY
    assert again.current_cycle.due_date == dt.date(2027, 2, 23)


def test_an_exemption_gives_no_part_3_duties_with_the_exemption_as_reason(catalogue):
    service = applied_service()
    service.exemption = Exemption.objects.get(code="limited_functionality")
    service.save()
    apply_catalogue(actor=UserFactory(), service=service, source=SYSTEM)
    assert codes(service) == set()
    reasons = set(service.obligations.values_list("not_applicable_reason", flat=True))
    assert reasons == {
        "The service is exempt: Limited functionality (comments and reviews on "
        "provider content only) (Sch.1 para 4)."
    }


def test_a_significant_change_opens_cycles_and_leaves_met_cycles_alone(catalogue):
    service = applied_service(children_likely_to_access=True)
    actor = UserFactory()
    met = service.obligations.get(duty__code="U2U-ILLEGAL-RA").current_cycle
    put_in(met, CycleStatus.MET, closed_at=dt.datetime(2025, 3, 1, tzinfo=dt.UTC))
    change_day = TODAY + dt.timedelta(days=60)
    record_significant_change(
        actor=actor,
        service=service,
        description="Adding end-to-end encrypted messaging",
        planned_for=change_day,
        source=SYSTEM,
    )

    ra = service.obligations.get(duty__code="U2U-ILLEGAL-RA")
    met.refresh_from_db()
    assert met.status == CycleStatus.MET and met.due_date == dt.date(2025, 3, 16)
    assert ra.current_cycle != met
    assert ra.current_cycle.trigger == CycleTrigger.SIGNIFICANT_CHANGE
    assert ra.current_cycle.due_date == change_day - dt.timedelta(days=1)
    assert "end-to-end encrypted" in ra.current_cycle.trigger_note

    # An open assessment is brought forward rather than duplicated.
    child_ra = service.obligations.get(duty__code="U2U-CHILD-RA")
    assert child_ra.cycles.count() == 1
    # ...but only when the change comes before it is due already (2025 is earlier).
    assert child_ra.current_cycle.due_date == dt.date(2025, 7, 24)

    # Duties without a before-change rule are untouched.
    assert service.obligations.get(duty__code="U2U-REPORTING").cycles.count() == 1


def test_a_later_due_date_is_brought_forward_by_a_change(catalogue):
    launch = TODAY + dt.timedelta(days=200)  # 12 Jun 2027
    service = applied_service(launch_date=launch)
    ra = service.obligations.get(duty__code="U2U-ILLEGAL-RA")
    # Sch.3 para 3: the three months beginning with launch day end on 11 Sep 2027.
    assert ra.current_cycle.due_date == dt.date(2027, 9, 11)
    # A change planned before launch is not one the duty reaches: it does not apply yet.
    record_significant_change(
        actor=UserFactory(),
        service=service,
        description="A redesign before launch",
        planned_for=TODAY + dt.timedelta(days=30),
        source=SYSTEM,
    )
    ra.refresh_from_db()
    assert ra.current_cycle.due_date == dt.date(2027, 9, 11)
    record_significant_change(
        actor=UserFactory(),
        service=service,
        description="New livestreaming feature",
        planned_for=launch + dt.timedelta(days=30),
        source=SYSTEM,
    )
    ra.refresh_from_db()
    assert ra.cycles.count() == 1
    assert ra.current_cycle.due_date == launch + dt.timedelta(days=29)
    assert ra.events.filter(kind=EventKind.DUE_CHANGED).count() == 1


def test_why_a_duty_applies_since_its_day_is_kept_whole_however_long(catalogue):
    # The reason quotes the catalogue's applies_note, which has no length limit.
    service = applied_service()
    obligation = service.obligations.get(duty__code="U2U-RECORDS")
    obligation.applies_since_why = "Applies from 17 Mar 2025; " + "the first code came. " * 40
    obligation.full_clean(exclude=["provider", "service", "duty", "owner", "current_cycle"])
    obligation.save()
    obligation.refresh_from_db()
    assert len(obligation.applies_since_why) > 500
