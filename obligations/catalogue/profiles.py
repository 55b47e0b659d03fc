"""Service profiles read from files or forms: their fields and validation."""

from __future__ import annotations

import datetime as dt
import reprlib
from typing import Any

from obligations.catalogue.rules import UK_LINKS, Catalogue, Profile
from obligations.dates import RANGE_TEXT, is_plausible
from obligations.inputs import AMOUNT_RULE, parse_amount

PROFILE_FIELDS = {
    "name": "a string",
    "user_to_user": "true or false",
    "search": "true or false",
    "provider_pornography": "true or false",
    "category": '"1", "2A", "2B", "none", or a list of these',
    "uk_monthly_users": "a whole number, 0 or more",
    "children_likely_to_access": "true, false or null",
    "features": "a list of feature names",
    "launch_date": "a YYYY-MM-DD date (the day it is first in scope: its UK launch)",
    **{name: "true, false or null" for name in UK_LINKS},
    "exemption": "an exemption code",
    "qualifying_worldwide_revenue": f'{AMOUNT_RULE}, as a decimal string, e.g. "250000000.00"',
    "accounting_period_months": "a whole number of months, 1 to 60",
    "no_accounting_period": "true or false",
}


REQUIRED_PROFILE_FIELDS = ("name", "user_to_user", "search")


class ProfileError(ValueError):
    """A profile is wrong: `field` names the field at fault (None: the profile as a whole) and
    `reason` says what is wrong with it; the message (as the command prints it) says both."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(f"field {field!r} {reason}" if field else reason)
        self.reason, self.field = reason, field


def parse_profile(data: Any, catalogue: Catalogue) -> Profile:
    if not isinstance(data, dict):
        raise ProfileError("the profile must be a JSON object")
    unknown = sorted(set(data) - set(PROFILE_FIELDS))
    if unknown:
        known = ", ".join(PROFILE_FIELDS)
        raise ProfileError(f"is not a profile field (known: {known})", unknown[0])
    for name in REQUIRED_PROFILE_FIELDS:
        if name not in data:
            raise ProfileError(f"is required ({PROFILE_FIELDS[name]})", name)

    def wrong(name: str) -> ProfileError:
        # reprlib: a megabyte of value is not quoted back in full.
        return ProfileError(f"must be {PROFILE_FIELDS[name]}, not {reprlib.repr(data[name])}", name)

    if not isinstance(data["name"], str) or not data["name"].strip():
        raise wrong("name")
    flags = {}
    for name in ("user_to_user", "search", "provider_pornography"):
        value = data.get(name, False)
        if not isinstance(value, bool):
            raise wrong(name)
        flags[name] = value
    if not any(flags.values()):
        raise ProfileError(
            "the profile must be user_to_user, search or provider_pornography (at least one true)"
        )
    raw_category = data.get("category", "none")
    categories = raw_category if isinstance(raw_category, list) else [raw_category]
    if not categories or not all(isinstance(c, str) for c in categories):
        raise wrong("category")
    for code in categories:
        if code != "none" and code not in catalogue.category_codes:
            raise ProfileError(
                f"has unknown category {code!r} "
                f"(known: {', '.join(sorted(catalogue.category_codes))}, none)",
                "category",
            )
    if "none" in categories and len(categories) > 1:
        raise ProfileError("cannot combine 'none' with a category", "category")
    users = data.get("uk_monthly_users", 0)
    if not isinstance(users, int) or isinstance(users, bool) or users < 0:
        raise wrong("uk_monthly_users")
    for name in ("children_likely_to_access", *UK_LINKS):
        if data.get(name) is not None and not isinstance(data[name], bool):
            raise wrong(name)
    children = data.get("children_likely_to_access")
    features = data.get("features", [])
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise wrong("features")
    for code in features:
        if code not in catalogue.feature_codes:
            raise ProfileError(
                f"has unknown feature {code!r} "
                f"(known: {', '.join(sorted(catalogue.feature_codes))})",
                "features",
            )
    launch = data.get("launch_date")
    if launch is not None:
        try:
            launch = dt.date.fromisoformat(launch)
        except (TypeError, ValueError):
            raise wrong("launch_date") from None
        if not is_plausible(launch):
            raise ProfileError(f"must be a date from {RANGE_TEXT}", "launch_date")
    exemption = data.get("exemption")
    if exemption is not None and not isinstance(exemption, str):
        raise wrong("exemption")
    if exemption is not None and exemption not in catalogue.exemption_codes:
        raise ProfileError(
            f"has unknown exemption {exemption!r} "
            f"(known: {', '.join(sorted(catalogue.exemption_codes))})",
            "exemption",
        )
    revenue = data.get("qualifying_worldwide_revenue")
    if revenue is not None:
        revenue = parse_amount(revenue)
        if revenue is None:
            raise wrong("qualifying_worldwide_revenue")
    months = data.get("accounting_period_months", 12)
    if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= 60:
        raise wrong("accounting_period_months")
    no_period = data.get("no_accounting_period", False)
    if not isinstance(no_period, bool):
        raise wrong("no_accounting_period")
    return Profile(
        name=data["name"].strip(),
        categories=frozenset(c for c in categories if c != "none"),
        uk_monthly_users=users,
        children_likely_to_access=children,
        features=frozenset(features),
        launch_date=launch,
        exemption=exemption,
        qualifying_worldwide_revenue=revenue,
        accounting_period_months=months,
        no_accounting_period=no_period,
        uk_significant_users=data.get("uk_significant_users"),
        uk_target_market=data.get("uk_target_market"),
        uk_material_risk=data.get("uk_material_risk"),
        user_to_user=flags["user_to_user"],
        search=flags["search"],
        provider_pornography=flags["provider_pornography"],
    )
