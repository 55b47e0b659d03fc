"""The OSA catalogue: reading the data file and evaluating its rules.

The catalogue (fixtures/osa-catalogue.json) is data. A duty's applicability
is a small declarative rule evaluated by `evaluate`; adding a duty, a feature
or a category never needs a code change here.

Rule language (a JSON object; every key present must hold):
  kinds_any                 ["user_to_user", "search", "provider_pornography"]
  categories_any            declared register categories, e.g. ["1", "2A"]
  children_likely_to_access true or false (unknown counts as likely, s.37(4)-(5))
  features_all / features_any / features_none   feature codes
  users_over                more than N average monthly active UK users
  regulated                 true: not exempt under Schedule 1
  fees                      "notify" or "pay": the provider's qualifying worldwide revenue is
                            at or above the fees threshold (the catalogue's parameters);
                            unknown revenue counts as meeting it, saying so
  any                       a list of rules, one of which must hold
  notice                    created by an Ofcom notice of this kind, never by a profile

A duty's `scope` is "service" (the default: one obligation per service) or "provider" (one
obligation for the provider, e.g. the fees notification that lists all its services).
The catalogue's `parameters` hold the figures the Act's money rules use (penalty cap, fees),
and `notice_powers` the Ofcom powers that could reach a service, as rules in the same language.

What a file may hold, this language included, is defined once, by its schema
(fixtures/osa-catalogue.schema.json, checked by obligations.catalogue.schema).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from obligations.catalogue.commencement import (
    ChildrenLikely,
    InForce,
    children_likely_from,
    first_due,
    in_force,
    start_day,
    start_reason,
)
from obligations.catalogue.schema import problems
from obligations.dates import display

KINDS = {
    "user_to_user": "user-to-user service",
    "search": "search service",
    "provider_pornography": "publishes provider pornographic content (Part 5)",
}


# The links with the UK that make a service regulated (s.4(2), (5)-(6)); the number of UK
# users alone neither brings a service in nor takes it out.
UK_LINKS = {
    "uk_significant_users": "a significant number of UK users (s.4(5)(a))",
    "uk_target_market": "UK users are a target market (s.4(5)(b))",
    "uk_material_risk": "usable in the UK with a material risk of significant harm to people "
    "there (s.4(6))",
}


BASES = {
    "act": "the Act",
    "regulations": "regulations",
    "ofcom": "Ofcom guidance",
    "house_policy": "house policy",
}


class CatalogueError(ValueError):
    """The catalogue cannot be loaded: `problems` gives every reason, one line each, naming its
    place in the file (`duties[12].verified: ...`)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Profile:
    """What the engine needs to know about a service."""

    name: str
    user_to_user: bool = False
    search: bool = False
    provider_pornography: bool = False
    categories: frozenset[str] = frozenset()
    uk_monthly_users: int = 0
    children_likely_to_access: bool | None = None
    children_access_assessed_on: dt.date | None = None
    features: frozenset[str] = frozenset()
    launch_date: dt.date | None = None
    exemption: str | None = None
    # s.4(5)-(6): each limb of the links with the UK; None where not recorded.
    uk_significant_users: bool | None = None
    uk_target_market: bool | None = None
    uk_material_risk: bool | None = None
    qualifying_worldwide_revenue: Decimal | None = None
    accounting_period_months: int = 12
    no_accounting_period: bool = False

    def kinds(self) -> set[str]:
        return {kind for kind in KINDS if getattr(self, kind)}

    def uk_links(self) -> tuple[bool | None, list[str]]:
        """Whether the service has links with the UK (s.4(5)-(6)), and which: True with the
        limbs met; False when every limb is recorded as not met; None when none is met and
        some are not recorded (treated as linked, as the rule's reason says)."""
        limbs = [getattr(self, name) for name in UK_LINKS]
        met = [text for name, text in UK_LINKS.items() if getattr(self, name)]
        if met:
            return True, met
        return (False if all(limb is False for limb in limbs) else None), []


@dataclass(frozen=True)
class Applicable:
    """One duty that applies, with why and when."""

    code: str
    section: str
    title: str
    why: str
    due: dt.date | None
    due_rule: str
    due_rule_text: str
    in_force: InForce
    commencement: Mapping[str, Any]
    start: dt.date | None  # the day it started (or starts) to apply; None: not in force
    start_why: str


@dataclass
class Catalogue:
    version: str
    published: dt.date
    sha256: str
    features: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    exemptions: list[dict[str, Any]]
    duties: list[dict[str, Any]]
    parameters: dict[str, Any] = field(default_factory=dict)
    notice_powers: list[dict[str, Any]] = field(default_factory=list)
    harm_kinds: list[dict[str, Any]] = field(default_factory=list)
    risk_factors: list[dict[str, Any]] = field(default_factory=list)
    measures: list[dict[str, Any]] = field(default_factory=list)
    feature_codes: set[str] = field(init=False)
    feature_names: dict[str, str] = field(init=False)
    category_codes: set[str] = field(init=False)
    exemption_codes: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.feature_codes = {f["code"] for f in self.features}
        self.feature_names = {f["code"]: f["label"] for f in self.features}
        self.category_codes = {c["code"] for c in self.categories}
        self.exemption_codes = {e["code"] for e in self.exemptions}

    def implied_features(self, features: Iterable[str]) -> frozenset[str]:
        """Features plus those they imply (e2ee messaging is direct messaging)."""
        return implied(features, {f["code"]: f.get("implies", []) for f in self.features})


def features_in_words(codes: Iterable[str], names: Mapping[str, str], joiner: str = ", ") -> str:
    """Features as the catalogue labels them, quoted: a label may itself say "or"."""
    return joiner.join(f"\u2018{names.get(code, code)}\u2019" for code in codes)


def implied(features: Iterable[str], implies: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """Features plus those they imply, by `implies` (feature code -> the codes it implies)."""
    result = set(features)
    for code in list(result):
        result.update(implies.get(code, ()))
    return frozenset(result)


def read_catalogue(path: Path | str) -> Catalogue:
    raw = Path(path).read_bytes()
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested past reason
        raise CatalogueError([f"{path}: not valid JSON ({exc})"]) from exc
    return parse_catalogue(data, sha256=hashlib.sha256(raw).hexdigest())


def parse_catalogue(data: Any, *, sha256: str) -> Catalogue:
    """The catalogue in `data`, once the schema finds no problem with it (else CatalogueError,
    listing every problem)."""
    found = problems(data)
    if found:
        raise CatalogueError(found)
    return Catalogue(
        version=data["version"],
        published=dt.date.fromisoformat(data["published"]),
        sha256=sha256,
        features=data["features"],
        categories=data["categories"],
        exemptions=data["exemptions"],
        duties=data["duties"],
        parameters=data["parameters"],
        notice_powers=data["notice_powers"],
        harm_kinds=data["harm_kinds"],
        risk_factors=data["risk_factors"],
        measures=data["measures"],
    )


def _fmt_users(n: int) -> str:
    return f"{n:,}"


def evaluate(
    rule: Mapping[str, Any],
    profile: Profile,
    features: frozenset[str],
    parameters: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
) -> tuple[bool, list[str]]:
    """Whether the rule holds for the profile, and the facts that made it hold (`names`: the
    features' labels, for those facts)."""
    names = names or {}
    reasons: list[str] = []
    if "notice" in rule:
        return False, []  # created by an Ofcom notice, never by a service's profile
    if "kinds_any" in rule:
        hit = [k for k in rule["kinds_any"] if k in profile.kinds()]
        if not hit:
            return False, []
        reasons.append(" and ".join(KINDS[k] for k in hit))
    if rule.get("regulated"):
        if profile.exemption:
            return False, []
        linked, limbs = profile.uk_links()
        if linked is False:
            return False, []
        reasons.append(
            "links with the UK: " + "; ".join(limbs)
            if linked
            else "links with the UK not recorded: treated as having them (s.4(5)-(6))"
        )
    if "categories_any" in rule:
        hit = [c for c in rule["categories_any"] if c in profile.categories]
        if not hit:
            return False, []
        reasons.append("Category " + " and ".join(hit) + " (declared from Ofcom's register)")
    if "children_likely_to_access" in rule:
        likely = profile.children_likely_to_access is not False
        if likely != rule["children_likely_to_access"]:
            return False, []
        if profile.children_likely_to_access is None:
            reasons.append(
                "children treated as likely to access it: no children's access assessment "
                "is recorded (s.37(4)-(5))"
            )
        elif likely:
            reasons.append("children's access assessment: children are likely to access it")
        else:
            reasons.append("children's access assessment: children are not likely to access it")
    if "features_all" in rule:
        if not set(rule["features_all"]) <= features:
            return False, []
        reasons.append("has " + features_in_words(rule["features_all"], names))
    if "features_any" in rule:
        hit = [f for f in rule["features_any"] if f in features]
        if not hit:
            return False, []
        reasons.append("has " + features_in_words(hit, names))
    if "features_none" in rule and set(rule["features_none"]) & features:
        return False, []
    if "users_over" in rule:
        if profile.uk_monthly_users <= rule["users_over"]:
            return False, []
        reasons.append(
            f"{_fmt_users(profile.uk_monthly_users)} monthly UK users "
            f"(over {_fmt_users(rule['users_over'])})"
        )
    if "fees" in rule:
        fee_paying, fees_why = profile_fee_paying(profile, parameters or {})
        if fee_paying is False:
            return False, []
        reasons.append(fees_why)
    if "any" in rule:
        for alternative in rule["any"]:
            ok, why = evaluate(alternative, profile, features, parameters, names)
            if ok:
                reasons.extend(why)
                break
        else:
            return False, []
    return True, reasons


def profile_fee_paying(profile: Profile, parameters: Mapping[str, Any]) -> tuple[bool | None, str]:
    """Whether one revenue figure reaches the fees threshold (s.83(2)); None when unknown.

    A profile has one revenue figure, so it stands for the qualifying period too; the register
    itself uses each charging year's own qualifying period (penalties.fees_requirements).
    """
    threshold = Decimal(parameters["fees"]["threshold_gbp"])
    revenue = profile.qualifying_worldwide_revenue
    if revenue is None:
        return None, (
            f"qualifying worldwide revenue is not recorded: treated as at or above the "
            f"£{threshold:,.0f} fees threshold until it is"
        )
    if revenue < threshold:
        return False, f"qualifying worldwide revenue £{revenue:,.2f} is below £{threshold:,.0f}"
    return True, f"qualifying worldwide revenue £{revenue:,.2f} (at least £{threshold:,.0f})"


def describe_deadline(deadline: Mapping[str, Any]) -> str:
    """The deadline rule in words, naming its basis."""
    kind = deadline["kind"]
    basis = BASES[deadline["basis"]]
    parts: list[str]
    if kind == "fixed":
        after = deadline.get("after_start")
        if "date" not in deadline:
            after = deadline["after_start"]
            months = after["months"]
            parts = [
                f"within the {months} months beginning with the day it starts to apply to the "
                f"service: by the day before the same date {months} months on, or that "
                f"month's last day where it has no such date ({after['source']}; {basis})"
            ]
        elif after:
            parts = [f"first due {display(dt.date.fromisoformat(deadline['date']))} ({basis})"]
            months = after["months"]
            parts.append(
                f"for a service that starts to be in scope later, within the {months} months "
                f"beginning with that day: by the day before the same date {months} months "
                f"on, or that month's last day where it has no such date "
                f"({after['source']}; {BASES[after['basis']]})"
            )
        else:
            parts = [f"first due {display(dt.date.fromisoformat(deadline['date']))} ({basis})"]
            parts.append("never before the day it starts to apply to the service")
    elif kind == "continuous":
        parts = [f"continuous ({basis})"]
    elif kind == "per_notice":
        parts = [f"by the dates in Ofcom's notice ({basis})"]
    elif kind == "per_report":
        parts = [f"per report received ({basis})"]
    elif kind == "fees":
        parts = [f"by the dates of the provider's fees position, per charging year ({basis})"]
    else:
        parts = [f"on change ({basis})"]
    recurrence = deadline.get("recurrence")
    if recurrence:
        parts.append(f"then every {recurrence['months']} months ({BASES[recurrence['basis']]})")
    if deadline.get("before_significant_change"):
        parts.append("and before a significant change (the Act)")
    if deadline.get("note"):
        parts.append(deadline["note"])
    return "; ".join(parts)


def due_rule_kind(deadline: Mapping[str, Any]) -> str:
    """A one-word kind for the deadline: fixed, recurring, continuous, ..."""
    if deadline.get("recurrence"):
        return "recurring"
    return str(deadline["kind"])


def applicable_duties(
    catalogue: Catalogue,
    profile: Profile,
    *,
    day: dt.date,
    changed_on: dt.date | None = None,
) -> list[Applicable]:
    """Every duty the Act places on the profile (in force or not), with the reason, whether it
    is in force on `day`, the day it started to apply and its first due date. `changed_on`:
    the day a profile change brought the service under the duties it newly meets."""
    features = catalogue.implied_features(profile.features)
    children = _children_likely_from(catalogue, profile, day)
    result = []
    for duty in catalogue.duties:
        if duty.get("retired"):
            continue
        ok, reasons = evaluate(
            duty["applies"], profile, features, catalogue.parameters, catalogue.feature_names
        )
        if not ok:
            continue
        if duty.get("scope") == "provider":
            reasons.append("one obligation for the provider, covering all its services")
        launch = profile.launch_date
        # The children's duties start when the service is treated as likely (s.37).
        child = children if duty["applies"].get("children_likely_to_access") is True else None
        start = start_day(duty, day, launch=launch, changed_on=changed_on, children=child)
        result.append(
            Applicable(
                code=duty["code"],
                section=duty["section"],
                title=duty["title"],
                why="; ".join(reasons) if reasons else "applies to every regulated service",
                due=first_due(duty["deadline"], start),
                due_rule=due_rule_kind(duty["deadline"]),
                due_rule_text=describe_deadline(duty["deadline"]),
                in_force=in_force(duty, day),
                commencement=duty["commencement"],
                start=start,
                start_why=""
                if start is None
                else start_reason(
                    duty, start, launch=launch, changed_on=changed_on, children=child
                ),
            )
        )
    return result


def _children_likely_from(
    catalogue: Catalogue, profile: Profile, day: dt.date
) -> ChildrenLikely | None:
    """`children_likely_from` for the profile: the access assessment's first due date is the
    one the catalogue's duty named in parameters.children gives the service (none named, or
    not in force: no such date)."""
    code = (catalogue.parameters.get("children") or {}).get("access_assessment_duty")
    assessment = next((d for d in catalogue.duties if d["code"] == code), None)
    due = None
    if assessment is not None and profile.children_likely_to_access is None:
        due = first_due(
            assessment["deadline"], start_day(assessment, day, launch=profile.launch_date)
        )
    return children_likely_from(
        profile.children_likely_to_access, profile.children_access_assessed_on, due
    )


def not_applicable_reason(catalogue: Catalogue, duty: Mapping[str, Any], profile: Profile) -> str:
    """Why a duty does not apply to this profile, in words."""
    if profile.exemption and duty["applies"].get("regulated"):
        label = next(
            (e["label"] for e in catalogue.exemptions if e["code"] == profile.exemption),
            profile.exemption,
        )
        paragraph = next(
            (e["paragraph"] for e in catalogue.exemptions if e["code"] == profile.exemption), ""
        )
        return f"The service is exempt: {label} ({paragraph})."
    if duty["applies"].get("regulated") and profile.uk_links()[0] is False:
        return "The service has no links with the UK (s.4(5)-(6)), so it is not regulated."
    rule = describe_rule(duty["applies"], catalogue.feature_names)
    return f"The profile no longer meets the rule: {rule}."


def describe_rule(rule: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """The rule in words, `names` being the features' labels."""
    parts = []
    if "kinds_any" in rule:
        parts.append(" or ".join(KINDS[k] for k in rule["kinds_any"]))
    if "categories_any" in rule:
        parts.append("Category " + " or ".join(rule["categories_any"]))
    if "children_likely_to_access" in rule:
        parts.append(
            "children likely to access"
            if rule["children_likely_to_access"]
            else "children not likely to access"
        )
    if "features_all" in rule:
        parts.append("has " + features_in_words(rule["features_all"], names, " and "))
    if "features_any" in rule:
        parts.append("has " + features_in_words(rule["features_any"], names, " or "))
    if "features_none" in rule:
        parts.append("has none of " + features_in_words(rule["features_none"], names))
    if "users_over" in rule:
        parts.append(f"more than {_fmt_users(rule['users_over'])} monthly UK users")
    if rule.get("regulated"):
        parts.append("links with the UK (s.4(5)-(6)), not exempt under Schedule 1")
    if "fees" in rule:
        parts.append("qualifying worldwide revenue at or above the fees threshold, not exempt")
    if "any" in rule:
        parts.append("(" + " or ".join(describe_rule(r, names) for r in rule["any"]) + ")")
    return ", ".join(parts)


def notice_powers(catalogue: Catalogue, profile: Profile) -> list[dict[str, Any]]:
    """The Ofcom notice powers that could reach the profile, so a team can prepare: what each
    could require, the notes for a profile like this one, the conditions the Act sets, and
    whether what the power needs exists yet (as far as the catalogue knows)."""
    features = catalogue.implied_features(profile.features)
    result = []
    for power in catalogue.notice_powers:
        ok, reasons = evaluate(
            power["applies"], profile, features, catalogue.parameters, catalogue.feature_names
        )
        if ok:
            facts = "; ".join(reasons)
            notes = [
                note["text"]
                for note in power.get("notes", [])
                if evaluate(note["applies"], profile, features, catalogue.parameters)[0]
            ]
            result.append(
                {
                    "section": power["section"],
                    "title": power["title"],
                    "why": f"{power['why']} Reaches it as: {facts}." if facts else power["why"],
                    "notes": notes,
                    "conditions": power.get("conditions", []),
                    "prerequisites": power.get("prerequisites", []),
                }
            )
    return result


def likely_categories(catalogue: Catalogue, profile: Profile) -> list[tuple[str, str]]:
    """The register categories the thresholds suggest, with the reason for each."""
    features = catalogue.implied_features(profile.features)
    hits: dict[str, str] = {}
    for category in catalogue.categories:
        ok, reasons = evaluate(
            category["likely_if"], profile, features, names=catalogue.feature_names
        )
        if ok:
            hits[category["code"]] = "; ".join(reasons)
    # s.95: a service meeting Category 1 and 2B goes only in the Category 1 part.
    for category in catalogue.categories:
        if category["code"] in hits:
            for superseded in category.get("supersedes", []):
                hits.pop(superseded, None)
    return sorted(hits.items())
