"""Run the reminder sweep now: what the daily Celery task does, from the command line."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from obligations.dates import london_today
from obligations.management.options import iso_date
from obligations.reminders.delivery import DeliveryFailed
from obligations.reminders.outbox import SweepIncomplete
from obligations.reminders.sweep import run_sweep


class Command(BaseCommand):
    help = (
        "Send today's reminder digests and escalations, roll recurring reviews forward. "
        "Safe to run twice: a second run for the same date sends nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--date", help="Run as of this day (YYYY-MM-DD, Europe/London); default today."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be sent; write nothing."
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        today = iso_date(options["date"]) if options["date"] else london_today()
        incomplete = None
        try:
            result = run_sweep(today=today, dry_run=options["dry_run"])
        except DeliveryFailed as exc:
            raise CommandError(f"{exc} They stay pending; the next run sends them.") from None
        except SweepIncomplete as exc:
            incomplete, result = exc, exc.result  # the rest was done: reported, then the error
        if options["json"]:
            self.stdout.write(json.dumps(result.as_json()))
        else:
            self.stdout.write(result.summary())
        if incomplete:
            raise CommandError(str(incomplete))
