"""What applies to a service profile, as one JSON-ready object: the `applicable_duties`
command's `--json` output and the API's `POST /api/v1/applicability/` answer."""

from __future__ import annotations

from typing import Any

from obligations.catalogue import (
    Catalogue,
    Profile,
    applicable_duties,
    likely_categories,
    notice_powers,
    profile_fee_paying,
)
from obligations.penalties import penalty_cap_for_profile


def report(catalogue: Catalogue, profile: Profile) -> dict[str, Any]:
    duties = applicable_duties(catalogue, profile)
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
