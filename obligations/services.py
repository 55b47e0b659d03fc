"""Every write to the register. Keyword-only arguments, the acting user first.

Each function runs in one transaction and writes the event rows that explain
it; nothing is ever deleted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from obligations import codes, penalties, reminders, selectors
from obligations import models as m
from obligations.catalogue import (
    Applicable,
    Catalogue,
    CatalogueError,
    applicable_duties,
    describe_rule,
    evaluate,
    not_applicable_reason,
)
from obligations.commencement import effective_from, first_due, in_force_on, start_day
from obligations.dates import (
    RANGE_TEXT,
    add_months,
    check_plausible_dates,
    display,
    is_plausible,
    london_today,
)
from obligations.uploads import check_and_hash

log = logging.getLogger(__name__)

# --- Actors ---------------------------------------------------------------


def get_system_user() -> User:
    """The named user that tasks and commands act as."""
    user, _ = User.objects.get_or_create(
        username=settings.SYSTEM_USERNAME,
        defaults={"is_active": False, "first_name": "OSA tracker", "last_name": "(system)"},
    )
    return user


def _event(
    *,
    actor: User,
    obligation: m.Obligation,
    kind: str,
    source: str,
    cycle: m.ObligationCycle | None = None,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    evidence: m.Evidence | None = None,
    due_date: dt.date | None = None,
) -> m.Event:
    return m.Event.objects.create(
        due_date=due_date,
        evidence=evidence,
        obligation=obligation,
        cycle=cycle,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        at=timezone.now(),
        reason=reason,
        source=source,
    )


# --- Catalogue ------------------------------------------------------------


@dataclass
class CatalogueDiff:
    version: str
    added: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)
    retired: list[str] = field(default_factory=list)
    vocabulary_changed: bool = False
    # Harm kinds and Codes measures: a regulatory change opens cycles on affected services.
    harms_added: list[str] = field(default_factory=list)
    measures_changed: list[str] = field(default_factory=list)
    codes_changed: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.added
            or self.changed
            or self.retired
            or self.vocabulary_changed
            or self.codes_changed
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "changed": self.changed,
            "retired": self.retired,
            "harms_added": self.harms_added,
            "measures_changed": self.measures_changed,
        }


DUTY_FIELDS = (
    "title",
    "section",
    "part",
    "instrument",
    "summary",
    "in_force_from",
    "commencement",
    "applies_from",
    "applies_note",
    "effective_from",
    "scope",
    "assessment_kind",
    "applies",
    "deadline",
    "evidence",
    "source_url",
    "verified",
    "unverified_note",
)


def _duty_values(entry: dict[str, Any]) -> dict[str, Any]:
    values = {name: entry.get(name) for name in DUTY_FIELDS}
    for name in ("in_force_from", "applies_from"):
        values[name] = dt.date.fromisoformat(entry[name]) if entry.get(name) else None
    values["applies_note"] = entry.get("applies_note") or ""
    values["effective_from"] = effective_from(entry)
    values["scope"] = entry.get("scope") or m.DutyScope.SERVICE
    values["assessment_kind"] = entry.get("assessment_kind") or ""
    values["evidence"] = entry.get("evidence") or ""
    values["verified"] = entry.get("verified", True)
    values["unverified_note"] = entry.get("unverified_note") or ""
    return values


def diff_catalogue(catalogue: Catalogue, *, allow_retire: bool = False) -> CatalogueDiff:
    """What loading `catalogue` would add, change and retire (reads only); CatalogueError,
    giving every reason, when the load would be refused (`check_catalogue_load`)."""
    diff = CatalogueDiff(version=catalogue.version)
    existing = {d.code: d for d in m.Duty.objects.all()}
    new_codes = set()
    for entry in catalogue.duties:
        new_codes.add(entry["code"])
        duty = existing.get(entry["code"])
        if duty is None:
            diff.added.append(entry["code"])
            continue
        values = _duty_values(entry)
        changed = [name for name in DUTY_FIELDS if getattr(duty, name) != values[name]]
        if duty.retired_at is not None:
            changed.append("retired_at")
        if changed:
            diff.changed[entry["code"]] = changed
    diff.retired = sorted(
        code for code, duty in existing.items() if code not in new_codes and duty.retired_at is None
    )
    vocab_now = (
        {
            f["code"]: (f["label"], f.get("description", ""), f.get("implies", []))
            for f in catalogue.features
        },
        {
            c["code"]: (c["label"], c["threshold"], c["likely_if"], c.get("supersedes", []))
            for c in catalogue.categories
        },
        {
            e["code"]: (e["label"], e["paragraph"], e.get("verified", True))
            for e in catalogue.exemptions
        },
    )
    vocab_db = (
        {
            f.code: (f.label, f.description, f.implies)
            for f in m.Feature.objects.filter(retired_at__isnull=True)
        },
        {
            c.code: (c.label, c.threshold, c.likely_if, c.supersedes)
            for c in m.RegisterCategory.objects.all()
        },
        {e.code: (e.label, e.paragraph, e.verified) for e in m.Exemption.objects.all()},
    )
    latest = selectors.latest_catalogue_version()
    rules_now = (catalogue.parameters, catalogue.notice_powers)
    rules_db = (latest.parameters, latest.notice_powers) if latest else None
    diff.vocabulary_changed = vocab_now != vocab_db or rules_now != rules_db
    _diff_codes(catalogue, diff)
    check_catalogue_load(catalogue, diff, latest=latest, allow_retire=allow_retire)
    return diff


# A load that would retire more than this share of the duties in force is refused unless the
# loader says it is meant (--allow-retire): a truncated or wrong file must not empty the register.
MAX_RETIRE_SHARE = 0.10


def _version_key(version: str) -> tuple[int, ...] | None:
    """A version's place in the order, number by number (2026.11.10 comes after 2026.11.9);
    None for a version loaded before the schema required numbers."""
    parts = version.split(".")
    return tuple(map(int, parts)) if all(p.isascii() and p.isdigit() for p in parts) else None


def check_catalogue_load(
    catalogue: Catalogue,
    diff: CatalogueDiff,
    *,
    latest: m.CatalogueVersion | None,
    allow_retire: bool,
) -> None:
    """Refuse (CatalogueError, every reason) a load that would go back or retire too much.

    A catalogue only goes forward: its version must come after the loaded one's, number by
    number, and its published date must not be earlier. A version string names one content:
    loading it again with other content (another sha256) is refused, the same file is a no-op.
    """
    problems = []
    same = m.CatalogueVersion.objects.filter(version=catalogue.version).first()
    if same is not None and same.sha256 != catalogue.sha256:
        problems.append(
            f"version: {catalogue.version} was loaded on "
            f"{display(timezone.localdate(same.loaded_at))} with other "
            f"content (sha256 {same.sha256[:12]}..., this file {catalogue.sha256[:12]}...): "
            f"give the changed catalogue a new version"
        )
    elif latest is not None and same is not None and same != latest:
        problems.append(
            f"version: {catalogue.version} is older than the loaded version {latest.version}: "
            f"a catalogue only goes forward"
        )
    elif latest is not None and same is None:
        new_key, latest_key = _version_key(catalogue.version), _version_key(latest.version)
        if new_key is not None and latest_key is not None and new_key <= latest_key:
            problems.append(
                f"version: {catalogue.version} does not come after the loaded version "
                f"{latest.version}: a catalogue only goes forward"
            )
        if catalogue.published < latest.published:
            problems.append(
                f"published: {catalogue.published} is before {latest.published}, when the "
                f"loaded version {latest.version} was published: a catalogue only goes forward"
            )
    in_force = m.Duty.objects.filter(retired_at__isnull=True).count()
    if not allow_retire and len(diff.retired) > MAX_RETIRE_SHARE * in_force:
        problems.append(
            f"duties: loading would retire {len(diff.retired)} of the {in_force} duties in force "
            f"(more than {MAX_RETIRE_SHARE:.0%}): {', '.join(diff.retired)}; if that is meant, "
            f"load with --allow-retire"
        )
    if problems:
        raise CatalogueError(problems)


@transaction.atomic
def load_catalogue(
    *, actor: User, catalogue: Catalogue, allow_retire: bool = False
) -> CatalogueDiff:
    """Load a catalogue version: idempotent; retires, never deletes; refused, with nothing
    written, when it would go back or retire too much (`check_catalogue_load`).

    After a change every service is re-applied, so new duties reach the register.
    """
    diff = diff_catalogue(catalogue, allow_retire=allow_retire)
    if diff.empty and m.CatalogueVersion.objects.filter(sha256=catalogue.sha256).exists():
        return diff
    now = timezone.now()
    version, _ = m.CatalogueVersion.objects.update_or_create(
        version=catalogue.version,
        defaults={
            "published": catalogue.published,
            "sha256": catalogue.sha256,
            "summary": diff.as_dict(),
            "loaded_at": now,
            "parameters": catalogue.parameters,
            "notice_powers": catalogue.notice_powers,
        },
    )
    for entry in catalogue.features:
        m.Feature.objects.update_or_create(
            code=entry["code"],
            defaults={
                "label": entry["label"],
                "description": entry.get("description", ""),
                "implies": entry.get("implies", []),
                "retired_at": None,
            },
        )
    m.Feature.objects.exclude(code__in=catalogue.feature_codes).filter(
        retired_at__isnull=True
    ).update(retired_at=now)
    for entry in catalogue.categories:
        m.RegisterCategory.objects.update_or_create(
            code=entry["code"],
            defaults={
                "label": entry["label"],
                "threshold": entry["threshold"],
                "likely_if": entry["likely_if"],
                "supersedes": entry.get("supersedes", []),
                "source": entry["source"],
                "source_url": entry["source_url"],
            },
        )
    for entry in catalogue.exemptions:
        m.Exemption.objects.update_or_create(
            code=entry["code"],
            defaults={
                "label": entry["label"],
                "paragraph": entry["paragraph"],
                "source_url": entry["source_url"],
                "verified": entry.get("verified", True),
                "unverified_note": entry.get("unverified_note", ""),
            },
        )
    touched = set(diff.added) | set(diff.changed)
    for entry in catalogue.duties:
        if entry["code"] in touched:
            m.Duty.objects.update_or_create(
                code=entry["code"],
                defaults={**_duty_values(entry), "catalogue_version": version, "retired_at": None},
            )
    m.Duty.objects.filter(code__in=diff.retired).update(retired_at=now)
    if diff.codes_changed:
        _load_codes(catalogue, version, diff, now)
    if touched or diff.retired or diff.vocabulary_changed:
        for service in m.Service.objects.order_by("pk"):
            apply_catalogue(actor=actor, service=service, source=m.EventSource.COMMAND)
    if diff.harms_added or diff.measures_changed:
        regulatory_change(actor=actor, diff=diff, catalogue=catalogue)
    return diff


# --- Applying the catalogue to a service ----------------------------------


@dataclass
class ApplyResult:
    created: list[str] = field(default_factory=list)
    reapplied: list[str] = field(default_factory=list)
    not_applicable: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _open_cycle(
    *,
    actor: User,
    obligation: m.Obligation,
    due: dt.date | None,
    trigger: str,
    source: str,
    note: str = "",
    period_start: dt.date | None = None,
) -> m.ObligationCycle:
    today = london_today()
    previous = obligation.current_cycle
    if period_start is None:
        period_start = today
        if previous is not None and previous.period_start >= today:
            # A cycle that opened and closed today already holds today's period.
            period_start = previous.period_start + dt.timedelta(days=1)
    cycle = m.ObligationCycle.objects.create(
        obligation=obligation,
        period_start=period_start,
        due_date=due,
        trigger=trigger,
        trigger_note=note,
        next_reminder_at=timezone.now(),
    )
    if previous is not None:
        # Only the current cycle is watched by the reminder sweep.
        m.ObligationCycle.objects.filter(pk=previous.pk).update(next_reminder_at=None)
    obligation.current_cycle = cycle
    obligation.status, obligation.due_date = cycle.status, cycle.due_date
    obligation.save(update_fields=["current_cycle", "status", "due_date", "updated_at"])
    _event(
        actor=actor,
        obligation=obligation,
        cycle=cycle,
        kind=m.EventKind.CYCLE_OPENED,
        to_status=cycle.status,
        source=source,
        reason=note or cycle.get_trigger_display(),
        due_date=due,
    )
    return cycle


def _create_obligation(
    *,
    actor: User,
    source: str,
    reason: str,
    fields: dict[str, Any],
    first_cycle: tuple[dt.date | None, str] | None,
    note: str = "",
) -> m.Obligation:
    """Create an obligation from `fields`, its CREATED event (with `reason`) and, given
    `first_cycle` as (due date, trigger), its first cycle. Fees pass None: they open one
    cycle per charging year themselves."""
    obligation = m.Obligation.objects.create(**fields)
    _event(
        actor=actor, obligation=obligation, kind=m.EventKind.CREATED, source=source, reason=reason
    )
    if first_cycle is not None:
        due, trigger = first_cycle
        _open_cycle(
            actor=actor, obligation=obligation, due=due, trigger=trigger, source=source, note=note
        )
    return obligation


def _close_cycle_not_applicable(
    *, actor: User, obligation: m.Obligation, reason: str, source: str
) -> None:
    cycle = obligation.current_cycle
    if cycle is None or cycle.is_closed:
        return
    # Conditional on the status we read, so a concurrent transition cannot be overwritten.
    if _update_cycle(
        cycle,
        only_if=cycle.status,
        status=m.CycleStatus.NOT_APPLICABLE,
        status_reason=reason,
        closed_at=timezone.now(),
        updated_at=timezone.now(),
        next_reminder_at=None,
    ):
        _event(
            actor=actor,
            obligation=obligation,
            cycle=cycle,
            kind=m.EventKind.STATUS,
            from_status=cycle.status,
            to_status=m.CycleStatus.NOT_APPLICABLE,
            reason=reason,
            source=source,
        )


def _mark_not_applicable(
    *, actor: User, obligation: m.Obligation, reason: str, source: str
) -> None:
    """The obligation stops applying: kept, with the reason, and its open cycle closed."""
    obligation.applicable = False
    obligation.not_applicable_reason = reason
    obligation.save(update_fields=["applicable", "not_applicable_reason", "updated_at"])
    _event(
        actor=actor,
        obligation=obligation,
        kind=m.EventKind.NOT_APPLICABLE,
        source=source,
        reason=reason,
    )
    _close_cycle_not_applicable(actor=actor, obligation=obligation, reason=reason, source=source)


def _mark_applicable_again(*, actor: User, obligation: m.Obligation, why: str, source: str) -> None:
    obligation.applicable, obligation.not_applicable_reason, obligation.why = True, "", why
    obligation.save(update_fields=["applicable", "not_applicable_reason", "why", "updated_at"])
    _event(
        actor=actor, obligation=obligation, kind=m.EventKind.REAPPLIED, source=source, reason=why
    )


@transaction.atomic
def apply_catalogue(
    *, actor: User, service: m.Service, source: str, changed_on: dt.date | None = None
) -> ApplyResult:
    """Bring the service's register in line with its profile. Idempotent; deletes nothing.

    Every duty the Act places on the service gets an obligation, in force or not; one not in
    force has no due date until it is (`apply_commencements`). `changed_on`: the day a change
    to the profile took effect, so that a duty it brings in starts to apply then (Sch.3
    paras 4-5), never on a date already past.
    """
    today = london_today()
    catalogue = selectors.loaded_catalogue()
    profile = selectors.service_profile(service)
    duties = {d["code"]: d for d in catalogue.duties}
    provider_wide = {code for code, d in duties.items() if d.get("scope") == m.DutyScope.PROVIDER}
    applicable = {
        a.code: a
        for a in applicable_duties(catalogue, profile, day=today, changed_on=changed_on)
        if a.code not in provider_wide
    }
    existing = {
        o.duty.code: o
        # Obligations an Ofcom notice created follow the notice, not the profile.
        for o in m.Obligation.objects.filter(
            service=service, technology_notice__isnull=True, ofcom_notice__isnull=True
        )
        .select_related("duty", "current_cycle")
        .select_for_update(of=("self",))
    }
    result = ApplyResult()
    for code, hit in applicable.items():
        obligation = existing.get(code)
        if obligation is None:
            obligation = _create_obligation(
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
                first_cycle=(hit.due, m.CycleTrigger.INITIAL),
            )
            result.created.append(code)
        elif not obligation.applicable:
            _mark_applicable_again(actor=actor, obligation=obligation, why=hit.why, source=source)
            _apply_again(actor=actor, obligation=obligation, duty=duties[code], source=source)
            result.reapplied.append(code)
        else:
            if obligation.why != hit.why:
                obligation.why = hit.why
                obligation.save(update_fields=["why", "updated_at"])
            if obligation.applies_since is None and hit.start is not None:
                _start_applying(actor=actor, obligation=obligation, hit=hit, source=source)
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
        _mark_not_applicable(actor=actor, obligation=obligation, reason=reason, source=source)
        result.not_applicable.append(code)
    # The provider-wide duties depend on which services the provider runs.
    apply_provider_duties(
        actor=actor, provider=service.provider, source=source, catalogue=catalogue
    )
    sync_open_assessments(actor=actor, service=service, source=source)
    return result


def _in_force(obligation: m.Obligation) -> bool:
    """Whether the obligation's duty is in force today (its duty row is loaded)."""
    effective = obligation.duty.effective_from
    return effective is not None and effective <= london_today()


def _apply_again(
    *, actor: User, obligation: m.Obligation, duty: dict[str, Any], source: str
) -> None:
    """A duty applies again after a spell of not applying: it starts again today (or when it
    comes into force), and a closed cycle is followed by a new one due from that day."""
    today = london_today()
    launch = obligation.service.launch_date if obligation.service else None
    start = start_day(duty, today, launch=launch)
    start = max(start, today) if start is not None else None
    obligation.applies_since = start
    obligation.applies_since_why = f"Applies again from {display(start)}." if start else ""
    obligation.save(update_fields=["applies_since", "applies_since_why", "updated_at"])
    if obligation.current_cycle is None or obligation.current_cycle.is_closed:
        _open_cycle(
            actor=actor,
            obligation=obligation,
            due=first_due(duty["deadline"], start),
            trigger=m.CycleTrigger.REAPPLIED,
            source=source,
        )


def _start_applying(*, actor: User, obligation: m.Obligation, hit: Applicable, source: str) -> None:
    """An obligation whose duty was not in force (or which predates the tracker keeping the
    day) starts to apply: it keeps the day and why, and its first cycle, if still open, is due
    as the duty's deadline rule says from that day, never earlier."""
    obligation.applies_since, obligation.applies_since_why = hit.start, hit.start_why
    obligation._history_user = actor  # type: ignore[attr-defined]
    obligation.save(update_fields=["applies_since", "applies_since_why", "updated_at"])
    cycle = obligation.current_cycle
    if (
        cycle is not None
        and not cycle.is_closed
        and cycle.trigger == m.CycleTrigger.INITIAL
        and hit.due is not None
        and (cycle.due_date is None or cycle.due_date < hit.due)
    ):
        set_due_date(actor=actor, cycle=cycle, due=hit.due, reason=hit.start_why, source=source)


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
        m.Service.objects.filter(
            obligations__applicable=True,
            obligations__applies_since__isnull=True,
            obligations__technology_notice__isnull=True,
            obligations__ofcom_notice__isnull=True,
            obligations__duty__effective_from__lte=london_today(),
        )
        .distinct()
        .order_by("pk")
    )
    started, skipped = [], []
    for service in waiting:
        try:
            apply_catalogue(actor=actor, service=service, source=m.EventSource.TASK)
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
def save_service(
    *,
    actor: User,
    service: m.Service,
    source: str,
    categories: Iterable[m.RegisterCategory] | None = None,
    features: Iterable[m.Feature] | None = None,
) -> ApplyResult:
    """Create or change a service's profile (None leaves a M2M field as it is), then bring
    its register in line with the profile: duties a change brings in start to apply today.

    Only what changed is written: a profile sent back as it is stored leaves no history row."""
    stored = m.Service.objects.filter(pk=service.pk).first() if service.pk else None
    service._history_user = actor  # type: ignore[attr-defined]
    service.full_clean(exclude=["categories", "features"], validate_unique=True)
    if stored is None or _profile_changed(stored, service):
        service.save()
    # set() writes (and simple-history records) only what differs.
    if categories is not None:
        service.categories.set(categories)
    if features is not None:
        service.features.set(features)
    changed_on = london_today() if stored is not None else None
    return apply_catalogue(actor=actor, service=service, source=source, changed_on=changed_on)


def _profile_changed(stored: m.Service, service: m.Service) -> bool:
    return any(
        getattr(stored, field.attname) != getattr(service, field.attname)
        for field in m.Service._meta.concrete_fields
        if field.name not in ("created_at", "updated_at")
    )


@transaction.atomic
def apply_provider_duties(
    *,
    actor: User,
    provider: m.Provider,
    source: str,
    catalogue: Catalogue | None = None,
) -> None:
    """Bring the provider-wide obligations (the fees duties) in line with its services and its
    revenue: one cycle per charging year, dated from that year's fees position."""
    catalogue = catalogue or selectors.loaded_catalogue()
    duties = [d for d in catalogue.duties if d.get("scope") == m.DutyScope.PROVIDER]
    if not duties:
        return
    m.Provider.objects.select_for_update().filter(pk=provider.pk).first()  # one writer at a time
    periods = selectors.provider_revenue(provider)
    notify, pay, years = penalties.fees_requirements(
        periods, london_today(), catalogue.parameters["fees"]
    )
    requirements = {"notify": notify, "pay": pay}
    profiles = [
        selectors.service_profile(s)
        for s in provider.services.order_by("name").prefetch_related("categories", "features")
    ]
    existing = {
        o.duty.code: o
        for o in m.Obligation.objects.filter(provider=provider, service__isnull=True)
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
            reason = f"The provider runs no service this applies to ({describe_rule(rule)})."
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


@transaction.atomic
def revenue_changed(*, actor: User, provider: m.Provider, source: str) -> None:
    """The provider's revenue or accounting facts changed: its fees obligations follow, and so
    does the check of any open penalty against the cap."""
    apply_provider_duties(actor=actor, provider=provider, source=source)
    penalised = m.OfcomNotice.objects.filter(
        service__provider=provider,
        closed_on__isnull=True,
        kind__in=(m.NoticeKind.CONFIRMATION, m.NoticeKind.PENALTY),
    ).select_related("service__provider")
    for notice in penalised:
        links, ended = _links_for(notice)
        _sync_notice_obligations(
            actor=actor, notice=notice, links=links, ended=ended, source=source
        )


def _sync_yearly_obligation(
    *,
    actor: User,
    provider: m.Provider,
    duty_pk: int,
    obligation: m.Obligation | None,
    due: list[penalties.FeesDue],
    services: list[str],
    not_applicable: str,
    source: str,
) -> None:
    """One cycle per charging year, oldest first: an open cycle follows its year's date; when it
    closes, the next year owed opens. A year no longer owed closes with the reason."""
    why = "; ".join(f"{d.label}: {d.why}" for d in due)
    if due:
        why += f" Services: {', '.join(services)}."
    if obligation is None:
        if not due:
            return
        obligation = _create_obligation(
            actor=actor,
            source=source,
            reason=why,
            fields={"provider": provider, "duty_id": duty_pk, "why": why},
            first_cycle=None,
        )
    elif not due:
        if obligation.applicable:
            _mark_not_applicable(
                actor=actor, obligation=obligation, reason=not_applicable, source=source
            )
        return
    elif not obligation.applicable:
        _mark_applicable_again(actor=actor, obligation=obligation, why=why, source=source)
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
        _close_cycle_not_applicable(
            actor=actor,
            obligation=obligation,
            reason="Not owed for that charging year any more: " + not_applicable,
            source=source,
        )
    for owed in due:
        if owed.starts not in cycles:
            obligation.refresh_from_db(fields=["current_cycle"])
            _open_cycle(
                actor=actor,
                obligation=obligation,
                due=owed.due,
                trigger=m.CycleTrigger.CHARGING_YEAR,
                source=source,
                note=f"Charging year {owed.label}: {owed.why}",
                period_start=owed.starts,
            )
            return


@transaction.atomic
def record_significant_change(
    *,
    actor: User,
    service: m.Service,
    description: str,
    planned_for: dt.date,
    source: str,
) -> m.SignificantChange:
    """Record a planned significant change; the assessments the Act requires before it fall due
    the day before.

    A closed cycle is left as it was and a new cycle opens; an open cycle is brought forward
    instead, so the team has one piece of work, not two.
    """
    check_plausible_dates(planned_for=planned_for)
    change = m.SignificantChange.objects.create(
        service=service,
        description=description,
        planned_for=planned_for,
        status=m.ChangeStatus.PLANNED,
        recorded_by=actor,
    )
    due = planned_for - dt.timedelta(days=1)
    note = f"Before the planned change on {display(planned_for)}: {description}"
    obligations = (
        m.Obligation.objects.filter(service=service, applicable=True)
        .select_related("duty", "current_cycle")
        .select_for_update(of=("self",))
    )
    for obligation in obligations:
        if not obligation.duty.deadline.get("before_significant_change"):
            continue
        if not _in_force(obligation) or due < (obligation.applies_since or due):
            continue  # the duty does not apply yet when the change is made
        cycle = obligation.current_cycle
        if cycle is None or cycle.is_closed:
            _open_cycle(
                actor=actor,
                obligation=obligation,
                due=due,
                trigger=m.CycleTrigger.SIGNIFICANT_CHANGE,
                source=source,
                note=note,
            )
        elif cycle.due_date is None or cycle.due_date > due:
            set_due_date(actor=actor, cycle=cycle, due=due, reason=note, source=source)
    return change


# --- Organisations and members --------------------------------------------


# Only the organisation's admins change its members; operators too, and the system user
# (commands such as load_demo). The checks are functions the admin's form asks first, so
# that a refusal is a message beside the row, and each write asks again under a lock.


def _is_system_user(user: User) -> bool:
    """The named account tasks and commands act as: it cannot sign in."""
    return not user.is_active and user.get_username() == settings.SYSTEM_USERNAME


def _check_manages_members(actor: User, organisation_id: int) -> None:
    if actor.is_superuser or _is_system_user(actor):
        return
    if (
        not selectors.active_memberships(actor, (m.Role.ADMIN,))
        .filter(organisation_id=organisation_id)
        .exists()
    ):
        raise PermissionDenied("Only the organisation's admins can change its members.")


def _lock_members(organisation_id: int) -> None:
    """One membership change of an organisation at a time: two admins ending each other's
    memberships at once must not leave it with none (PostgreSQL; SQLite writes one at a
    time anyway)."""
    list(m.Organisation.objects.select_for_update().filter(pk=organisation_id).values("pk"))


def check_new_member(
    *, organisation: m.Organisation, user: User, role: str, expires_at: dt.datetime | None
) -> None:
    """Refuse, under each field's name, what would make a wrong membership."""
    check_plausible_dates(expires_at=expires_at)
    _check_role(role)
    errors: dict[str, list[str]] = {}
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = ["Give a time in the future: access ends then."]
    if not user.is_active:
        errors["user"] = [f"{user} is deactivated."]
    elif (
        organisation.pk is not None  # a new organisation has no members yet
        and m.Membership.objects.filter(
            user=user, organisation=organisation, ended_at__isnull=True
        ).exists()
    ):
        errors["user"] = [
            f"{user} already has a membership of {organisation}: change its role, or end it "
            "(an expired one too) before adding them again."
        ]
    if errors:
        raise ValidationError(errors)


def _check_role(role: str) -> None:
    if role not in m.Role.values:
        raise ValidationError({"role": [f"Choose one of: {', '.join(m.Role.labels)}."]})


def check_keeps_an_admin(*, membership: m.Membership, also: Iterable[int] = ()) -> None:
    """Refuse to end or demote the organisation's last admin in force: nobody could manage
    its members any more (an operator would have to). `also`: the other memberships the same
    change ends or demotes (one form submitted with several rows)."""
    admins = set(
        m.Membership.objects.active()
        .filter(organisation_id=membership.organisation_id, role=m.Role.ADMIN)
        .values_list("pk", flat=True)
    )
    if admins and admins <= {membership.pk, *also}:
        raise ValidationError(
            f"{membership.user} is the last admin of {membership.organisation}: make someone "
            "else an admin first, or nobody could manage its members."
        )


def _open_role(membership: m.Membership) -> str:
    """The membership's role as the database has it now; refused once it has ended."""
    role = (
        m.Membership.objects.filter(pk=membership.pk, ended_at__isnull=True)
        .values_list("role", flat=True)
        .first()
    )
    if role is None:
        raise ValidationError(f"{membership.user}'s membership has already ended.")
    return role


def _membership_event(
    *,
    actor: User,
    membership: m.Membership,
    kind: str,
    from_role: str = "",
    to_role: str = "",
    at: dt.datetime | None = None,
) -> None:
    m.MembershipEvent.objects.create(
        membership=membership,
        organisation_id=membership.organisation_id,
        kind=kind,
        from_role=from_role,
        to_role=to_role,
        actor=actor,
        at=at or timezone.now(),
    )


@transaction.atomic
def add_member(
    *,
    actor: User,
    organisation: m.Organisation,
    user: User,
    role: str,
    expires_at: dt.datetime | None = None,
) -> m.Membership:
    """Give a user a role in an organisation: a new membership (an ended one of theirs stays
    on record as it was). Members use the admin, so they are staff."""
    _lock_members(organisation.pk)
    _check_manages_members(actor, organisation.pk)
    check_new_member(organisation=organisation, user=user, role=role, expires_at=expires_at)
    membership = m.Membership.objects.create(
        user=user, organisation=organisation, role=role, expires_at=expires_at
    )
    _membership_event(
        actor=actor, membership=membership, kind=m.MembershipChange.ADDED, to_role=role
    )
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return membership


@transaction.atomic
def change_role(*, actor: User, membership: m.Membership, role: str) -> m.Membership:
    """Give a member another role in the same organisation; the event keeps the old one."""
    _lock_members(membership.organisation_id)
    _check_manages_members(actor, membership.organisation_id)
    _check_role(role)
    current = _open_role(membership)
    if current == role:
        return membership
    if current == m.Role.ADMIN:
        check_keeps_an_admin(membership=membership)
    m.Membership.objects.filter(pk=membership.pk, ended_at__isnull=True, role=current).update(
        role=role
    )
    _membership_event(
        actor=actor,
        membership=membership,
        kind=m.MembershipChange.ROLE_CHANGED,
        from_role=current,
        to_role=role,
    )
    membership.role = role
    return membership


@transaction.atomic
def end_membership(*, actor: User, membership: m.Membership) -> m.Membership:
    """End a membership now: the person loses the organisation at once. The row is kept,
    with when and by whom; to come back, they are added again (a new membership)."""
    _lock_members(membership.organisation_id)
    _check_manages_members(actor, membership.organisation_id)
    role = _open_role(membership)
    if role == m.Role.ADMIN:
        check_keeps_an_admin(membership=membership)
    now = timezone.now()
    m.Membership.objects.filter(pk=membership.pk, ended_at__isnull=True).update(
        ended_at=now, ended_by=actor
    )
    _membership_event(
        actor=actor, membership=membership, kind=m.MembershipChange.ENDED, from_role=role, at=now
    )
    membership.ended_at, membership.ended_by = now, actor
    return membership


@transaction.atomic
def set_lead_days(
    *,
    actor: User,
    organisation: m.Organisation,
    lead_days: list[int],
    duty: m.Duty | None = None,
) -> None:
    """Change the organisation's lead times (or one duty's); its open cycles are rescheduled
    at the next sweep."""
    m.validate_lead_days(lead_days)
    if duty is None:
        m.Organisation.objects.filter(pk=organisation.pk).update(reminder_lead_days=lead_days)
    else:
        m.LeadTime.objects.update_or_create(
            organisation=organisation, duty=duty, defaults={"lead_days": lead_days}
        )
    reschedule_organisation(organisation)


def reschedule_organisation(organisation: m.Organisation) -> None:
    """Every watched cycle of the organisation is looked at again by the next sweep."""
    m.ObligationCycle.objects.filter(
        obligation__provider__organisation=organisation, next_reminder_at__isnull=False
    ).update(next_reminder_at=timezone.now())


# --- Working an obligation ------------------------------------------------


@transaction.atomic
def assign_owner(
    *,
    actor: User,
    obligation: m.Obligation,
    owner: User | None,
    source: str,
) -> None:
    if obligation.owner_id == (owner.pk if owner else None):
        return
    before = obligation.owner
    obligation.owner = owner  # type: ignore[assignment]
    obligation.save(update_fields=["owner", "updated_at"])
    cycle = obligation.current_cycle
    _watch(cycle)
    _event(
        actor=actor,
        obligation=obligation,
        cycle=cycle,
        kind=m.EventKind.OWNER_CHANGED,
        source=source,
        reason=f"Owner changed from {before or 'nobody'} to {owner or 'nobody'}.",
    )
    # A new owner during review could otherwise approve work they now own: back to in progress.
    if cycle is not None and _update_cycle(
        cycle,
        only_if=m.CycleStatus.READY_FOR_REVIEW,
        status=m.CycleStatus.IN_PROGRESS,
        updated_at=timezone.now(),
    ):
        _event(
            actor=actor,
            obligation=obligation,
            cycle=cycle,
            kind=m.EventKind.STATUS,
            from_status=m.CycleStatus.READY_FOR_REVIEW,
            to_status=m.CycleStatus.IN_PROGRESS,
            source=source,
            reason="The owner changed during review.",
        )


def due_date_refusal(obligation: m.Obligation, due: dt.date | None) -> str:
    """Why `due` cannot be the obligation's due date, in words ("" when it can): the one rule
    set_due_date and the import's planning both ask. A date must be one people type; a duty
    not yet in force has no due date; and none is due before the duty started to apply."""
    if due is None:
        return ""
    if not is_plausible(due):
        return f"Enter a date from {RANGE_TEXT}."
    effective = obligation.duty.effective_from
    if not in_force_on(effective, london_today()):
        expected = f" (expected from {display(effective)})" if effective else ""
        return f"The duty is not yet in force{expected}: it has no due date until it is."
    since = obligation.applies_since
    if since is not None and due < since:
        return (
            f"It cannot be due before the duty started to apply to it, on {display(since)}: "
            f"{obligation.applies_since_why}"
        )
    return ""


def _shown(day: dt.date | None) -> str:
    return display(day) if day else "none"


@transaction.atomic
def set_due_date(
    *,
    actor: User,
    cycle: m.ObligationCycle,
    due: dt.date | None,
    reason: str,
    source: str,
) -> None:
    """Move an open cycle's due date, saying why. A closed cycle keeps its dates."""
    if cycle.is_closed:
        raise ValueError("A closed cycle keeps its dates; open a new cycle instead.")
    refusal = due_date_refusal(cycle.obligation, due)
    if refusal:
        raise ValidationError({"due_date": [refusal]})
    if cycle.due_date == due:
        return
    old = cycle.due_date
    now = timezone.now()
    _update_cycle(cycle, due_date=due, updated_at=now, next_reminder_at=now)
    cycle.due_date = due
    _event(
        actor=actor,
        obligation=cycle.obligation,
        cycle=cycle,
        kind=m.EventKind.DUE_CHANGED,
        source=source,
        reason=f"Due date moved from {_shown(old)} to {_shown(due)}. {reason}",
        due_date=due,
    )


@transaction.atomic
def update_obligation_details(
    *,
    actor: User,
    obligation: m.Obligation,
    reason: str,
    source: str,
    notes: str | None = None,
    external_ref: str | None = None,
) -> None:
    """Change an obligation's notes and external reference; None leaves a field as it is.

    No event kind describes these fields, so the field history records who and why.
    """
    changed = []
    if notes is not None and notes != obligation.notes:
        obligation.notes = notes
        changed.append("notes")
    if external_ref is not None and external_ref != obligation.external_ref:
        obligation.external_ref = external_ref
        changed.append("external_ref")
    if not changed:
        return
    # The fields' own rules (length, one line), whoever calls: the admin's form is not the
    # only way in.
    obligation.clean_fields(
        exclude=[f.name for f in m.Obligation._meta.fields if f.name not in changed]
    )
    obligation._history_user = actor  # type: ignore[attr-defined]
    # The history's change reason holds 100 characters.
    obligation._change_reason = f"{reason} ({m.EventSource(source).label})"[:100]  # type: ignore[attr-defined]
    obligation.save(update_fields=[*changed, "updated_at"])


# --- The status workflow --------------------------------------------------

S = m.CycleStatus
# The one table of allowed transitions: target -> (the states it can come from, reason needed).
TRANSITIONS: dict[str, tuple[tuple[str, ...], bool]] = {
    S.IN_PROGRESS: ((S.NOT_STARTED, S.SENT_BACK), False),
    S.READY_FOR_REVIEW: ((S.IN_PROGRESS,), False),
    S.MET: ((S.READY_FOR_REVIEW,), False),
    S.SENT_BACK: ((S.READY_FOR_REVIEW,), True),
    S.NOT_APPLICABLE: (m.OPEN_STATUSES, True),
}


class TransitionError(ValueError):
    """A transition the workflow does not allow, with the reason in words."""


def current_evidence(cycle: m.ObligationCycle) -> QuerySet[m.Evidence]:
    """Evidence that counts: not purged, not superseded by a newer version, not expired."""
    return selectors.current_evidence_of(cycle, london_today())


def check_can_be_met(actor: User, cycle: m.ObligationCycle) -> None:
    """TransitionError saying why `actor` may not approve the cycle as it stands (four eyes,
    evidence, the assessment, the measures); the import asks it of the approver it names."""
    _check_four_eyes(actor, cycle)
    _check_assessment(actor, cycle)
    _check_measures(cycle)


def _check_four_eyes(actor: User, cycle: m.ObligationCycle) -> None:
    obligation = cycle.obligation
    evidence = current_evidence(cycle)
    if not evidence.exists():
        raise TransitionError("It cannot be met without at least one current evidence item.")
    if obligation.owner_id == actor.pk:
        raise TransitionError("Four eyes: the obligation's owner cannot approve it.")
    if cycle.submitted_by_id == actor.pk:
        raise TransitionError(
            "Four eyes: the person who submitted it for review cannot approve it."
        )
    if evidence.filter(uploaded_by=actor).exists():
        raise TransitionError("Four eyes: the uploader of its current evidence cannot approve it.")


def _transition(
    *, actor: User, cycle: m.ObligationCycle, to: str, reason: str, source: str
) -> m.ObligationCycle:
    if to not in TRANSITIONS:
        raise TransitionError(f"{to!r} is not a status an obligation can be moved to.")
    sources, needs_reason = TRANSITIONS[to]
    reason = (reason or "").strip()
    with transaction.atomic():
        cycle = m.ObligationCycle.objects.select_related("obligation").get(pk=cycle.pk)
        current = cycle.status
        label = m.CycleStatus(to).label
        if current not in sources:
            raise TransitionError(
                f"An obligation that is {m.CycleStatus(current).label.lower()} cannot be moved "
                f"to {label.lower()}."
            )
        if cycle.obligation.current_cycle_id != cycle.pk:
            raise TransitionError("Only the current cycle can change status.")
        if needs_reason and not reason:
            raise TransitionError(f"Moving to {label.lower()} needs a reason.")
        if to == S.MET:
            check_can_be_met(actor, cycle)
        now = timezone.now()
        changes: dict[str, Any] = {"status": to, "updated_at": now, "next_reminder_at": now}
        if to == S.READY_FOR_REVIEW:
            changes["submitted_by"] = actor
        if to == S.MET:
            changes["reviewer"] = actor
        if to in m.CLOSED_STATUSES:
            changes["closed_at"] = now
        if needs_reason:
            changes["status_reason"] = reason
        # Conditional on the status we read: of two people clicking at once, one wins.
        if not _update_cycle(cycle, only_if=current, **changes):
            raise TransitionError("Someone else changed this obligation first; reload it.")
        event = _event(
            actor=actor,
            obligation=cycle.obligation,
            cycle=cycle,
            kind=m.EventKind.STATUS,
            from_status=current,
            to_status=to,
            reason=reason,
            source=source,
        )
        if to == S.READY_FOR_REVIEW:
            _ask_for_review(actor=actor, cycle=cycle, event=event)
        if to == S.MET:
            m.RiskAssessment.objects.filter(cycle=cycle).update(approver=actor, approved_at=now)
    cycle.refresh_from_db()
    return cycle


def reviewers_for(obligation: m.Obligation, submitted_by: User) -> list[int]:
    """The colleagues who could approve: active members who may review, not the owner and
    not the submitter (four eyes)."""
    return list(
        selectors.active_memberships_of(obligation.provider.organisation_id)
        .filter(role__in=selectors.REVIEWER_ROLES, user__is_active=True)
        .exclude(user_id__in=[submitted_by.pk, obligation.owner_id or submitted_by.pk])
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )


def _ask_for_review(*, actor: User, cycle: m.ObligationCycle, event: m.Event) -> None:
    """Outbox rows in this transaction; the worker is asked to deliver once it commits. With
    the broker down the save still succeeds and the nightly sweep delivers them."""
    reminders.notify_review(
        cycle=cycle,
        submitted_by=actor,
        event=event,
        recipients=reviewers_for(cycle.obligation, actor),
    )
    transaction.on_commit(reminders.enqueue_delivery, robust=True)


def _watch(cycle: m.ObligationCycle | None) -> None:
    """Something about the cycle changed: the next reminder sweep works out its dates again."""
    if cycle is not None:
        m.ObligationCycle.objects.filter(pk=cycle.pk).update(next_reminder_at=timezone.now())


def _update_cycle(cycle: m.ObligationCycle, *, only_if: str | None = None, **changes: Any) -> bool:
    """Change a cycle (only while its status is still `only_if`, when given, so of two people
    acting at once one wins) and copy its new status or due date onto its obligation, which
    keeps them while the cycle is current. The caller holds the transaction."""
    cycles = m.ObligationCycle.objects.filter(pk=cycle.pk)
    if only_if is not None:
        cycles = cycles.filter(status=only_if)
    if not cycles.update(**changes):
        return False
    mirrored = {k: v for k, v in changes.items() if k in ("status", "due_date")}
    if mirrored:
        m.Obligation.objects.filter(current_cycle=cycle.pk).update(**mirrored)
    return True


@transaction.atomic
def open_next_cycle(
    *,
    actor: User,
    cycle: m.ObligationCycle,
    due: dt.date,
    trigger: str,
    note: str,
    source: str,
) -> m.ObligationCycle | None:
    """Open the cycle after a met one (a recurring review, or evidence that expired). A met
    cycle is never reopened; if it is no longer the current one, nothing happens."""
    obligation = (
        m.Obligation.objects.select_for_update(of=("self",))
        .select_related("current_cycle")
        .get(pk=cycle.obligation_id)
    )
    if obligation.current_cycle_id != cycle.pk or not obligation.applicable:
        return None
    return _open_cycle(
        actor=actor, obligation=obligation, due=due, trigger=trigger, source=source, note=note
    )


def do_start(
    *, actor: User, cycle: m.ObligationCycle, source: str, reason: str = ""
) -> m.ObligationCycle:
    return _transition(actor=actor, cycle=cycle, to=S.IN_PROGRESS, reason=reason, source=source)


def do_submit_for_review(
    *, actor: User, cycle: m.ObligationCycle, source: str, reason: str = ""
) -> m.ObligationCycle:
    return _transition(
        actor=actor, cycle=cycle, to=S.READY_FOR_REVIEW, reason=reason, source=source
    )


def do_approve(
    *, actor: User, cycle: m.ObligationCycle, source: str, reason: str = ""
) -> m.ObligationCycle:
    return _transition(actor=actor, cycle=cycle, to=S.MET, reason=reason, source=source)


def do_send_back(
    *, actor: User, cycle: m.ObligationCycle, source: str, reason: str
) -> m.ObligationCycle:
    return _transition(actor=actor, cycle=cycle, to=S.SENT_BACK, reason=reason, source=source)


def do_mark_not_applicable(
    *, actor: User, cycle: m.ObligationCycle, source: str, reason: str
) -> m.ObligationCycle:
    return _transition(actor=actor, cycle=cycle, to=S.NOT_APPLICABLE, reason=reason, source=source)


# For callers that name the target (API, import, bulk actions): the same functions.
DO_BY_TARGET = {
    S.IN_PROGRESS: do_start,
    S.READY_FOR_REVIEW: do_submit_for_review,
    S.MET: do_approve,
    S.SENT_BACK: do_send_back,
    S.NOT_APPLICABLE: do_mark_not_applicable,
}


def transition_to(
    *, actor: User, cycle: m.ObligationCycle, to: str, source: str, reason: str = ""
) -> m.ObligationCycle:
    action = DO_BY_TARGET.get(to)  # type: ignore[call-overload]
    if action is None:
        raise TransitionError(f"{to!r} is not a status an obligation can be moved to.")
    result: m.ObligationCycle = action(actor=actor, cycle=cycle, source=source, reason=reason)
    return result


# --- Evidence -------------------------------------------------------------


@transaction.atomic
def add_evidence_file(
    *,
    actor: User,
    cycle: m.ObligationCycle,
    uploaded: UploadedFile,
    title: str,
    source: str,
    expires_on: dt.date | None = None,
    supersedes: m.Evidence | None = None,
) -> m.Evidence:
    """Store a file as evidence; refused (EvidenceRefused) before anything is written."""
    check_plausible_dates(expires_on=expires_on)
    sha256, content_type, size = check_and_hash(uploaded)
    evidence = m.Evidence(
        cycle=cycle,
        kind=m.EvidenceKind.FILE,
        title=title or (uploaded.name or "file"),
        original_name=(uploaded.name or "")[:255],
        content_type=content_type,
        size=size,
        sha256=sha256,
        uploaded_by=actor,
        uploaded_at=timezone.now(),
        expires_on=expires_on,
        supersedes=supersedes,
    )
    evidence.file.save(uploaded.name or sha256, uploaded, save=False)
    try:
        evidence.save()
    except Exception:
        evidence.file.delete(save=False)
        raise
    _event(
        actor=actor,
        obligation=cycle.obligation,
        cycle=cycle,
        kind=m.EventKind.EVIDENCE_ADDED,
        source=source,
        evidence=evidence,
        reason=f"{evidence.title} (sha256 {sha256})",
    )
    _watch(cycle)
    return evidence


@transaction.atomic
def add_evidence_link(
    *,
    actor: User,
    cycle: m.ObligationCycle,
    url: str,
    title: str,
    source: str,
    expires_on: dt.date | None = None,
    supersedes: m.Evidence | None = None,
) -> m.Evidence:
    URLValidator(schemes=["http", "https"])(url)
    check_plausible_dates(expires_on=expires_on)
    evidence = m.Evidence.objects.create(
        cycle=cycle,
        kind=m.EvidenceKind.LINK,
        title=title or url,
        url=url,
        uploaded_by=actor,
        uploaded_at=timezone.now(),
        expires_on=expires_on,
        supersedes=supersedes,
    )
    _event(
        actor=actor,
        obligation=cycle.obligation,
        cycle=cycle,
        kind=m.EventKind.EVIDENCE_ADDED,
        source=source,
        evidence=evidence,
        reason=url,
    )
    _watch(cycle)
    return evidence


@transaction.atomic
def purge_evidence(*, actor: User, evidence: m.Evidence, reason: str, source: str) -> None:
    """Destroy the file (illegal material, retention limits); keep a tombstone."""
    reason = (reason or "").strip()
    if not reason:
        raise TransitionError("A purge needs a reason.")
    organisation_id = selectors.organisation_of(evidence.cycle)
    if (
        not selectors.active_memberships(actor, (m.Role.ADMIN,))
        .filter(organisation_id=organisation_id)
        .exists()
    ):
        raise TransitionError("Only an organisation admin can purge evidence.")
    if evidence.purged_at is not None:
        raise TransitionError("This evidence was already purged.")
    stored = evidence.file.name
    evidence.file = None  # type: ignore[assignment]
    evidence.purged_at, evidence.purged_by, evidence.purge_reason = timezone.now(), actor, reason
    evidence.save()
    _event(
        actor=actor,
        obligation=evidence.cycle.obligation,
        cycle=evidence.cycle,
        kind=m.EventKind.EVIDENCE_PURGED,
        source=source,
        evidence=evidence,
        reason=f"{reason} (sha256 {evidence.sha256} kept)",
    )
    _watch(evidence.cycle)
    if stored:
        storage = m.Evidence._meta.get_field("file").storage  # type: ignore[attr-defined]
        transaction.on_commit(lambda: storage.delete(stored))


# --- Ofcom notices --------------------------------------------------------

N = m.NoticeStage
# The one table of a Technology Notice's stages: target -> the stages it can come from.
NOTICE_STAGES: dict[str, tuple[str, ...]] = {
    N.WARNING: (N.SKILLED_PERSON_REPORT,),
    N.REPRESENTED: (N.WARNING,),
    N.CLOSED: (N.WARNING, N.REPRESENTED),
    N.GIVEN: (N.WARNING, N.REPRESENTED),
    N.IN_FORCE: (N.GIVEN,),
    N.EXPIRED: (N.IN_FORCE,),
    N.REVOKED: (N.GIVEN, N.IN_FORCE),
}
# What must be recorded on the notice before it can move to a stage.
STAGE_NEEDS: dict[str, tuple[str, ...]] = {
    N.WARNING: ("warning_given_on", "representations_due"),
    N.REPRESENTED: ("representations_submitted_on",),
    N.GIVEN: ("given_on", "compliance_by"),
}
ENDED_STAGES: dict[str, str] = {
    N.CLOSED: "closed without a notice",
    N.EXPIRED: "expired",
    N.REVOKED: "revoked",
}
# s.135: a children's access assessment required by a confirmation decision is due within
# 3 months of it (Ofcom may extend).
CAA_AFTER_CONFIRMATION_MONTHS = 3


AnyNotice = TypeVar("AnyNotice", m.TechnologyNotice, m.OfcomNotice)


class NoticeError(ValueError):
    """A stage change or a date the notice process does not allow, in words."""


def _technology_links(notice: m.TechnologyNotice) -> dict[str, dt.date | None]:
    """The obligations a Technology Notice creates at its stage: duty code -> due date."""
    links: dict[str, dt.date | None] = {}
    if notice.stage != N.SKILLED_PERSON_REPORT and notice.representations_due:
        links["TN-REPRESENTATIONS"] = notice.representations_due
    if notice.stage in (N.GIVEN, N.IN_FORCE, N.EXPIRED, N.REVOKED):
        links["TN-COMPLY"] = notice.compliance_by
        if notice.appeal_by:
            links["TN-APPEAL"] = notice.appeal_by
        if notice.report_by:
            links["TN-REPORT"] = notice.report_by
    return links


# The obligation each kind's response date creates.
RESPONSE_DUTY: dict[str, str] = {
    m.NoticeKind.INFORMATION: "INFO-RESPOND",
    m.NoticeKind.SKILLED_PERSON: "SPR-ASSIST",
    m.NoticeKind.TRANSPARENCY: "TR-SUBMIT",
    m.NoticeKind.PROVISIONAL: "PNC-REPRESENTATIONS",
    m.NoticeKind.PENALTY_PROPOSAL: "PENALTY-REPRESENTATIONS",
}


def _ofcom_links(notice: m.OfcomNotice) -> dict[str, dt.date | None]:
    kind, links = notice.kind, {}
    if kind in RESPONSE_DUTY:
        links[RESPONSE_DUTY[kind]] = notice.respond_by
    if kind == m.NoticeKind.TRANSPARENCY:
        links["TR-PUBLISH"] = notice.publish_by
    if kind == m.NoticeKind.CONFIRMATION:
        if notice.steps_required:
            links["CD-STEPS"] = notice.steps_by
        if notice.requires_caa:
            links["CD-CAA"] = notice.caa_by
    if kind in (m.NoticeKind.CONFIRMATION, m.NoticeKind.PENALTY) and (
        notice.single_penalty_gbp or notice.daily_penalty_gbp
    ):
        links["PENALTY-PAY"] = notice.pay_by
        if selectors.penalty_above_cap(notice):
            links["PENALTY-CAP-CHECK"] = notice.pay_by
    return links


def _sync_notice_obligations(
    *,
    actor: User,
    notice: m.TechnologyNotice | m.OfcomNotice,
    links: dict[str, dt.date | None],
    ended: str,
    source: str,
) -> None:
    """Bring the notice's obligations in line with it: create what is missing once, move open
    cycles with the notice's dates, and close them all (kept, with the reason) when it ends."""
    link_field = "technology_notice" if isinstance(notice, m.TechnologyNotice) else "ofcom_notice"
    existing = {
        o.duty.code: o
        for o in m.Obligation.objects.filter(**{link_field: notice})
        .select_related("duty", "current_cycle")
        .select_for_update(of=("self",))
    }
    duties = {d.code: d for d in m.Duty.objects.filter(code__in=set(links) - set(existing))}
    for code, due in links.items():
        obligation = existing.get(code)
        if obligation is None:
            if ended:
                continue
            why = f"Required by {notice}."
            obligation = _create_obligation(
                actor=actor,
                source=source,
                reason=why,
                fields={
                    "provider_id": notice.service.provider_id,
                    "service_id": notice.service_id,
                    "duty": duties[code],
                    "why": why,
                    link_field: notice,
                },
                first_cycle=(due, m.CycleTrigger.NOTICE),
                note=str(notice),
            )
            existing[code] = obligation
        elif obligation.current_cycle and not obligation.current_cycle.is_closed:
            set_due_date(
                actor=actor,
                cycle=obligation.current_cycle,
                due=due,
                reason=f"The date on {notice} changed.",
                source=source,
            )
    reason = f"{notice}: {ended}." if ended else ""
    for code, obligation in existing.items():
        if obligation.applicable and (ended or code not in links):
            _mark_not_applicable(
                actor=actor,
                obligation=obligation,
                reason=reason or f"{notice} no longer requires it.",
                source=source,
            )


def _notice_event(
    *,
    actor: User,
    notice: m.TechnologyNotice | m.OfcomNotice,
    kind: str,
    on: dt.date,
    source: str,
    note: str = "",
    changes: dict[str, Any] | None = None,
    from_stage: str = "",
    to_stage: str = "",
) -> m.NoticeEvent:
    link = "technology_notice" if isinstance(notice, m.TechnologyNotice) else "ofcom_notice"
    return m.NoticeEvent.objects.create(
        **{link: notice},
        kind=kind,
        on=on,
        note=note,
        changes=changes or {},
        from_stage=from_stage,
        to_stage=to_stage,
        actor=actor,
        at=timezone.now(),
        source=source,
    )


def _check_notice(notice: m.TechnologyNotice | m.OfcomNotice) -> None:
    """Constraints and the Act's limits as a ValidationError, never an IntegrityError."""
    notice.full_clean()


def _links_for(notice: m.TechnologyNotice | m.OfcomNotice) -> tuple[dict[str, Any], str]:
    if isinstance(notice, m.TechnologyNotice):
        return _technology_links(notice), ENDED_STAGES.get(notice.stage, "")
    ended = (
        f"closed on {display(notice.closed_on)} ({notice.closed_reason})"
        if notice.closed_on
        else ""
    )
    return _ofcom_links(notice), ended


@transaction.atomic
def record_notice(*, actor: User, notice: AnyNotice, source: str) -> AnyNotice:
    """Record a new notice (unsaved instance in, saved out) and create its obligations."""
    if isinstance(notice, m.OfcomNotice) and notice.requires_caa and notice.caa_by is None:
        notice.caa_by = add_months(notice.given_on, CAA_AFTER_CONFIRMATION_MONTHS)
    _check_notice(notice)
    notice.save()
    on = notice.given_on if isinstance(notice, m.OfcomNotice) else london_today()
    _notice_event(actor=actor, notice=notice, kind=m.NoticeEventKind.RECORDED, on=on, source=source)
    links, ended = _links_for(notice)
    _sync_notice_obligations(actor=actor, notice=notice, links=links, ended=ended, source=source)
    return notice


@transaction.atomic
def change_notice(
    *,
    actor: User,
    notice: m.TechnologyNotice | m.OfcomNotice,
    changes: dict[str, Any],
    source: str,
    kind: str = m.NoticeEventKind.DATES,
    on: dt.date | None = None,
    note: str = "",
) -> None:
    """Change a notice's dates or terms (a variation, review, further notice, appeal, or a
    correction), with one dated event; its open obligations move with the dates."""
    if "stage" in changes:
        raise NoticeError("The stage changes through move_technology_notice, not here.")
    model = type(notice)
    current = model.objects.select_for_update().get(pk=notice.pk)
    before = {name: getattr(current, name) for name in changes}
    for name, value in changes.items():
        setattr(current, name, value)
    if isinstance(current, m.OfcomNotice) and current.requires_caa and current.caa_by is None:
        current.caa_by = add_months(current.given_on, CAA_AFTER_CONFIRMATION_MONTHS)
    _check_notice(current)
    diff = {
        name: [str(before[name]) if before[name] is not None else None, str(value)]
        for name, value in changes.items()
        if before[name] != value
    }
    if not diff and kind == m.NoticeEventKind.DATES:
        return
    current.save()
    _notice_event(
        actor=actor,
        notice=current,
        kind=kind,
        on=on or london_today(),
        note=note,
        changes=diff,
        source=source,
    )
    links, ended = _links_for(current)
    _sync_notice_obligations(actor=actor, notice=current, links=links, ended=ended, source=source)
    notice.refresh_from_db()


@transaction.atomic
def move_technology_notice(
    *,
    actor: User,
    notice: m.TechnologyNotice,
    to: str,
    on: dt.date,
    source: str,
    reason: str = "",
) -> m.TechnologyNotice:
    """Move a Technology Notice to its next stage: a conditional update plus one event."""
    if to not in NOTICE_STAGES:
        raise NoticeError(f"{to!r} is not a stage a notice can be moved to.")
    current = m.TechnologyNotice.objects.get(pk=notice.pk)
    label = m.NoticeStage(to).label
    if current.stage not in NOTICE_STAGES[to]:
        raise NoticeError(f"A notice at '{current.get_stage_display()}' cannot move to '{label}'.")
    missing = [
        str(m.TechnologyNotice._meta.get_field(name).verbose_name)  # type: ignore[union-attr]
        for name in STAGE_NEEDS.get(to, ())
        if getattr(current, name) is None
    ]
    if missing:
        raise NoticeError(f"Record first: {', '.join(missing)}.")
    reason = (reason or "").strip()
    if to in ENDED_STAGES and not reason:
        raise NoticeError(f"Moving to '{label}' needs a reason.")
    changes: dict[str, Any] = {"stage": to, "updated_at": timezone.now()}
    if to in ENDED_STAGES:
        changes["closed_reason"] = reason
    # Conditional on the stage we read: of two people recording at once, one wins.
    if not m.TechnologyNotice.objects.filter(pk=current.pk, stage=current.stage).update(**changes):
        raise NoticeError("Someone else changed this notice first; reload it.")
    _notice_event(
        actor=actor,
        notice=current,
        kind=m.NoticeEventKind.STAGE,
        on=on,
        from_stage=current.stage,
        to_stage=to,
        note=reason,
        source=source,
    )
    current.refresh_from_db()
    links, ended = _links_for(current)
    _sync_notice_obligations(actor=actor, notice=current, links=links, ended=ended, source=source)
    return current


# --- Risk assessments and Ofcom's Codes measures ---------------------------

HARM_FIELDS = (
    "label",
    "family",
    "group",
    "assessments",
    "effective_from",
    "effective_until",
    "assess_by",
    "source",
    "source_url",
    "verified",
    "unverified_note",
)
FACTOR_FIELDS = (
    "label",
    "group",
    "assessments",
    "brought_in",
    "source_url",
    "verified",
    "unverified_note",
)
# What a measure asks and whom it is for: a change to these is a regulatory change.
MEASURE_SUBSTANCE = ("code_family", "summary", "recommended_for", "status", "effective_from")
MEASURE_FIELDS = (
    *MEASURE_SUBSTANCE,
    "issued_on",
    "area",
    "basis",
    "source_url",
    "verified",
    "unverified_note",
)
DATE_FIELDS = {"effective_from", "effective_until", "assess_by", "issued_on"}


def _values(entry: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    values = {}
    for name in names:
        value = entry.get(name)
        if name in DATE_FIELDS:
            value = dt.date.fromisoformat(value) if value else None
        elif name in ("verified",):
            value = entry.get(name, True)
        elif name in ("unverified_note", "source"):
            value = value or ""
        elif name == "brought_in":
            value = value or {}
        values[name] = value
    return values


def _measure_values(entry: dict[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    """A measure's row as the catalogue gives it; its in-force date follows from its issue."""
    values = _values(entry, MEASURE_FIELDS)
    params = catalogue.parameters["assessment"]
    values["effective_from"] = codes.in_force_from(values["issued_on"], params)
    return values


def _diff_codes(catalogue: Catalogue, diff: CatalogueDiff) -> None:
    """What the version adds or changes among harm kinds, risk factors and measures. Only a
    register that already had them sees a regulatory change (not the first load)."""
    harms = {h.code: h for h in m.HarmKind.objects.all()}
    factors = {f.code: f for f in m.RiskFactor.objects.all()}
    measures = {
        x.code: x for x in m.CodeMeasure.objects.prefetch_related("duties").order_by("code")
    }

    def differs(obj: Any, values: dict[str, Any]) -> bool:
        return obj.retired_at is not None or any(getattr(obj, k) != v for k, v in values.items())

    harm_changes = [
        h["code"]
        for h in catalogue.harm_kinds
        if h["code"] not in harms or differs(harms[h["code"]], _values(h, HARM_FIELDS))
    ]
    factor_changes = [
        f["code"]
        for f in catalogue.risk_factors
        if f["code"] not in factors or differs(factors[f["code"]], _values(f, FACTOR_FIELDS))
    ]
    measure_changes, substantive = [], []
    for entry in catalogue.measures:
        known = measures.get(entry["code"])
        values = _measure_values(entry, catalogue)
        duties = sorted(entry["duties"])
        if known is None:
            measure_changes.append(entry["code"])
            substantive.append(entry["code"])
            continue
        now_duties = sorted(d.code for d in known.duties.all())
        if differs(known, values) or now_duties != duties:
            measure_changes.append(entry["code"])
            if (
                known.retired_at is not None
                or now_duties != duties
                or any(getattr(known, k) != values[k] for k in MEASURE_SUBSTANCE)
            ):
                substantive.append(entry["code"])
    listed = (
        {h["code"] for h in catalogue.harm_kinds},
        {f["code"] for f in catalogue.risk_factors},
        {x["code"] for x in catalogue.measures},
    )
    retiring = (
        any(code not in listed[0] and h.retired_at is None for code, h in harms.items())
        or any(code not in listed[1] and f.retired_at is None for code, f in factors.items())
        or any(code not in listed[2] and x.retired_at is None for code, x in measures.items())
    )
    diff.codes_changed = bool(harm_changes or factor_changes or measure_changes or retiring)
    if harms:
        diff.harms_added = [code for code in harm_changes if code not in harms]
    if measures:
        diff.measures_changed = substantive


def _upsert(
    model: type[m.HarmKind] | type[m.RiskFactor],
    entries: list[dict[str, Any]],
    names: tuple[str, ...],
    version: m.CatalogueVersion,
    now: dt.datetime,
) -> None:
    """Bring a catalogue vocabulary's rows in line with the file: retire, never delete."""
    for entry in entries:
        model.objects.update_or_create(
            code=entry["code"],
            defaults={**_values(entry, names), "catalogue_version": version, "retired_at": None},
        )
    model.objects.exclude(code__in=[e["code"] for e in entries]).filter(
        retired_at__isnull=True
    ).update(retired_at=now)


def _load_codes(
    catalogue: Catalogue, version: m.CatalogueVersion, diff: CatalogueDiff, now: dt.datetime
) -> None:
    _upsert(m.HarmKind, catalogue.harm_kinds, HARM_FIELDS, version, now)
    _upsert(m.RiskFactor, catalogue.risk_factors, FACTOR_FIELDS, version, now)
    duties = {d.code: d for d in m.Duty.objects.all()}
    existing = {x.code: x for x in m.CodeMeasure.objects.all()}
    substantive = set(diff.measures_changed) | {
        x["code"] for x in catalogue.measures if x["code"] not in existing
    }
    for entry in catalogue.measures:
        values = {
            **_measure_values(entry, catalogue),
            "catalogue_version": version,
            "retired_at": None,
        }
        if entry["code"] in substantive:
            values["changed_in"] = version
        measure, _ = m.CodeMeasure.objects.update_or_create(code=entry["code"], defaults=values)
        measure.duties.set([duties[code] for code in entry["duties"]])
    m.CodeMeasure.objects.exclude(code__in=[x["code"] for x in catalogue.measures]).filter(
        retired_at__isnull=True
    ).update(retired_at=now)


def _regulatory_cycle(
    *, actor: User, obligation: m.Obligation, due: dt.date, note: str, source: str
) -> None:
    """Bring the work forward for a regulatory change: an open cycle is brought forward (and
    its assessment gains what is new); a closed one is followed by a new cycle. A duty not in
    force yet has nothing to bring forward."""
    if not _in_force(obligation):
        return
    due = max(due, obligation.applies_since or due)
    cycle = obligation.current_cycle
    if cycle is None or cycle.is_closed:
        _open_cycle(
            actor=actor,
            obligation=obligation,
            due=due,
            trigger=m.CycleTrigger.REGULATORY_CHANGE,
            source=source,
            note=note,
        )
        return
    if cycle.due_date is None or cycle.due_date > due:
        set_due_date(actor=actor, cycle=cycle, due=due, reason=note, source=source)
    else:
        _event(
            actor=actor,
            obligation=obligation,
            cycle=cycle,
            kind=m.EventKind.DUE_CHANGED,
            source=source,
            reason=f"Due date kept at {cycle.due_date}, already before {due}. {note}",
            due_date=cycle.due_date,
        )
    assessment = m.RiskAssessment.objects.filter(cycle=cycle).first()
    if assessment is not None:
        _sync_entries(assessment)
        _sync_factors(actor=actor, assessment=assessment, source=source)


@transaction.atomic
def regulatory_change(*, actor: User, diff: CatalogueDiff, catalogue: Catalogue) -> list[str]:
    """Open (or bring forward) the cycles a regulatory change needs, on exactly the affected
    services, saying why: a new harm kind needs the assessments that rate it; a new or changed
    measure needs a decision on the duties it serves."""
    params = catalogue.parameters["assessment"]
    today = london_today()
    default_due = today + dt.timedelta(days=int(params["regulatory_change_days"]))
    source = m.EventSource.COMMAND
    touched: list[str] = []
    for harm in m.HarmKind.objects.filter(code__in=diff.harms_added):
        due = max(harm.assess_by or default_due, harm.effective_from)
        cite = harm.source or harm.source_url
        note = (
            f"Catalogue {catalogue.version} adds the harm kind “{harm.label}” ({cite}): "
            f"assess it by {display(due)}."
        )
        affected = m.Obligation.objects.filter(
            applicable=True,
            service__isnull=False,
            duty__assessment_kind__in=harm.assessments,
        ).select_related("current_cycle", "service", "duty")
        for obligation in affected.select_for_update(of=("self",)):
            _regulatory_cycle(actor=actor, obligation=obligation, due=due, note=note, source=source)
            touched.append(f"{obligation.service}: {obligation.duty.code}")
    measures = m.CodeMeasure.objects.filter(code__in=diff.measures_changed).prefetch_related(
        "duties"
    )
    for service in m.Service.objects.order_by("pk"):
        recommended = {
            r.code for r in selectors.recommended_measures(service, today) if r.recommended
        }
        for measure in measures:
            if measure.code not in recommended:
                continue
            due = max(default_due, measure.effective_from or default_due)
            note = (
                f"Catalogue {catalogue.version} adds or changes Ofcom's measure {measure.code} "
                f"({measure.summary}): decide it for this service by {display(due)}."
            )
            for obligation in m.Obligation.objects.filter(
                service=service, applicable=True, duty__in=measure.duties.all()
            ).select_related("current_cycle", "duty"):
                _regulatory_cycle(
                    actor=actor, obligation=obligation, due=due, note=note, source=source
                )
                touched.append(f"{service}: {obligation.duty.code} ({measure.code})")
    return touched


class AssessmentError(ValueError):
    """A risk assessment step the rules do not allow, in words."""


def _sync_entries(assessment: m.RiskAssessment) -> int:
    """Give the assessment a row for every harm kind (and age group) it must rate that it
    lacks; rated rows are never touched. Returns how many were added."""
    params = selectors.catalogue_parameters()["assessment"]
    ages = (
        [a["code"] for a in params["age_groups"]]
        if params["kinds"][assessment.kind]["by_age_group"]
        else [""]
    )
    harms = selectors.harm_kinds_for(assessment.kind, on=assessment.started_on)
    have = set(assessment.entries.values_list("harm_kind_id", "age_group"))
    missing = [
        m.AssessmentEntry(assessment=assessment, harm_kind=harm, age_group=age)
        for harm in harms
        for age in ages
        if (harm.pk, age) not in have
    ]
    m.AssessmentEntry.objects.bulk_create(missing)
    return len(missing)


def _sync_factors(*, actor: User, assessment: m.RiskAssessment, source: str) -> None:
    """Pre-select on each row the risk factors the service's features bring to it (the
    catalogue's `brought_in` rules), saying so on the record; never removes one."""
    rules = selectors.factor_rules(assessment)
    added: dict[str, list[str]] = {}
    entries = assessment.entries.select_related("harm_kind").prefetch_related("risk_factors")
    for entry in entries:
        have = set(entry.risk_factors.all())
        missing = [f for f, _ in rules.brought(entry.harm_kind.code) if f not in have]
        if missing:
            entry._history_user = actor  # type: ignore[attr-defined]
            entry.risk_factors.add(*missing)
            for factor in missing:
                added.setdefault(factor.label, []).append(selectors.entry_label(entry))
    for label, rows in added.items():
        _event(
            actor=actor,
            obligation=assessment.cycle.obligation,
            cycle=assessment.cycle,
            kind=m.EventKind.ASSESSMENT,
            source=source,
            reason=f"Risk factor “{label}” selected on {'; '.join(rows)}: the service's "
            "features bring it (catalogue rule).",
        )


@transaction.atomic
def sync_open_assessments(*, actor: User, service: m.Service, source: str) -> None:
    """After a profile change: each open risk assessment of the service gains the risk
    factors its features now bring (a record already approved is left as it was)."""
    assessments = m.RiskAssessment.objects.filter(service=service).select_related(
        "cycle__obligation"
    )
    for assessment in assessments:
        if not assessment.cycle.is_closed:
            _sync_factors(actor=actor, assessment=assessment, source=source)


@transaction.atomic
def start_assessment(*, actor: User, cycle: m.ObligationCycle, source: str) -> m.RiskAssessment:
    """Start the risk assessment a cycle of a risk assessment duty needs, with a row for
    every harm kind in force today (and each age group, for children)."""
    cycle = m.ObligationCycle.objects.select_related("obligation__duty", "obligation__service").get(
        pk=cycle.pk
    )
    obligation = cycle.obligation
    kind = obligation.duty.assessment_kind
    if not kind or obligation.service is None:
        raise AssessmentError(f"{obligation.duty.code} is not a risk assessment duty.")
    if cycle.is_closed:
        raise AssessmentError("This cycle is closed: a new assessment belongs to a new cycle.")
    if m.RiskAssessment.objects.filter(cycle=cycle).exists():
        raise AssessmentError("This cycle already has its risk assessment.")
    assessment = m.RiskAssessment.objects.create(
        service=obligation.service,
        kind=kind,
        cycle=cycle,
        assessor=actor,
        started_on=london_today(),
    )
    added = _sync_entries(assessment)
    _event(
        actor=actor,
        obligation=obligation,
        cycle=cycle,
        kind=m.EventKind.ASSESSMENT,
        source=source,
        reason=f"Risk assessment started: {added} rows to rate.",
    )
    _sync_factors(actor=actor, assessment=assessment, source=source)
    _watch(cycle)
    return assessment


def _editable(assessment: m.RiskAssessment) -> None:
    if assessment.cycle.is_closed:
        raise AssessmentError(
            "The cycle this assessment evidences is closed: the assessment is a record now."
        )


@transaction.atomic
def rate_entry(
    *,
    actor: User,
    entry: m.AssessmentEntry,
    likelihood: str,
    impact: str,
    rationale: str,
    risk_factors: Iterable[m.RiskFactor] = (),
    evidence: Iterable[m.Evidence] = (),
    evidence_notes: str = "",
    private_channels: str = "",
) -> m.AssessmentEntry:
    """Rate one harm kind: its level comes from the catalogue's likelihood-by-impact matrix.
    A row the catalogue's risk factor rules reach keeps the factors the service's features
    bring, and says how the risk in private and encrypted channels was assessed."""
    entry = m.AssessmentEntry.objects.select_related(
        "assessment__cycle", "assessment__service", "harm_kind"
    ).get(pk=entry.pk)
    assessment = entry.assessment
    _editable(assessment)
    params = selectors.catalogue_parameters()["assessment"]
    if likelihood not in params["likelihood"]:
        raise AssessmentError(f"Likelihood must be one of {', '.join(params['likelihood'])}.")
    if impact not in params["impact"]:
        raise AssessmentError(f"Impact must be one of {', '.join(params['impact'])}.")
    evidence = list(evidence)
    foreign = [e for e in evidence if selectors.service_of_evidence(e) != assessment.service_id]
    if foreign:
        raise AssessmentError("Evidence must be this service's own.")
    risk_factors = list(risk_factors)
    private_channels = (private_channels or "").strip()
    problem = selectors.factor_rules(assessment).problem(
        entry.harm_kind.code, [f.code for f in risk_factors], private_channels
    )
    if problem:
        raise AssessmentError(f"{selectors.entry_label(entry)}: {problem}")
    entry.likelihood, entry.impact = likelihood, impact
    entry.level = codes.level_for(likelihood, impact, params)
    entry.rationale = (rationale or "").strip()
    entry.private_channels = private_channels
    entry.evidence_notes = (evidence_notes or "").strip()
    entry.updated_by, entry.updated_at = actor, timezone.now()
    entry._history_user = actor  # type: ignore[attr-defined]
    entry.save()
    entry.risk_factors.set(risk_factors)
    entry.evidence.set(evidence)
    return entry


@transaction.atomic
def update_assessment_notes(
    *, actor: User, assessment: m.RiskAssessment, understand: str, review: str
) -> None:
    _editable(assessment)
    assessment.understand_notes, assessment.review_notes = understand, review
    assessment._history_user = actor  # type: ignore[attr-defined]
    assessment.save(update_fields=["understand_notes", "review_notes", "updated_at"])


def _check_assessment(actor: User, cycle: m.ObligationCycle) -> None:
    """A risk assessment duty's cycle is met only on a complete assessment, approved by
    someone other than its assessor."""
    if not cycle.obligation.duty.assessment_kind:
        return
    assessment = m.RiskAssessment.objects.filter(cycle=cycle).first()
    if assessment is None:
        raise TransitionError("It cannot be met without its risk assessment: start it first.")
    missing = selectors.unrated_entries(assessment)
    if missing:
        shown = "; ".join(missing[:12]) + (
            f"; and {len(missing) - 12} more" if len(missing) > 12 else ""
        )
        raise TransitionError(
            f"The risk assessment is incomplete: every harm kind needs a level and a rationale. "
            f"Missing: {shown}."
        )
    gaps = selectors.private_channel_gaps(assessment)
    if gaps:
        raise TransitionError(
            "The risk assessment does not yet cover private and end-to-end encrypted channels "
            f"where the catalogue requires it: {'; '.join(gaps)}."
        )
    if assessment.assessor_id == actor.pk:
        raise TransitionError("Four eyes: the assessor cannot approve their own risk assessment.")


def _check_measures(cycle: m.ObligationCycle) -> None:
    """A duty that Codes measures serve is met only once every recommended measure has a
    current decision."""
    obligation = cycle.obligation
    if obligation.service is None:
        return
    undecided = selectors.undecided_measures(obligation.service, obligation.duty)
    if undecided:
        raise TransitionError(
            "It cannot be met while a recommended Codes measure has no decision: "
            f"{', '.join(undecided)}. Record each in the service's measures register."
        )


@transaction.atomic
def decide_measure(
    *,
    actor: User,
    service: m.Service,
    measure: m.CodeMeasure,
    decision: str,
    detail: str,
    evidence: Iterable[m.Evidence] = (),
) -> m.MeasureDecision:
    """Record the decision on a measure; a change keeps the earlier one in the history."""
    if decision not in m.MeasureDecisionKind.values:
        raise AssessmentError(
            f"{decision!r} is not a decision (adopted, alternative, not applicable)."
        )
    detail = (detail or "").strip()
    evidence = list(evidence)
    if decision == m.MeasureDecisionKind.ADOPTED and not evidence:
        raise AssessmentError("An adopted measure needs evidence: choose at least one item.")
    if decision == m.MeasureDecisionKind.ALTERNATIVE and not detail:
        raise AssessmentError(
            "An alternative measure needs how it meets the duty (recorded as s.23(4) requires)."
        )
    if decision == m.MeasureDecisionKind.NOT_APPLICABLE and not detail:
        raise AssessmentError("Not applicable needs the reason.")
    if any(selectors.service_of_evidence(e) != service.pk for e in evidence):
        raise AssessmentError("Evidence must be this service's own.")
    if not detail:
        detail = "Adopted as the Code describes; see the evidence."
    existing = (
        m.MeasureDecision.objects.select_for_update()
        .filter(service=service, measure=measure)
        .first()
    )
    record = existing or m.MeasureDecision(service=service, measure=measure)
    record.decision, record.detail = decision, detail
    record.decided_by, record.decided_at = actor, timezone.now()
    record.decided_against_id = measure.changed_in_id
    record._history_user = actor  # type: ignore[attr-defined]
    record.save()
    record.evidence.set(evidence)
    # The duties this measure serves may now be met: their cycles are looked at again.
    for cycle in m.ObligationCycle.objects.filter(
        obligation__service=service,
        obligation__duty__in=measure.duties.all(),
        obligation__current_cycle=F("pk"),
    ):
        _watch(cycle)
    return record


# --- Calendar feeds -------------------------------------------------------


def secret_hash(secret: str) -> str:
    """What is stored instead of an API key or a feed's secret: a copy of the database opens
    nothing. A fast hash is enough for a random 256-bit secret nobody chose."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_calendar_feed(
    *, actor: User, user: User, service: m.Service | None = None
) -> tuple[m.CalendarFeed, str]:
    """A new secret calendar address for the user's own deadlines, or for one service's.

    Returns the feed and its secret; the secret is not stored, so this is the only time
    anyone can see it.
    """
    if actor.pk != user.pk:
        raise PermissionDenied("A calendar feed can only be made by the person who will use it.")
    if (
        service is not None
        and not selectors.scope(m.Service.objects.filter(pk=service.pk), user).exists()
    ):
        raise PermissionDenied(
            f"{user} is not a member of the organisation that runs {service}, "
            "so cannot have a calendar feed of its deadlines."
        )
    secret = secrets.token_urlsafe(32)
    feed = m.CalendarFeed.objects.create(
        user=user, service=service, secret_hash=secret_hash(secret)
    )
    return feed, secret


@transaction.atomic
def revoke_calendar_feed(*, actor: User, feed: m.CalendarFeed) -> bool:
    """End a feed's address for good; True if this call revoked it (False: it already was).

    The owner or an operator may revoke; the admin log records who did.
    """
    if actor.pk != feed.user_id and not actor.is_superuser:
        raise PermissionDenied("Only the feed's owner or an operator can revoke it.")
    return _revoke(actor=actor, obj=feed, message="Revoked the calendar feed.")


def _revoke(*, actor: User, obj: m.CalendarFeed | m.ApiToken, message: str) -> bool:
    """Set revoked_at once. Conditional, so two revocations at once keep the first time and
    the admin log records who revoked it, once."""
    now = timezone.now()
    if not type(obj).objects.filter(pk=obj.pk, revoked_at__isnull=True).update(revoked_at=now):
        return False
    obj.revoked_at = now
    LogEntry.objects.log_actions(actor.pk, [obj], CHANGE, message)
    return True


# --- API tokens -------------------------------------------------------------


def create_api_token(
    *,
    actor: User,
    name: str,
    read_only: bool = True,
    expires_at: dt.datetime | None = None,
) -> tuple[m.ApiToken, str]:
    """A new key for the actor, who holds it; the key itself is returned once, never stored.

    There is no way to make a token for someone else, not for an organisation admin, not for
    an operator: whoever held another's key would act in their name (approving their own
    submission as the other, four eyes defeated), and the events would name someone who did
    not act.
    """
    key = "osa_" + secrets.token_urlsafe(32)
    token = m.ApiToken.objects.create(
        user=actor,
        name=name,
        prefix=key[:8],
        key_hash=secret_hash(key),
        read_only=read_only,
        expires_at=expires_at,
        created_by=actor,
    )
    return token, key


@transaction.atomic
def revoke_api_token(*, actor: User, token: m.ApiToken) -> bool:
    """Revoking is final: the key stops working at once. True if this call revoked it.

    The holder, an admin of an organisation the holder is a member of, or an operator."""
    if not selectors.overseen_token_holders(actor).filter(pk=token.user_id).exists():
        raise PermissionDenied(
            "Only the token's holder, an admin of one of their organisations, or an operator "
            "can revoke it."
        )
    return _revoke(actor=actor, obj=token, message="Revoked the API token.")


# --- Dashboard counts -----------------------------------------------------------


def fill_compliance_counts(days: list[dt.date]) -> None:
    """Write ComplianceCount rows for the past days that have none yet, from the events (one
    query for all of them). Idempotent and safe to run twice at once: a past day's counts
    never change, and the unique constraints keep the first writer's rows."""
    today = london_today()
    filled = set(m.ComplianceFill.objects.filter(day__in=days).values_list("day", flat=True))
    missing = sorted(d for d in days if d not in filled and d < today)
    if not missing:
        return
    counts = selectors.states_at(missing, m.Obligation.objects.all(), by_service=True)
    with transaction.atomic():
        rows = []
        for (provider, service, day), (met, total) in counts.items():
            if total and provider is not None:
                rows.append(
                    m.ComplianceCount(
                        provider_id=provider, service_id=service, day=day, met=met, applicable=total
                    )
                )
        m.ComplianceCount.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
        m.ComplianceFill.objects.bulk_create(
            [m.ComplianceFill(day=day) for day in missing], ignore_conflicts=True
        )


# --- Access log and sign-in throttling --------------------------------------------


class TooManyFailures(PermissionDenied):
    """Sign-in or token attempts refused for a while after too many failures."""


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address: REMOTE_ADDR, or behind TRUSTED_PROXIES reverse proxies the address
    the outermost of ours saw (the last hops of X-Forwarded-For; earlier ones can be forged)."""
    address = request.META.get("REMOTE_ADDR", "")
    if settings.TRUSTED_PROXIES:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= settings.TRUSTED_PROXIES:
            address = hops[-settings.TRUSTED_PROXIES]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def record_access(
    *,
    user: Any,
    action: str,
    request: HttpRequest | None,
    organisation_ids: Iterable[int] | None = None,
    description: str = "",
    username: str = "",
) -> None:
    """Append one access log row, or one per organisation the access concerned, so that each
    organisation's admins see exactly the rows about their own data."""
    person = user if user is not None and user.is_authenticated else None
    common = {
        "at": timezone.now(),
        "action": action,
        "user": person,
        "username": (username or (person.get_username() if person else ""))[:150],
        "description": description[:500],
        "ip_address": client_ip(request) if request is not None else None,
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:500] if request else "",
    }
    ids: list[int | None] = [*(organisation_ids or [])] or [None]
    m.AccessLog.objects.bulk_create([m.AccessLog(organisation_id=pk, **common) for pk in ids])


def _recent(action: str, request: HttpRequest) -> QuerySet[m.AccessLog]:
    since = timezone.now() - dt.timedelta(minutes=settings.SIGN_IN_LOCKOUT_MINUTES)
    return m.AccessLog.objects.filter(action=action, ip_address=client_ip(request), at__gte=since)


def check_sign_in_allowed(*, username: str, request: HttpRequest) -> None:
    """Refuse a sign-in attempt (before the password is checked) after too many failures for
    this name from this address, or from this address for any names (password spraying).
    Counted from the access log, so every web process sees the same count."""
    counts = _recent(m.AccessAction.SIGN_IN_FAILED, request).aggregate(
        address=Count("pk"), name=Count("pk", filter=Q(username=username))
    )
    if (
        counts["name"] >= settings.SIGN_IN_FAILURES_PER_NAME
        or counts["address"] >= settings.SIGN_IN_FAILURES_PER_ADDRESS
    ):
        record_access(
            user=None, action=m.AccessAction.SIGN_IN_THROTTLED, request=request, username=username
        )
        raise TooManyFailures(
            "Too many failed sign-ins from this address. Sign-in is paused for "
            f"{settings.SIGN_IN_LOCKOUT_MINUTES} minutes; then try again, or ask an "
            "administrator to reset your password."
        )


def check_token_attempt_allowed(*, request: HttpRequest) -> None:
    """Refuse API calls from an address that recently sent too many unknown or revoked keys."""
    if (
        _recent(m.AccessAction.TOKEN_FAILED, request).count()
        >= settings.SIGN_IN_FAILURES_PER_ADDRESS
    ):
        raise TooManyFailures(
            "Too many refused API keys from this address; try again in "
            f"{settings.SIGN_IN_LOCKOUT_MINUTES} minutes."
        )
