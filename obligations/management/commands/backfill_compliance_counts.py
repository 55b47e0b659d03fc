"""Store the dashboard trend's month-end counts now: what the nightly task does, for as many
months back as asked (after an upgrade, or to fill history the nightly task never saw)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from obligations.dashboard.actions import TREND_MONTHS, fill_trend_counts
from obligations.dates import EARLIEST, display, london_today, month_ends
from obligations.management.options import iso_date

MAX_MONTHS = 1200


class Command(BaseCommand):
    help = (
        "Store the met and applicable counts of each past month end, from the events, for the "
        "dashboard's trend. Safe to run twice: a month end already stored is left as it is."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--date", help="The last day to count up to (YYYY-MM-DD, Europe/London); default today."
        )
        parser.add_argument(
            "--months",
            default=str(TREND_MONTHS),
            help=f"How many months back, this one included; default {TREND_MONTHS}.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        today = iso_date(options["date"]) if options["date"] else london_today()
        try:
            months = int(options["months"])
        except ValueError:
            raise CommandError(
                f"--months must be a whole number, not {options['months']!r}"
            ) from None
        if not 1 <= months <= MAX_MONTHS:
            raise CommandError(f"--months must be from 1 to {MAX_MONTHS}, not {months}")
        if month_ends(today, months)[0] < EARLIEST:
            raise CommandError(
                f"--months {months} reaches back before {display(EARLIEST)}, "
                "the register's earliest date"
            )
        filled = fill_trend_counts(today=today, months=months)
        if filled:
            span = (
                display(filled[0])
                if len(filled) == 1
                else (f"{display(filled[0])} to {display(filled[-1])}")
            )
            self.stdout.write(f"Stored the counts of {len(filled)} month ends: {span}.")
        else:
            self.stdout.write("Nothing to store: every past month end asked for is stored.")
