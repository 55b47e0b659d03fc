"""Import an existing register from a spreadsheet (CSV or XLSX), acting as the system user."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from obligations.access.models import Organisation
from obligations.access.users import get_system_user
from obligations.register.import_files import ImportFileError, read_table
from obligations.register.importer import run_import


class Command(BaseCommand):
    help = (
        "Import an existing register from a CSV or XLSX file. Rows are matched to obligations "
        "by service and duty code and keyed by their external reference, so a re-import "
        "changes nothing. Nothing is written if any row is refused, unless --import-good-rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file", help="The .csv (UTF-8) or .xlsx file; its first row names the columns."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Check the file and report; write nothing."
        )
        parser.add_argument(
            "--import-good-rows",
            action="store_true",
            help="Write the rows that pass even if others are refused.",
        )
        parser.add_argument(
            "--organisation",
            help="Name or id of the organisation; needed when there is more than one.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        organisation = self._organisation(options["organisation"])
        path = Path(options["file"])
        try:
            with path.open("rb") as file:
                # One byte past the limit is enough for read_table to refuse it.
                data = file.read(settings.IMPORT_MAX_BYTES + 1)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        try:
            table = read_table(path.name, data)
        except ImportFileError as exc:
            raise CommandError(f"{path.name}: {exc}") from None
        report = run_import(
            actor=get_system_user(),
            organisation=organisation,
            table=table,
            filename=path.name,
            dry_run=options["dry_run"],
            import_good_rows=options["import_good_rows"],
        )
        for line in report.lines():
            self.stdout.write(line)
        if report.refused and not report.written:
            raise CommandError(report.summary())
        self.stdout.write(report.summary())

    def _organisation(self, value: str | None) -> Organisation:
        if value is None:
            organisations = list(Organisation.objects.all()[:2])
            if len(organisations) == 1:
                return organisations[0]
            raise CommandError(
                "--organisation is required: there is more than one organisation."
                if organisations
                else "There is no organisation to import into."
            )
        matches = Organisation.objects.filter(name__iexact=value)
        if value.isdigit():
            matches = matches | Organisation.objects.filter(pk=int(value))
        found = list(matches[:2])
        if len(found) != 1:
            problem = "matches more than one organisation" if found else "is not an organisation"
            raise CommandError(f"--organisation {value!r} {problem}.")
        return found[0]
