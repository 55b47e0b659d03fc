"""What applies to my service? Answers from the catalogue file, saving nothing."""

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from obligations.catalogue import (
    CatalogueError,
    ProfileError,
    applicable_duties,
    likely_categories,
    notice_powers,
    parse_profile,
    profile_fee_paying,
    read_catalogue,
)
from obligations.penalties import money, penalty_cap_for_profile


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
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"profile: cannot read {path}: {exc.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CommandError(f"profile: {path} is not valid JSON ({exc})") from None
        try:
            profile = parse_profile(data, catalogue)
        except ProfileError as exc:
            raise CommandError(f"profile: {exc}") from None
        duties = applicable_duties(catalogue, profile)
        likely = likely_categories(catalogue, profile)
        powers = notice_powers(catalogue, profile)
        cap = penalty_cap_for_profile(
            profile.qualifying_worldwide_revenue,
            months=profile.accounting_period_months,
            no_accounting_period=profile.no_accounting_period,
            params=catalogue.parameters["penalty"],
        )
        # At or above the threshold, a provider notifies for its first fee-paying year (s.83(1)).
        fee_paying, fees_why = profile_fee_paying(profile, catalogue.parameters)
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "name": profile.name,
                        "catalogue_version": catalogue.version,
                        "declared_categories": sorted(profile.categories),
                        "likely_categories": [{"code": c, "why": why} for c, why in likely],
                        "duties": [
                            {
                                "code": d.code,
                                "section": d.section,
                                "title": d.title,
                                "why": d.why,
                                "due": d.due.isoformat() if d.due else None,
                                "due_rule": d.due_rule,
                                "due_rule_text": d.due_rule_text,
                            }
                            for d in duties
                        ],
                        "max_penalty_gbp": str(cap.amount) if cap.amount is not None else None,
                        "penalty_rule": cap.rule,
                        "penalty_explanation": cap.explanation
                        + (f" {cap.missing}" if cap.missing else ""),
                        "fees_notification_required": fee_paying,
                        "fees_why": fees_why,
                        "notice_powers": powers,
                    },
                    indent=2,
                )
            )
            return
        declared = ", ".join(sorted(profile.categories)) or "none"
        computed = ", ".join(c for c, _ in likely) or "none"
        self.stdout.write(
            f"{profile.name}: {len(duties)} duties apply (catalogue {catalogue.version})"
        )
        self.stdout.write(
            f"Register category declared: {declared}; likely from thresholds: {computed}"
        )
        for code, why in likely:
            self.stdout.write(f"  likely Category {code}: {why}")
        if cap.amount is not None:
            self.stdout.write(f"Maximum penalty: {money(cap.amount)} ({cap.rule})")
        else:
            self.stdout.write(f"Maximum penalty: not computed. {cap.missing}")
        required = {True: "required", False: "not required", None: "unknown"}[fee_paying]
        self.stdout.write(f"Fees notification (s.83): {required}: {fees_why}")
        self.stdout.write("Ofcom notice powers that could reach it:")
        for power in powers:
            self.stdout.write(f"  {power['section']} {power['title']}")
        self.stdout.write("")
        widths = (24, 12, 11, 11)
        header = ("CODE", "SECTION", "DUE", "RULE")
        self.stdout.write(
            "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "  TITLE"
        )
        for d in duties:
            row = (d.code, d.section, d.due.isoformat() if d.due else "-", d.due_rule)
            self.stdout.write(
                "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True))
                + f"  {d.title}"
            )
            self.stdout.write(f"{'':>26}why: {d.why}")
