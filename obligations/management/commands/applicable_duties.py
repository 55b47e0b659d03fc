"""What applies to my service? Answers from the catalogue file, saving nothing."""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from obligations.catalogue.applicability import report
from obligations.catalogue.profiles import ProfileError, parse_profile
from obligations.catalogue.rules import CatalogueError, read_catalogue
from obligations.dates import london_today
from obligations.inputs import load_json
from obligations.providers.penalties import money


class Command(BaseCommand):
    help = "List the Online Safety Act duties that apply to a service profile (a JSON file)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--profile", required=True, help="Path to the profile JSON file.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument(
            "--catalogue", default=str(settings.CATALOGUE_PATH), help="Catalogue file to use."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            catalogue = read_catalogue(options["catalogue"])
        except (OSError, CatalogueError) as exc:
            raise CommandError(f"catalogue: {exc}") from None
        path = Path(options["profile"])
        try:
            data = load_json(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"profile: cannot read {path}: {exc.strerror}") from None
        except ValueError as exc:  # not JSON, not UTF-8, or nested too deep
            raise CommandError(f"profile: {path} is not valid JSON ({exc})") from None
        try:
            profile = parse_profile(data, catalogue)
        except ProfileError as exc:
            raise CommandError(f"profile: {exc}") from None
        answer = report(catalogue, profile, day=london_today())
        if options["json"]:
            self.stdout.write(json.dumps(answer, indent=2))
            return
        duties, likely = answer["duties"], answer["likely_categories"]
        declared = ", ".join(answer["declared_categories"]) or "none"
        computed = ", ".join(c["code"] for c in likely) or "none"
        self.stdout.write(
            f"{profile.name}: {len(duties)} duties apply (catalogue {catalogue.version})"
        )
        self.stdout.write(
            f"Register category declared: {declared}; likely from thresholds: {computed}"
        )
        for category in likely:
            self.stdout.write(f"  likely Category {category['code']}: {category['why']}")
        if answer["max_penalty_gbp"] is not None:
            amount = money(Decimal(answer["max_penalty_gbp"]))
            self.stdout.write(f"Maximum penalty: {amount} ({answer['penalty_rule']})")
        else:
            self.stdout.write(f"Maximum penalty: not computed. {answer['penalty_explanation']}")
        fee_paying = answer["fees_notification_required"]
        required = {True: "required", False: "not required", None: "unknown"}[fee_paying]
        self.stdout.write(f"Fees notification (s.83): {required}: {answer['fees_why']}")
        self.stdout.write("Ofcom notice powers that could reach it:")
        for power in answer["notice_powers"]:
            self.stdout.write(f"  {power['section']} {power['title']}")
        self.stdout.write("")
        widths = (24, 12, 11, 11)
        header = ("CODE", "SECTION", "DUE", "RULE")
        self.stdout.write(
            "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "  TITLE"
        )
        for d in duties:
            row = (d["code"], d["section"], d["due"] or "-", d["due_rule"])
            self.stdout.write(
                "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True))
                + f"  {d['title']}"
            )
            self.stdout.write(f"{'':>26}why: {d['why']}")
            self.stdout.write(f"{'':>26}{d['in_force_text']}")
