"""What the catalogue says about the law, and what in it is not verified: for a lawyer's check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from obligations.catalogue.commencement import in_force
from obligations.catalogue.rules import Catalogue, CatalogueError, read_catalogue
from obligations.dates import display, london_today


def unverified(catalogue: Catalogue) -> Iterator[dict[str, str]]:
    """Every entry flagged `verified: false`, where it is in the file, and why."""
    lists = {
        "duties": catalogue.duties,
        "exemptions": catalogue.exemptions,
        "notice_powers": catalogue.notice_powers,
        "harm_kinds": catalogue.harm_kinds,
        "risk_factors": catalogue.risk_factors,
        "measures": catalogue.measures,
    }
    for name, entries in lists.items():
        for entry in entries:
            if not entry.get("verified", True):
                yield {"where": f"{name}: {entry['code']}", "why": entry["unverified_note"]}
    for name, parameters in catalogue.parameters.items():
        if isinstance(parameters, dict) and not parameters.get("verified", True):
            yield {"where": f"parameters: {name}", "why": parameters["unverified_note"]}


def duty_rows(catalogue: Catalogue) -> Iterator[dict[str, Any]]:
    today = london_today()
    for duty in catalogue.duties:
        state = in_force(duty, today)
        yield {
            "code": duty["code"],
            "section": duty["section"],
            "in_force": state.value,
            "in_force_text": state.text,
            "instrument": duty["commencement"]["instrument"],
            "url": duty["commencement"]["url"],
            "verified": duty.get("verified", True),
        }


class Command(BaseCommand):
    help = (
        "Report the catalogue's duties with their commencement (in force today or not, by which "
        "instrument), and every entry marked unverified with the reason. Reads the file; needs "
        "no database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--file", default=str(settings.CATALOGUE_PATH), help="The catalogue file."
        )
        parser.add_argument("--json", action="store_true", help="Print JSON instead of text.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            catalogue = read_catalogue(Path(options["file"]))
        except OSError as exc:
            raise CommandError(f"cannot read {options['file']}: {exc.strerror}") from None
        except CatalogueError as exc:
            raise CommandError("\n".join(exc.problems)) from None
        duties, flagged = list(duty_rows(catalogue)), list(unverified(catalogue))
        if options["json"]:
            report = {"version": catalogue.version, "duties": duties, "unverified": flagged}
            self.stdout.write(json.dumps(report, indent=2))
            return
        live = sum(1 for d in duties if d["in_force"])
        self.stdout.write(
            f"Catalogue {catalogue.version} (published {display(catalogue.published)}): "
            f"{len(duties)} duties, {live} in force today, {len(flagged)} entries unverified."
        )
        for d in duties:
            mark = "" if d["verified"] else "  [unverified]"
            self.stdout.write(f"{d['code']:<30} {d['section']:<18} {d['in_force_text']}{mark}")
        self.stdout.write("")
        self.stdout.write("Unverified, and why:")
        for entry in flagged:
            self.stdout.write(f"- {entry['where']}: {entry['why']}")
