"""When a duty is in force, and when it first falls due for a service: pure functions.

A duty's commencement is catalogue data: the day its provision came into force (null: not
commenced, or not known to be), the instrument that commenced it, and, where the duty bites
later than that, `applies_from` (s.51: from the first code of practice relating to it; null
while that has not happened). Whether a duty is in force on a day follows from these alone.

A duty starts to apply to a service on the latest of: the day it is in force, the day the
service comes into scope (its UK launch), and the day the service's profile came to meet the
duty's rule; for the children's duties, the day the service is treated as likely to be
accessed by children (s.37(3): the access assessment concluded so; s.37(4)-(5): none was
done by its due date) stands for that change. It is never due before that day. Schedule 3
gives a first assessment the three months beginning with it (paras 2-5: "after_start"); a
fixed date (Ofcom's, for the services already in scope when its guidance or code came)
stands where it is later.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from obligations.dates import display, period_end

IN_FORCE, EXPECTED, AWAITING, NOT_COMMENCED, UNKNOWN = (
    "in_force",
    "expected",
    "awaiting",
    "not_commenced",
    "unknown",
)


def in_force_on(effective: dt.date | None, day: dt.date) -> bool:
    """Whether a duty that bites from `effective` (None: not yet) is in force on `day`; the
    register's lists read `effective` as a column (Duty.effective_from) and filter with
    `in_force_q`, the same rule as a query."""
    return effective is not None and effective <= day


def in_force_q(day: dt.date, prefix: str = "") -> Q:
    """`in_force_on` as a query: the duties (reached through `prefix`, e.g. "duty__") in force
    on `day`. Its negation (~ or exclude) keeps the duties with no effective day, as SQL's
    NULL <= day is not true: they are not in force. The admin's and the API's filters, the
    dashboard and the nightly commencement run all ask it this way."""
    return Q(**{f"{prefix}effective_from__lte": day})


def in_force_known(
    effective: dt.date | None, day: dt.date, *, in_force_from: dt.date | None, verified: bool
) -> bool | None:
    """`in_force_on`, or None where it is not known: an unverified duty with no in-force day
    (what `InForce.value` says, from a duty's columns rather than its catalogue entry)."""
    if in_force_on(effective, day):
        return True
    return None if not verified and in_force_from is None else False


def _as_date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def effective_from(duty: Mapping[str, Any]) -> dt.date | None:
    """The day the duty bites: its applies_from where it has one (null: not yet), else the
    day its provision came into force."""
    return _as_date(duty["applies_from"] if "applies_from" in duty else duty.get("in_force_from"))


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text.endswith(".") else f"{text}."


def commenced_text(duty: Mapping[str, Any]) -> str:
    """The provision's own commencement, in words: its date and the instrument, e.g. "10 Jan
    2024 (SI 2023/1420 reg 2(c))"; empty when it has no commencement date."""
    commenced = _as_date(duty.get("in_force_from"))
    if commenced is None:
        return ""
    instrument = (duty.get("commencement") or {}).get("instrument") or ""
    return f"{display(commenced)} ({instrument})" if instrument else display(commenced)


def applies_later(duty: Mapping[str, Any]) -> bool:
    """Whether the duty bites on a day other than its provision's commencement (s.51: from the
    first code relating to it), so both must be cited."""
    return "applies_from" in duty and _as_date(duty["applies_from"]) != _as_date(
        duty.get("in_force_from")
    )


@dataclass(frozen=True)
class InForce:
    """Whether a duty is in force on a day, and why, in words."""

    state: str
    since: dt.date | None  # the day it is, or will be, in force
    text: str

    @property
    def value(self) -> bool | None:
        """True, False, or None when it is not known whether the provision was commenced."""
        if self.state == IN_FORCE:
            return True
        return None if self.state == UNKNOWN else False


def in_force(duty: Mapping[str, Any], day: dt.date) -> InForce:
    """Whether the duty is in force on `day`, citing the instrument that commenced it and its
    date, and, where the duty applies from a later day, that day and why (applies_note)."""
    commenced = duty.get("commencement") or {}
    instrument = commenced.get("instrument") or ""
    effective = effective_from(duty)
    section = commenced_text(duty)
    note = _sentence(duty.get("applies_note") or "")
    if applies_later(duty) and section:
        provision = f"Its provision has been in force since {section}."
        if not in_force_on(_as_date(duty.get("in_force_from")), day):
            provision = f"Its provision comes into force on {section}."
        if effective is not None and in_force_on(effective, day):
            text = f"In force since {section}; applies from {display(effective)}: {note}"
            return InForce(IN_FORCE, effective, text.strip())
        if effective is not None:
            text = f"Not yet in force: applies from {display(effective)}: {note} {provision}"
            return InForce(EXPECTED, effective, text)
        return InForce(AWAITING, None, f"Not yet in force: {note} {provision}".replace("  ", " "))
    if effective is not None and in_force_on(effective, day):
        cite = f" ({instrument})" if instrument else ""
        return InForce(IN_FORCE, effective, f"In force since {display(effective)}{cite}.")
    if effective is not None:
        cite = f" ({instrument})" if instrument else ""
        return InForce(EXPECTED, effective, f"Not yet in force: from {display(effective)}{cite}.")
    if duty.get("in_force_from"):
        return InForce(AWAITING, None, f"Not yet in force: {note}".strip())
    note = commenced.get("note", "")
    if duty.get("verified", True):
        return InForce(NOT_COMMENCED, None, f"Not in force: not commenced. {note}".strip())
    return InForce(UNKNOWN, None, f"Not known to be in force. {note}".strip())


@dataclass(frozen=True)
class ChildrenLikely:
    """The day a service is treated as likely to be accessed by children (s.37), and why."""

    since: dt.date
    why: str


def children_likely_from(
    likely: bool | None, assessed_on: dt.date | None, access_assessment_due: dt.date | None
) -> ChildrenLikely | None:
    """From when the service is treated as likely to be accessed by children, where the
    profile says: from the day its children's access assessment concluded so (s.37(3)); with
    no assessment, from the day the first one was due (s.37(4)-(5)). None where the profile
    does not say (no date recorded, or not likely)."""
    if likely is True and assessed_on is not None:
        return ChildrenLikely(
            assessed_on,
            "the children's access assessment concluded that day that children are likely to "
            "access the service (s.37(3))",
        )
    if likely is None and access_assessment_due is not None:
        return ChildrenLikely(
            access_assessment_due,
            "no children's access assessment was done by its due date, that day, so the service "
            "is treated as likely to be accessed by children from then (s.37(4)-(5))",
        )
    return None


def start_day(
    duty: Mapping[str, Any],
    day: dt.date,
    *,
    launch: dt.date | None,
    changed_on: dt.date | None = None,
    children: ChildrenLikely | None = None,
) -> dt.date | None:
    """The day the duty starts (or started) to apply to a service, or None while it is not in
    force on `day`: the latest of its in-force day, the service's launch and the profile
    change that brought it in. For a children's duty, `children` (s.37) stands for the
    change: the Act dates it from the assessment, not from when the register heard of it."""
    effective = effective_from(duty)
    if effective is None or not in_force_on(effective, day):
        return None
    latest = children.since if children is not None else changed_on
    return max(d for d in (effective, launch, latest) if d is not None)


def start_reason(
    duty: Mapping[str, Any],
    start: dt.date,
    *,
    launch: dt.date | None,
    changed_on: dt.date | None = None,
    children: ChildrenLikely | None = None,
) -> str:
    """Why the duty applies from `start`, in words (the obligation keeps it)."""
    when = display(start)
    if children is not None and start == children.since:
        return f"Applies from {when}: {children.why}."
    if children is None and changed_on is not None and start == changed_on:
        return f"Applies from {when}: the service's profile changed that day."
    if launch is not None and start == launch:
        return f"Applies from {when}: the day the service is first in scope (its UK launch)."
    if applies_later(duty) and commenced_text(duty):
        note = _sentence(duty.get("applies_note") or "")
        return (
            f"Applies from {when}: {note} Its provision has been in force since "
            f"{commenced_text(duty)}."
        ).replace("  ", " ")
    instrument = (duty.get("commencement") or {}).get("instrument") or "the Act"
    return f"Applies from {when}, when the duty came into force ({instrument})."


def first_due(deadline: Mapping[str, Any], start: dt.date | None) -> dt.date | None:
    """The first cycle's due date for a duty that started to apply on `start`; None for a duty
    with no date, or not in force."""
    if start is None or deadline["kind"] != "fixed":
        return None
    after = deadline.get("after_start")
    if "date" not in deadline:  # only a period from the start day (schema: after_start)
        return period_end(start, deadline["after_start"]["months"])
    due = dt.date.fromisoformat(deadline["date"])
    if after is None:
        return max(due, start)
    return max(due, period_end(start, after["months"]))
