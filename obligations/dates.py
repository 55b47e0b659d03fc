"""Dates people type: the one range the register accepts.

A due date or expiry of 9999-12-31 is no one's real deadline, and date arithmetic on it
(`+ 1 day`) overflows: one such row once stopped every organisation's reminders. Every
user-entered date (forms, API, import, commands) is checked against this one range, and the
two dates the reminder sweep computes with are held to it by database constraints too.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

from django.core.exceptions import ValidationError
from django.utils import timezone


def london_today() -> dt.date:
    """Deadlines are calendar dates in Europe/London: today is London's today."""
    return timezone.localdate()


def display(day: dt.date) -> str:
    """The one way a date is shown to people: 17 Mar 2025."""
    return f"{day:%-d %b %Y}"


def display_moment(moment: dt.datetime) -> str:
    """A moment as people read it, in London: 17 Mar 2025 14:05."""
    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    return f"{display(local.date())} {local:%H:%M}"


# People in the UK type 17/03/2025; a link or a bookmark may carry 2025-03-17. Nothing else
# (not 03/17/2025, not 17-03-25): a day that could be read two ways is refused, not guessed.
_UK_DAY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_ISO_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
DAY_INPUT = "DD/MM/YYYY"


def parse_day(text: str, *, uk: bool = True) -> dt.date:
    """A day typed as DD/MM/YYYY (or YYYY-MM-DD, as links carry it); ValueError saying how
    to write it otherwise. `uk=False` (programs: the API) takes YYYY-MM-DD alone, because
    a program written elsewhere may send 01/02/2026 meaning 2 January."""
    text = text.strip()
    form = DAY_INPUT if uk else "YYYY-MM-DD"
    if uk and (match := _UK_DAY.fullmatch(text)):
        day, month, year = (int(part) for part in match.groups())
    elif match := _ISO_DAY.fullmatch(text):
        year, month, day = (int(part) for part in match.groups())
    else:
        raise ValueError(f"{text[:40]!r} is not a date: use {form}.")
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"{text!r} is not a date: use {form}.") from None


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later (or earlier), or the month's last day where it has none."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def period_end(start: dt.date, months: int) -> dt.date:
    """The last day of "the period of `months` months beginning with" `start`, as UK statutes
    count it: `start` is the period's first day, so the period ends the day before the
    corresponding date `months` later; where that month has no corresponding date (31 Aug + 3
    months: there is no 31 Nov), it ends on that month's last day. 1 Jan -> 31 Mar,
    31 Aug 2025 -> 30 Nov 2025, 30 Nov 2027 -> 29 Feb 2028.

    Only for periods the law says begin *with* a day (e.g. Schedule 3's "three months
    beginning with"); a calendar-month recurrence uses add_months."""
    if months < 1:
        raise ValueError("a period runs for at least one month")
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    if start.day > last:
        return dt.date(year, month, last)
    return dt.date(year, month, start.day) - dt.timedelta(days=1)


EARLIEST = dt.date(1990, 1, 1)
LATEST = dt.date(2100, 12, 31)
RANGE_TEXT = f"{display(EARLIEST)} to {display(LATEST)}"


def is_plausible(value: dt.date | dt.datetime | None) -> bool:
    if value is None:
        return True
    day = value.date() if isinstance(value, dt.datetime) else value
    return EARLIEST <= day <= LATEST


def validate_plausible_date(value: dt.date | dt.datetime | None) -> None:
    """A field validator (models, forms and serializers run it): the date is in range."""
    if not is_plausible(value):
        raise ValidationError(
            "Enter a date from %(range)s.",
            code="date_out_of_range",
            params={"range": RANGE_TEXT},
        )


def check_plausible_dates(**named: dt.date | dt.datetime | None) -> None:
    """For writes called with dates that no form checked (import, commands, tasks): every
    date out of range is refused at once, each under its own field name."""
    errors = {
        name: [f"Enter a date from {RANGE_TEXT}."]
        for name, value in named.items()
        if not is_plausible(value)
    }
    if errors:
        raise ValidationError(errors)


def end_of_day(day: dt.date) -> dt.datetime:
    """The first instant after `day` in Europe/London (deadlines are London dates)."""
    return timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min))


def month_ends(day: dt.date, months: int) -> list[dt.date]:
    """The last day of each of the `months` months up to and including `day`'s month (the
    current month ends on `day`), oldest first."""
    ends = [day]
    first = day.replace(day=1)
    for _ in range(months - 1):
        end = first - dt.timedelta(days=1)
        ends.append(end)
        first = end.replace(day=1)
    return ends[::-1]
