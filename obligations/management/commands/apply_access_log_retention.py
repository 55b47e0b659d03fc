"""Set the database's access-log retention from ACCESS_LOG_RETENTION_DAYS: run as the tables'
owner (`bin/tracker migrate` does, after the migrations), since only the owner may replace
the function the purge obeys. Nothing to do on SQLite, which keeps no trigger."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from obligations.migrations._retention import floor_function_sql


class Command(BaseCommand):
    help = "Set the access log's retention in the database (as the tables' owner)."

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            return
        days = settings.ACCESS_LOG_RETENTION_DAYS
        try:
            with connection.cursor() as cursor:
                cursor.execute(floor_function_sql(days))
        except DatabaseError as exc:
            raise CommandError(
                "Only the tables' owner sets the retention: run this with the owner's "
                f"DATABASE_URL, as `bin/tracker migrate` does ({exc})"
            ) from None
        kept = f"{days} days" if days else "for ever"
        if options["verbosity"]:
            self.stdout.write(f"Access log kept {kept}.")
