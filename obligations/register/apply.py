"""Applying the catalogue to a service or provider: which duties apply, since when, and the
obligations that follow; the nightly commencement run."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from typing import Literal

from django.contrib.auth.models import User
from django.db import transaction

from obligations.assessments.actions import sync_open_assessments
from obligations.catalogue.commencement import in_force_q
from obligations.catalogue.models import DutyScope
from obligations.catalogue.rules import (
    Applicable,
    Catalogue,
    Profile,
    applicable_duties,
    describe_rule,
    evaluate,
    not_applicable_reason,
)
from obligations.catalogue.selectors import loaded_catalogue, service_profile
from obligations.dates import display, london_today
from obligations.providers.models import Provider, Service
from obligations.providers.penalties import FeesDue, fees_requirements
from obligations.providers.selectors import provider_revenue
from obligations.register.actions import set_due_date
from obligations.register.cycles import (
    close_cycle_not_applicable,
    create_obligation,
    mark_applicable_again,
    mark_not_applicable,
    open_cycle,
)
from obligations.register.events import record_event
from obligations.register.models import Obligation
from obligations.register.states import CycleTrigger, EventKind, EventSource

log = logging.getLogger(__name__)


@dataclass
class ApplyResult:
    created: list[str] = field(default_factory=list)
    reapplied: list[str] = field(default_factory=list)
    not_applicable: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # Each changed duty's title and section, for people; the lists above hold codes.
    names: dict[str, str] = field(default_factory=dict)

    def named(self, codes: list[str], limit: int = 5) -> str:
        shown = "; ".join(self.names.get(code, code) for code in codes[:limit])
        more = len(codes) - limit
        return f"{shown} and {more} more" if more > 0 else shown


@transaction.atomic
def apply_catalogue(
    *,
    actor: User,
    service: Service,
    source: str,
    changed_on: dt.date | None = None,
    launch_was: dt.date | Literal["unchanged"] | None = "unchanged",
) -> ApplyResult:
    """Bring the service's register in line with its profile. Idempotent; deletes nothing.

    Every duty the Act places on the service gets an obligation, in force or not; one not in
    force has no due date until it is (`apply_commencements`). `changed_on`: the day a change
    to the profile took effect (given only when it did), so that a duty the change brings in
    starts to apply then (Sch.3 paras 4-5), never on a date already past; a duty that applies
    again starts again that day (today, without a change). Duties that already applied, or
    start to by coming into force, keep the day their own rule gives.

    `launch_was`: the launch date before this change, when it moved: a duty whose start
    followed the old launch (or commencement) follows the new one, and so does its first
    cycle's due date unless someone moved that date.
    """
    today = london_today()
    catalogue = loaded_catalogue()
    profile = service_profile(service)
    duties = {d["code"]: d for d in catalogue.duties}
    provider_wide = {code for code, d in duties.items() if d.get("scope") == DutyScope.PROVIDER}

    def hits(profile: Profile, changed_on: dt.date | None) -> dict[str, Applicable]:
        found = applicable_duties(catalogue, profile, day=today, changed_on=changed_on)
        return {a.code: a for a in found if a.code not in provider_wide}

    # `now`: what starts on the day of the change (or today); `standing`: what the profile
    # alone gives, for the duties that already applied or come into force.
    now, standing = hits(profile, changed_on or today), hits(profile, None)
    before = None
    if not isinstance(launch_was, str) and launch_was != profile.launch_date:
        before = hits(replace(profile, launch_date=launch_was), None)
    applicable = standing
    existing = {
        o.duty.code: o
        # Obligations an Ofcom notice created follow the notice, not the profile.
        for o in Obligation.objects.filter(
            service=service, technology_notice__isnull=True, ofcom_notice__isnull=True
        )
        .select_related("duty", "current_cycle")
        .select_for_update(of=("self",))
    }
    result = ApplyResult(names={c: f"{d['title']} ({d['section']})" for c, d in duties.items()})
    for code, hit in applicable.items():
        obligation = existing.get(code)
        if obligation is None:
            hit = now[code] if changed_on is not None else hit
            obligation = create_obligation(
                actor=actor,
                source=source,
                reason=f"{hit.why}. {hit.start_why or hit.in_force.text}",
                fields={
                    "provider_id": service.provider_id,
                    "service": service,
                    "duty_id": duties[code]["pk"],
                    "why": hit.why,
                    "applies_since": hit.start,
                    "applies_since_why": hit.start_why,
                },
                first_cycle=(hit.due, CycleTrigger.INITIAL),
            )
            result.created.append(code)
        elif not obligation.applicable:
            mark_applicable_again(actor=actor, obligation=obligation, why=hit.why, source=source)
            _start_applying(
                actor=actor, obligation=obligation, hit=now[code], source=source, again=True
            )
            result.reapplied.append(code)
        else:
            if obligation.why != hit.why:
                obligation.why = hit.why
                obligation.save(update_fields=["why", "updated_at"])
            if obligation.applies_since is None and hit.start is not None:
                _start_applying(actor=actor, obligation=obligation, hit=hit, source=source)
            elif before is not None and code in before:
                _follow_launch(
                    actor=actor, obligation=obligation, hit=hit, was=before[code], source=source
                )
            result.unchanged.append(code)
    for code, obligation in existing.items():
        if code in applicable or not obligation.applicable:
            continue
        duty = duties.get(code)
        if duty is None:
            reason = f"The duty was retired from the catalogue (version {catalogue.version})."
        elif code in provider_wide:
            reason = (
                f"Kept once for the provider, covering all its services, from catalogue "
                f"version {catalogue.version}."
            )
        else:
            reason = not_applicable_reason(catalogue, duty, profile)
        mark_not_applicable(actor=actor, obligation=obligation, reason=reason, source=source)
        result.not_applicable.append(code)
    # The provider-wide duties depend on which services the provider runs.
    apply_provider_duties(
        actor=actor, provider=service.provider, source=source, catalogue=catalogue
    )
    sync_open_assessments(actor=actor, service=service, source=source)
    return result


def _start_applying(
    *, actor: User, obligation: Obligation, hit: Applicable, source: str, again: bool = False
) -> None:
    """An obligation starts (`again`: after a spell of not applying) to apply on the day `hit`
    gives, as a newly applicable duty would: it keeps the day and why. Applying again, a
    closed (or no) cycle is followed by a new one due from that day. An open cycle with no
    due date gets one, and a first cycle is never due earlier than that."""
    obligation.applies_since, obligation.applies_since_why = hit.start, hit.start_why
    obligation._history_user = actor  # type: ignore[attr-defined]
    obligation.save(update_fields=["applies_since", "applies_since_why", "updated_at"])
    cycle = obligation.current_cycle
    if cycle is None or cycle.is_closed:
        if again:
            open_cycle(
                actor=actor,
                obligation=obligation,
                due=hit.due,
                trigger=CycleTrigger.REAPPLIED,
                source=source,
            )
        return
    if hit.due is not None and (
        cycle.due_date is None
        or (cycle.trigger == CycleTrigger.INITIAL and cycle.due_date < hit.due)
    ):
        set_due_date(actor=actor, cycle=cycle, due=hit.due, reason=hit.start_why, source=source)


def _follow_launch(
    *, actor: User, obligation: Obligation, hit: Applicable, was: Applicable, source: str
) -> None:
    """The service's launch date moved. An obligation whose start was the one the old launch
    gave (the launch itself, or commencement) takes the new start, with an event naming who
    moved it; so does its open first cycle's due date, unless it is not the date the old start
    gave (someone set it: set_due_date keeps no other mark of a hand-set date)."""
    old = obligation.applies_since
    if old is None or old != was.start or hit.start in (None, was.start):
        return  # its start came from elsewhere (a profile change, applying again), or holds
    obligation.applies_since, obligation.applies_since_why = hit.start, hit.start_why
    obligation._history_user = actor  # type: ignore[attr-defined]
    obligation.save(update_fields=["applies_since", "applies_since_why", "updated_at"])
    reason = f"The service's UK launch moved: start moved from {display(old)}. {hit.start_why}"
    record_event(
        actor=actor,
        obligation=obligation,
        kind=EventKind.START_CHANGED,
        source=source,
        reason=reason,
    )
    cycle = obligation.current_cycle
    if (
        cycle is not None
        and not cycle.is_closed
        and cycle.trigger == CycleTrigger.INITIAL
        and cycle.due_date == was.due
        and hit.due != was.due
    ):
        set_due_date(actor=actor, cycle=cycle, due=hit.due, reason=reason, source=source)


class CommencementsIncomplete(RuntimeError):
    """Some services could not be brought up to date (each logged with its id); the others
    were. The next night's run tries them again."""


def apply_commencements(*, actor: User) -> list[str]:
    """The nightly step that brings duties into force on the register: every service with an
    obligation whose duty is now in force but which has not started to apply is re-applied,
    so the obligation gets the day it started and its first due date. Idempotent. Each
    service in its own transaction: one that fails is logged and skipped, never stops the
    rest, and the run then says so (CommencementsIncomplete)."""
    waiting = (
        Service.objects.filter(
            in_force_q(london_today(), prefix="obligations__duty__"),
            obligations__applicable=True,
            obligations__applies_since__isnull=True,
            obligations__technology_notice__isnull=True,
            obligations__ofcom_notice__isnull=True,
        )
        .distinct()
        .order_by("pk")
    )
    started, skipped = [], []
    for service in waiting:
        try:
            apply_catalogue(actor=actor, service=service, source=EventSource.TASK)
        except Exception:  # whatever one service's data does, the others still start
            log.exception("duties coming into force: service %s skipped", service.pk)
            skipped.append(service.pk)
            continue
        started.append(str(service))
    if skipped:
        raise CommencementsIncomplete(
            f"{len(skipped)} service(s) skipped after an error (ids {skipped}): see the log; "
            f"started on {len(started)}."
        )
    return started


@transaction.atomic
def apply_provider_duties(
    *,
    actor: User,
    provider: Provider,
    source: str,
    catalogue: Catalogue | None = None,
) -> None:
    """Bring the provider-wide obligations (the fees duties) in line with its services and its
    revenue: one cycle per charging year, dated from that year's fees position."""
    catalogue = catalogue or loaded_catalogue()
    duties = [d for d in catalogue.duties if d.get("scope") == DutyScope.PROVIDER]
    if not duties:
        return
    Provider.objects.select_for_update().filter(pk=provider.pk).first()  # one writer at a time
    periods = provider_revenue(provider)
    notify, pay, years = fees_requirements(periods, london_today(), catalogue.parameters["fees"])
    requirements = {"notify": notify, "pay": pay}
    profiles = [
        service_profile(s)
        for s in provider.services.order_by("name").prefetch_related("categories", "features")
    ]
    existing = {
        o.duty.code: o
        for o in Obligation.objects.filter(provider=provider, service__isnull=True)
        .select_related("duty", "current_cycle")
        .select_for_update(of=("self",))
    }
    for duty in duties:
        rule = {k: v for k, v in duty["applies"].items() if k != "fees"}
        reaching = [
            p.name
            for p in profiles
            if evaluate(rule, p, catalogue.implied_features(p.features), catalogue.parameters)[0]
        ]
        due = requirements[duty["applies"]["fees"]] if reaching else []
        if not reaching:
            rule_text = describe_rule(rule, catalogue.feature_names)
            reason = f"The provider runs no service this applies to ({rule_text})."
        else:
            labels = " or ".join(y.label for y in years)
            reason = f"Nothing is owed for {labels}: " + " ".join(y.why for y in years)
        _sync_yearly_obligation(
            actor=actor,
            provider=provider,
            duty_pk=duty["pk"],
            obligation=existing.get(duty["code"]),
            due=due,
            services=reaching,
            not_applicable=reason,
            source=source,
        )


def _sync_yearly_obligation(
    *,
    actor: User,
    provider: Provider,
    duty_pk: int,
    obligation: Obligation | None,
    due: list[FeesDue],
    services: list[str],
    not_applicable: str,
    source: str,
) -> None:
    """One cycle per charging year, oldest first: an open cycle follows its year's date; when it
    closes, the next year owed opens. A year no longer owed closes with the reason."""
    why = " ".join(f"{d.label}: {d.why}" for d in due)  # each why is a sentence
    if due:
        why += f" Services: {', '.join(services)}."
    if obligation is None:
        if not due:
            return
        obligation = create_obligation(
            actor=actor,
            source=source,
            reason=why,
            fields={"provider": provider, "duty_id": duty_pk, "why": why},
            first_cycle=None,
        )
    elif not due:
        if obligation.applicable:
            mark_not_applicable(
                actor=actor, obligation=obligation, reason=not_applicable, source=source
            )
        return
    elif not obligation.applicable:
        mark_applicable_again(actor=actor, obligation=obligation, why=why, source=source)
    elif obligation.why != why:
        obligation.why = why
        obligation.save(update_fields=["why", "updated_at"])
    by_start = {d.starts: d for d in due}
    cycles = set(obligation.cycles.values_list("period_start", flat=True))
    cycle = obligation.current_cycle
    if cycle is not None and not cycle.is_closed:
        owed = by_start.get(cycle.period_start)
        if owed is not None:
            set_due_date(
                actor=actor,
                cycle=cycle,
                due=owed.due,
                reason=f"The fees position for {owed.label} changed.",
                source=source,
            )
            return
        close_cycle_not_applicable(
            actor=actor,
            obligation=obligation,
            reason="Not owed for that charging year any more: " + not_applicable,
            source=source,
        )
    for owed in due:
        if owed.starts not in cycles:
            obligation.refresh_from_db(fields=["current_cycle"])
            open_cycle(
                actor=actor,
                obligation=obligation,
                due=owed.due,
                trigger=CycleTrigger.CHARGING_YEAR,
                source=source,
                note=f"Charging year {owed.label}: {owed.why}",
                period_start=owed.starts,
            )
            return
