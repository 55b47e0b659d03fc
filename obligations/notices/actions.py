"""Writes to Ofcom's notices: record, change, move a Technology Notice through its stages,
and keep the obligations each notice creates in step."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from obligations.catalogue.models import Duty
from obligations.dates import add_months, display, london_today
from obligations.notices.models import (
    NoticeEvent,
    NoticeEventKind,
    NoticeKind,
    NoticeStage,
    OfcomNotice,
    TechnologyNotice,
)
from obligations.notices.stages import ENDED_STAGES, NOTICE_STAGES, STAGE_NEEDS
from obligations.providers.selectors import penalty_above_cap
from obligations.register.actions import set_due_date
from obligations.register.cycles import create_obligation, mark_not_applicable
from obligations.register.models import Obligation
from obligations.register.states import CycleTrigger

# s.135: a children's access assessment required by a confirmation decision is due within
# 3 months of it (Ofcom may extend).
CAA_AFTER_CONFIRMATION_MONTHS = 3


AnyNotice = TypeVar("AnyNotice", TechnologyNotice, OfcomNotice)


class NoticeError(ValueError):
    """A stage change or a date the notice process does not allow, in words."""


def _technology_links(notice: TechnologyNotice) -> dict[str, dt.date | None]:
    """The obligations a Technology Notice creates at its stage: duty code -> due date."""
    links: dict[str, dt.date | None] = {}
    if notice.stage != NoticeStage.SKILLED_PERSON_REPORT and notice.representations_due:
        links["TN-REPRESENTATIONS"] = notice.representations_due
    if notice.stage in (
        NoticeStage.GIVEN,
        NoticeStage.IN_FORCE,
        NoticeStage.EXPIRED,
        NoticeStage.REVOKED,
    ):
        links["TN-COMPLY"] = notice.compliance_by
        if notice.appeal_by:
            links["TN-APPEAL"] = notice.appeal_by
        if notice.report_by:
            links["TN-REPORT"] = notice.report_by
    return links


# The obligation each kind's response date creates.
RESPONSE_DUTY: dict[str, str] = {
    NoticeKind.INFORMATION: "INFO-RESPOND",
    NoticeKind.SKILLED_PERSON: "SPR-ASSIST",
    NoticeKind.TRANSPARENCY: "TR-SUBMIT",
    NoticeKind.PROVISIONAL: "PNC-REPRESENTATIONS",
    NoticeKind.PENALTY_PROPOSAL: "PENALTY-REPRESENTATIONS",
}


def _ofcom_links(notice: OfcomNotice) -> dict[str, dt.date | None]:
    kind, links = notice.kind, {}
    if kind in RESPONSE_DUTY:
        links[RESPONSE_DUTY[kind]] = notice.respond_by
    if kind == NoticeKind.TRANSPARENCY:
        links["TR-PUBLISH"] = notice.publish_by
    if kind == NoticeKind.CONFIRMATION:
        if notice.steps_required:
            links["CD-STEPS"] = notice.steps_by
        if notice.requires_caa:
            links["CD-CAA"] = notice.caa_by
    if kind in (NoticeKind.CONFIRMATION, NoticeKind.PENALTY) and (
        notice.single_penalty_gbp or notice.daily_penalty_gbp
    ):
        links["PENALTY-PAY"] = notice.pay_by
        if penalty_above_cap(notice):
            links["PENALTY-CAP-CHECK"] = notice.pay_by
    return links


def sync_notice_obligations(
    *,
    actor: User,
    notice: TechnologyNotice | OfcomNotice,
    links: dict[str, dt.date | None],
    ended: str,
    source: str,
) -> None:
    """Bring the notice's obligations in line with it: create what is missing once, move open
    cycles with the notice's dates, and close them all (kept, with the reason) when it ends."""
    link_field = "technology_notice" if isinstance(notice, TechnologyNotice) else "ofcom_notice"
    existing = {
        o.duty.code: o
        for o in Obligation.objects.filter(**{link_field: notice})
        .select_related("duty", "current_cycle")
        .select_for_update(of=("self",))
    }
    duties = {d.code: d for d in Duty.objects.filter(code__in=set(links) - set(existing))}
    for code, due in links.items():
        obligation = existing.get(code)
        if obligation is None:
            if ended:
                continue
            why = f"Required by {notice}."
            obligation = create_obligation(
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
                first_cycle=(due, CycleTrigger.NOTICE),
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
            mark_not_applicable(
                actor=actor,
                obligation=obligation,
                reason=reason or f"{notice} no longer requires it.",
                source=source,
            )


def _notice_event(
    *,
    actor: User,
    notice: TechnologyNotice | OfcomNotice,
    kind: str,
    on: dt.date,
    source: str,
    note: str = "",
    changes: dict[str, Any] | None = None,
    from_stage: str = "",
    to_stage: str = "",
) -> NoticeEvent:
    link = "technology_notice" if isinstance(notice, TechnologyNotice) else "ofcom_notice"
    return NoticeEvent.objects.create(
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


def _check_notice(notice: TechnologyNotice | OfcomNotice) -> None:
    """Constraints and the Act's limits as a ValidationError, never an IntegrityError."""
    notice.full_clean()


def links_for(notice: TechnologyNotice | OfcomNotice) -> tuple[dict[str, Any], str]:
    if isinstance(notice, TechnologyNotice):
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
    if isinstance(notice, OfcomNotice) and notice.requires_caa and notice.caa_by is None:
        notice.caa_by = add_months(notice.given_on, CAA_AFTER_CONFIRMATION_MONTHS)
    _check_notice(notice)
    notice.save()
    on = notice.given_on if isinstance(notice, OfcomNotice) else london_today()
    _notice_event(actor=actor, notice=notice, kind=NoticeEventKind.RECORDED, on=on, source=source)
    links, ended = links_for(notice)
    sync_notice_obligations(actor=actor, notice=notice, links=links, ended=ended, source=source)
    return notice


@transaction.atomic
def change_notice(
    *,
    actor: User,
    notice: TechnologyNotice | OfcomNotice,
    changes: dict[str, Any],
    source: str,
    kind: str = NoticeEventKind.DATES,
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
    if isinstance(current, OfcomNotice) and current.requires_caa and current.caa_by is None:
        current.caa_by = add_months(current.given_on, CAA_AFTER_CONFIRMATION_MONTHS)
    _check_notice(current)
    diff = {
        name: [str(before[name]) if before[name] is not None else None, str(value)]
        for name, value in changes.items()
        if before[name] != value
    }
    if not diff and kind == NoticeEventKind.DATES:
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
    links, ended = links_for(current)
    sync_notice_obligations(actor=actor, notice=current, links=links, ended=ended, source=source)
    notice.refresh_from_db()


@transaction.atomic
def move_technology_notice(
    *,
    actor: User,
    notice: TechnologyNotice,
    to: str,
    on: dt.date,
    source: str,
    reason: str = "",
) -> TechnologyNotice:
    """Move a Technology Notice to its next stage: a conditional update plus one event."""
    if to not in NOTICE_STAGES:
        raise NoticeError(f"{to!r} is not a stage a notice can be moved to.")
    current = TechnologyNotice.objects.get(pk=notice.pk)
    label = NoticeStage(to).label
    if current.stage not in NOTICE_STAGES[to]:
        raise NoticeError(f"A notice at '{current.get_stage_display()}' cannot move to '{label}'.")
    missing = [
        str(TechnologyNotice._meta.get_field(name).verbose_name)  # type: ignore[union-attr]
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
    if not TechnologyNotice.objects.filter(pk=current.pk, stage=current.stage).update(**changes):
        raise NoticeError("Someone else changed this notice first; reload it.")
    _notice_event(
        actor=actor,
        notice=current,
        kind=NoticeEventKind.STAGE,
        on=on,
        from_stage=current.stage,
        to_stage=to,
        note=reason,
        source=source,
    )
    current.refresh_from_db()
    links, ended = links_for(current)
    sync_notice_obligations(actor=actor, notice=current, links=links, ended=ended, source=source)
    return current
