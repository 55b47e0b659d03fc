"""Command-line options the commands share."""

import datetime as dt

from django.core.management.base import CommandError

from obligations.dates import RANGE_TEXT, is_plausible


def iso_date(value: str) -> dt.date:
    """A --date option: YYYY-MM-DD, within the register's range of dates."""
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date must be a YYYY-MM-DD date, not {value!r}") from None
    if not is_plausible(day):
        raise CommandError(f"--date must be a date from {RANGE_TEXT}, not {value}")
    return day
