"""Load (or preview) a version of the OSA duty catalogue."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from obligations import services
from obligations.catalogue import CatalogueError, read_catalogue


class Command(BaseCommand):
    help = "Load the OSA duty catalogue; --dry-run prints what it would add, change and retire."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", default=str(settings.CATALOGUE_PATH))
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            catalogue = read_catalogue(options["path"])
        except (OSError, CatalogueError) as exc:
            raise CommandError(str(exc)) from None
        if options["dry_run"]:
            diff = services.diff_catalogue(catalogue)
            verb = "would"
        else:
            diff = services.load_catalogue(actor=services.get_system_user(), catalogue=catalogue)
            verb = "did"
        self.stdout.write(
            f"Catalogue {catalogue.version} ({len(catalogue.duties)} duties): "
            f"{verb} add {len(diff.added)}, change {len(diff.changed)}, "
            f"retire {len(diff.retired)}."
        )
        for code in diff.added:
            self.stdout.write(f"  + {code}")
        for code, fields in diff.changed.items():
            self.stdout.write(f"  ~ {code}: {', '.join(fields)}")
        for code in diff.retired:
            self.stdout.write(f"  - {code}")
