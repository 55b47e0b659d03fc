"""Applying the catalogue to a saved service: idempotent, never deletes, explains itself."""

import datetime as dt

from obligations.catalogue.models import Duty, Exemption, RegisterCategory
from obligations.providers.actions import record_significant_change, save_service
from obligations.register.actions import set_due_date
from obligations.register.apply import apply_catalogue
from obligations.register.models import Event, Obligation, ObligationCycle
from obligations.register.states import CycleStatus, CycleTrigger, EventKind, EventSource
from tests.conftest import TODAY
from tests.factories import ServiceFactory, UserFactory, applied_service, put_in

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


def _ob(service, code):  # type: ignore[no-untyped-def]
    return service.obligations.select_related("current_cycle", "duty").get(duty__code=code)


def test_moving_the_launch_moves_the_starts_and_first_dates_that_followed_it(catalogue):
    service = applied_service(launch_date=dt.date(2026, 6, 1), children_likely_to_access=False)
    ra = _ob(service, "U2U-ILLEGAL-RA")
    # Sch.3 para 3: the three months beginning with 1 Jun 2026 end on 31 Aug 2026.
    assert (ra.applies_since, ra.current_cycle.due_date) == (
        dt.date(2026, 6, 1),
        dt.date(2026, 8, 31),
    )
    planner = UserFactory(username="planner")
    caa = _ob(service, "CAA")
    set_due_date(actor=planner, cycle=caa.current_cycle, due=dt.date(2026, 12, 31),
                 reason="Agreed with the board", source=EventSource.API)  # fmt: skip
    # Children found likely today: the children's duties start today, from the change.
    service.children_likely_to_access = True
    save_service(actor=planner, service=service, source=SYSTEM)
    assert _ob(service, "U2U-CHILD-RA").applies_since == TODAY

    # The launch is corrected: a month later.
    editor = UserFactory(username="editor")
    service.launch_date = dt.date(2026, 7, 1)
    save_service(actor=editor, service=service, source=SYSTEM)

    ra = _ob(service, "U2U-ILLEGAL-RA")
    assert ra.applies_since == dt.date(2026, 7, 1)
    assert "UK launch" in ra.applies_since_why
    assert ra.current_cycle.due_date == ra.due_date == dt.date(2026, 9, 30)
    moved = ra.events.get(kind=EventKind.START_CHANGED)
    assert (moved.actor, moved.source) == (editor, SYSTEM)
    assert "1 Jun 2026" in moved.reason
    due_moved = ra.events.get(kind=EventKind.DUE_CHANGED)
    assert (due_moved.actor, due_moved.due_date) == (editor, dt.date(2026, 9, 30))
    # The CAA's start follows the launch too, but the date someone set stays.
    caa = _ob(service, "CAA")
    assert caa.applies_since == dt.date(2026, 7, 1)
    assert caa.current_cycle.due_date == dt.date(2026, 12, 31)
    assert not caa.events.filter(kind=EventKind.DUE_CHANGED, actor=editor).exists()
    # A start the profile change gave is not the launch's: it stays.
    child = _ob(service, "U2U-CHILD-RA")
    assert child.applies_since == TODAY
    assert not child.events.filter(kind=EventKind.START_CHANGED).exists()

    # Saving again changes nothing.
    count = Event.objects.count()
    save_service(actor=editor, service=service, source=SYSTEM)
    assert Event.objects.count() == count


def test_a_save_that_changes_nothing_gives_no_change_day(catalogue):
    """A service whose catalogue was never applied (imported, say) and is saved as it is: its
    duties start when their own rules say, not on the day of the save."""
    service = ServiceFactory(children_likely_to_access=False)
    save_service(actor=UserFactory(), service=service, source=SYSTEM)
    ra = _ob(service, "U2U-ILLEGAL-RA")
    assert ra.applies_since == dt.date(2024, 1, 10)
    assert "came into force" in ra.applies_since_why
    assert ra.current_cycle.due_date == dt.date(2025, 3, 16)


def test_a_change_day_is_only_for_the_duties_the_change_brings_in(catalogue):
    service = applied_service(children_likely_to_access=False)
    # Only a register category changes (no field of the service): that is a change, and
    # what it brings in starts today; what was there keeps its day.
    save_service(actor=UserFactory(), service=service, source=SYSTEM,
                 categories=RegisterCategory.objects.filter(code="1"))  # fmt: skip
    assert _ob(service, "U2U-UE-ASSESS").applies_since == TODAY
    assert "profile changed" in _ob(service, "U2U-UE-ASSESS").applies_since_why
    assert _ob(service, "U2U-ILLEGAL-RA").applies_since == dt.date(2024, 1, 10)


def test_a_duty_applying_again_starts_today_as_a_new_one_would(catalogue):
    service = applied_service(children_likely_to_access=True)
    actor = UserFactory()
    service.children_likely_to_access = False
    service.save()
    apply_catalogue(actor=actor, service=service, source=SYSTEM)
    service.children_likely_to_access = True
    service.save()
    # Applying again without a profile change (a catalogue load, say): today.
    apply_catalogue(actor=actor, service=service, source=SYSTEM)
    child = _ob(service, "U2U-CHILD-RA")
    assert child.applies_since == TODAY
    assert child.current_cycle.trigger == CycleTrigger.REAPPLIED
    assert child.current_cycle.due_date == dt.date(2027, 2, 23)  # Sch.3 para 5(2)


def test_an_open_cycle_without_a_date_gets_one_when_its_duty_comes_into_force(catalogue):
    """A duty that applied again while not in force opened a cycle with no date; when it comes
    into force, that cycle gets its date, as a first cycle would."""
    later = TODAY + dt.timedelta(days=30)
    Duty.objects.filter(code="U2U-CHILD-RA").update(in_force_from=later, effective_from=later)
    service = applied_service(children_likely_to_access=True)
    actor = UserFactory()
    for likely in (False, True):
        service.children_likely_to_access = likely
        service.save()
        apply_catalogue(actor=actor, service=service, source=SYSTEM)
    child = _ob(service, "U2U-CHILD-RA")
    assert (child.applies_since, child.current_cycle.trigger) == (None, CycleTrigger.REAPPLIED)
    assert child.current_cycle.due_date is None
    # It comes into force today.
    Duty.objects.filter(code="U2U-CHILD-RA").update(in_force_from=TODAY, effective_from=TODAY)
    apply_catalogue(actor=actor, service=service, source=SYSTEM)
    child = _ob(service, "U2U-CHILD-RA")
    assert child.applies_since == TODAY
    assert child.current_cycle.due_date == child.due_date == dt.date(2027, 2, 23)
    event = child.events.get(kind=EventKind.DUE_CHANGED)
    assert (event.actor, event.due_date) == (actor, dt.date(2027, 2, 23))
