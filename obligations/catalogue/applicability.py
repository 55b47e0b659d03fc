"""What applies to a service profile, as one JSON-ready object: the `applicable_duties`
command's `--json` output and the API's `POST /api/v1/applicability/` answer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from obligations.catalogue.rules import (
    Catalogue,
    Profile,
    applicable_duties,
    likely_categories,
    notice_powers,
    profile_fee_paying,
)
from obligations.providers.penalties import penalty_cap_for_profile


def report(catalogue: Catalogue, profile: Profile, *, day: dt.date) -> dict[str, Any]:
    """Every duty the Act places on the profile, each saying whether it is in force on `day`,
    since when and by which instrument; a duty not in force has no due date."""
    duties = applicable_duties(catalogue, profile, day=day)
    cap = penalty_cap_for_profile(
        profile.qualifying_worldwide_revenue,
        months=profile.accounting_period_months,
        no_accounting_period=profile.no_accounting_period,
        params=catalogue.parameters["penalty"],
    )
    # At or above the threshold, a provider notifies for its first fee-paying year (s.83(1)).
    fee_paying, fees_why = profile_fee_paying(profile, catalogue.parameters)
    return {
        "name": profile.name,
        "catalogue_version": catalogue.version,
        "declared_categories": sorted(profile.categories),
        "likely_categories": [
            {"code": c, "why": why} for c, why in likely_categories(catalogue, profile)
        ],
        "duties": [
            {
                "code": d.code,
                "section": d.section,
                "title": d.title,
                "why": d.why,
                "in_force": d.in_force.value,
                "in_force_text": d.in_force.text,
                "in_force_from": d.in_force.since.isoformat() if d.in_force.since else None,
                "commencement": dict(d.commencement),
                "applies_from": d.start.isoformat() if d.start else None,
                "due": d.due.isoformat() if d.due else None,
                "due_rule": d.due_rule,
                "due_rule_text": d.due_rule_text,
            }
            for d in duties
        ],
        "max_penalty_gbp": str(cap.amount) if cap.amount is not None else None,
        "penalty_rule": cap.rule,
        "penalty_explanation": cap.explanation + (f" {cap.missing}" if cap.missing else ""),
        "fees_notification_required": fee_paying,
        "fees_why": fees_why,
        "notice_powers": notice_powers(catalogue, profile),
    }
