"""Load (or preview) a version of the OSA duty catalogue."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from obligations.access.users import get_system_user
from obligations.catalogue.diff import MAX_RETIRE_SHARE, diff_catalogue
from obligations.catalogue.loading import load_catalogue
from obligations.catalogue.rules import CatalogueError, read_catalogue


class Command(BaseCommand):
    help = (
        "Load the OSA duty catalogue; --dry-run prints what it would add, change and retire. "
        "A file with problems is refused whole, each problem on its own line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", default=str(settings.CATALOGUE_PATH))
        parser.add_argument("--dry-run", action="store_true", help="Write nothing.")
        parser.add_argument(
            "--allow-retire",
            action="store_true",
            help=f"Load even if it retires more than {MAX_RETIRE_SHARE:.0%} of the current duties.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path, allow_retire = options["path"], options["allow_retire"]
        try:
            catalogue = read_catalogue(path)
            if options["dry_run"]:
                diff = diff_catalogue(catalogue, allow_retire=allow_retire)
                verb = "would"
            else:
                diff = load_catalogue(
                    actor=get_system_user(),
                    catalogue=catalogue,
                    allow_retire=allow_retire,
                )
                verb = "did"
        except OSError as exc:
            raise CommandError(str(exc)) from None
        except CatalogueError as exc:
            for problem in exc.problems:
                self.stderr.write(problem)
            count = len(exc.problems)
            raise CommandError(
                f"{path}: {count} problem{'s' if count > 1 else ''}; nothing was loaded."
            ) from None
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
