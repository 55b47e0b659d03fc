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
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from obligations.inputs import AMOUNT_RULE, parse_amount

KINDS = {
    "user_to_user": "user-to-user service",
    "search": "search service",
    "provider_pornography": "publishes provider pornographic content (Part 5)",
}
RULE_KEYS = {
    "kinds_any",
    "categories_any",
    "children_likely_to_access",
    "features_all",
    "features_any",
    "features_none",
    "users_over",
    "regulated",
    "fees",
    "any",
    "notice",
}
# Duties whose obligations an Ofcom notice creates (rule {"notice": kind}); never from a profile.
NOTICE_RULE_KINDS = {
    "technology",
    "information",
    "skilled_person",
    "provisional",
    "confirmation",
    "penalty_proposal",
    "penalty",
    "transparency",
}
FEES_RULES = {"notify", "pay"}
SCOPES = {"service", "provider"}
DEADLINE_KINDS = {"fixed", "launch", "continuous", "per_notice", "per_report", "on_change", "fees"}
BASES = {
    "act": "the Act",
    "regulations": "regulations",
    "ofcom": "Ofcom guidance",
    "house_policy": "house policy",
}
DUTY_STATUSES = {"in_force", "not_yet_in_force", "proposed"}


class CatalogueError(ValueError):
    """The catalogue file is malformed; the message names the entry and field."""


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
    features: frozenset[str] = frozenset()
    launch_date: dt.date | None = None
    exemption: str | None = None
    qualifying_worldwide_revenue: Decimal | None = None
    accounting_period_months: int = 12
    no_accounting_period: bool = False

    def kinds(self) -> set[str]:
        return {kind for kind in KINDS if getattr(self, kind)}


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
    category_codes: set[str] = field(init=False)
    exemption_codes: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.feature_codes = {f["code"] for f in self.features}
        self.category_codes = {c["code"] for c in self.categories}
        self.exemption_codes = {e["code"] for e in self.exemptions}

    def implied_features(self, features: Iterable[str]) -> frozenset[str]:
        """Features plus those they imply (e2ee messaging is direct messaging)."""
        return implied(features, {f["code"]: f.get("implies", []) for f in self.features})


def implied(features: Iterable[str], implies: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """Features plus those they imply, by `implies` (feature code -> the codes it implies)."""
    result = set(features)
    for code in list(result):
        result.update(implies.get(code, ()))
    return frozenset(result)


# --- Loading and validation ----------------------------------------------


def read_catalogue(path: Path | str) -> Catalogue:
    raw = Path(path).read_bytes()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CatalogueError(f"{path}: not valid JSON ({exc})") from exc
    return parse_catalogue(data, sha256=hashlib.sha256(raw).hexdigest())


def parse_catalogue(data: Mapping[str, Any], *, sha256: str) -> Catalogue:
    keys = ("version", "published", "features", "categories", "exemptions", "duties")
    more = ("parameters", "notice_powers", "harm_kinds", "risk_factors", "measures")
    for key in (*keys, *more):
        if key not in data:
            raise CatalogueError(f"catalogue: missing top-level key {key!r}")
    catalogue = Catalogue(
        version=str(data["version"]),
        published=_date(data["published"], "catalogue.published"),
        sha256=sha256,
        features=list(data["features"]),
        categories=list(data["categories"]),
        exemptions=list(data["exemptions"]),
        duties=list(data["duties"]),
        parameters=dict(data["parameters"]),
        notice_powers=list(data["notice_powers"]),
        harm_kinds=list(data["harm_kinds"]),
        risk_factors=list(data["risk_factors"]),
        measures=list(data["measures"]),
    )
    _validate(catalogue)
    return catalogue


def _date(value: Any, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise CatalogueError(f"{where}: {value!r} is not a YYYY-MM-DD date") from exc


def _require(entry: Mapping[str, Any], keys: Sequence[str], where: str) -> None:
    missing = [key for key in keys if entry.get(key) in (None, "")]
    if missing:
        raise CatalogueError(f"{where}: missing {', '.join(missing)}")


def _validate(catalogue: Catalogue) -> None:
    for feature in catalogue.features:
        _require(feature, ["code", "label"], f"feature {feature.get('code')!r}")
    for feature in catalogue.features:
        for implied in feature.get("implies", []):
            if implied not in catalogue.feature_codes:
                raise CatalogueError(f"feature {feature['code']}: implies unknown {implied!r}")
    for category in catalogue.categories:
        where = f"category {category.get('code')!r}"
        _require(
            category, ["code", "label", "threshold", "likely_if", "source", "source_url"], where
        )
        validate_rule(category["likely_if"], catalogue, where)
    for exemption in catalogue.exemptions:
        _require(
            exemption,
            ["code", "label", "paragraph", "source_url"],
            f"exemption {exemption.get('code')!r}",
        )
    seen: set[str] = set()
    for duty in catalogue.duties:
        where = f"duty {duty.get('code')!r}"
        _require(
            duty,
            [
                "code",
                "title",
                "section",
                "part",
                "instrument",
                "summary",
                "status",
                "applies",
                "deadline",
                "source_url",
            ],
            where,
        )
        if duty["code"] in seen:
            raise CatalogueError(f"{where}: code appears twice")
        seen.add(duty["code"])
        if duty["status"] not in DUTY_STATUSES:
            raise CatalogueError(
                f"{where}: status {duty['status']!r} is not one of {sorted(DUTY_STATUSES)}"
            )
        if duty.get("in_force_from"):
            _date(duty["in_force_from"], f"{where}.in_force_from")
        if not duty.get("verified", True) and not duty.get("unverified_note"):
            raise CatalogueError(f"{where}: an unverified duty must say what is unverified")
        validate_rule(duty["applies"], catalogue, where)
        _validate_deadline(duty["deadline"], where)
        if duty.get("scope", "service") not in SCOPES:
            raise CatalogueError(f"{where}: scope is one of {sorted(SCOPES)}")
        if (duty.get("scope") == "provider") != ("fees" in duty["applies"]):
            raise CatalogueError(f"{where}: provider-wide duties are the fees duties (rule 'fees')")
        if (duty["deadline"]["kind"] == "fees") != ("fees" in duty["applies"]):
            raise CatalogueError(f"{where}: a 'fees' deadline goes with a 'fees' rule")
    _validate_parameters(catalogue.parameters)
    _validate_assessments(catalogue)
    for power in catalogue.notice_powers:
        where = f"notice power {power.get('code')!r}"
        _require(power, ["code", "section", "title", "applies", "why", "source_url"], where)
        validate_rule(power["applies"], catalogue, where)


MEASURE_RULE_KEYS = {
    "large",
    "multi_risk",
    "risk",
    "users_over",
    "features_any",
    "categories_any",
    "children_likely",
    "any",
}
# Besides harm codes, a measure's risk rule may name a whole set of kinds.
HARM_SETS = {"any", "children_pc"}
MEASURE_STATUSES = {"in_force", "laid", "proposed"}
BASES_OF_FACT = {"O", "S", "U"}


def _validate_assessments(catalogue: Catalogue) -> None:
    params = catalogue.parameters.get("assessment")
    if not isinstance(params, dict):
        raise CatalogueError("parameters.assessment is a JSON object")
    _require(
        params,
        ["kinds", "levels", "likelihood", "impact", "matrix", "age_groups", "large_users"],
        "parameters.assessment",
    )
    levels = {level["code"] for level in params["levels"]}
    for likelihood in params["likelihood"]:
        for impact in params["impact"]:
            if params["matrix"].get(likelihood, {}).get(impact) not in levels:
                raise CatalogueError(
                    f"parameters.assessment.matrix: no level for {likelihood} x {impact}"
                )
    kinds = set(params["kinds"])
    duty_kinds = {d["assessment_kind"] for d in catalogue.duties if d.get("assessment_kind")}
    if duty_kinds - kinds:
        raise CatalogueError(f"duties name unknown assessment kinds {sorted(duty_kinds - kinds)}")
    harm_codes: set[str] = set()
    for harm in catalogue.harm_kinds:
        where = f"harm kind {harm.get('code')!r}"
        _require(
            harm,
            ["code", "label", "family", "group", "assessments", "effective_from", "source_url"],
            where,
        )
        if harm["code"] in harm_codes:
            raise CatalogueError(f"{where}: code appears twice")
        harm_codes.add(harm["code"])
        if set(harm["assessments"]) - kinds:
            raise CatalogueError(f"{where}: unknown assessment kind in {harm['assessments']}")
        _date(harm["effective_from"], f"{where}.effective_from")
        if harm.get("effective_until"):
            _date(harm["effective_until"], f"{where}.effective_until")
        if harm.get("assess_by"):
            _date(harm["assess_by"], f"{where}.assess_by")
        if not harm.get("verified", True) and not harm.get("unverified_note"):
            raise CatalogueError(f"{where}: an unverified entry must say what is unverified")
    for factor in catalogue.risk_factors:
        where = f"risk factor {factor.get('code')!r}"
        _require(factor, ["code", "label", "group", "assessments", "source_url"], where)
        if set(factor["assessments"]) - kinds:
            raise CatalogueError(f"{where}: unknown assessment kind in {factor['assessments']}")
    duty_codes = {d["code"] for d in catalogue.duties}
    seen: set[str] = set()
    for measure in catalogue.measures:
        where = f"measure {measure.get('code')!r}"
        _require(
            measure,
            ["code", "code_family", "area", "summary", "duties", "status", "effective_from"],
            where,
        )
        _require(measure, ["source_url", "basis"], where)
        if measure["code"] in seen:
            raise CatalogueError(f"{where}: code appears twice")
        seen.add(measure["code"])
        if set(measure["duties"]) - duty_codes:
            raise CatalogueError(f"{where}: serves unknown duties {measure['duties']}")
        if measure["status"] not in MEASURE_STATUSES:
            raise CatalogueError(f"{where}: status is one of {sorted(MEASURE_STATUSES)}")
        if measure["basis"] not in BASES_OF_FACT:
            raise CatalogueError(f"{where}: basis is O, S or U")
        if measure["basis"] != "O" and not measure.get("unverified_note"):
            raise CatalogueError(f"{where}: a measure not seen on an Ofcom page says why")
        _date(measure["effective_from"], f"{where}.effective_from")
        _validate_measure_rule(measure["recommended_for"], catalogue, harm_codes, levels, where)


def _validate_measure_rule(
    rule: Any, catalogue: Catalogue, harms: set[str], levels: set[str], where: str
) -> None:
    if not isinstance(rule, dict):
        raise CatalogueError(f"{where}: recommended_for is a JSON object ({{}} for every service)")
    unknown = set(rule) - MEASURE_RULE_KEYS
    if unknown:
        raise CatalogueError(f"{where}: unknown rule key(s) {sorted(unknown)}")
    for key in ("large", "multi_risk", "children_likely"):
        if key in rule and not isinstance(rule[key], bool):
            raise CatalogueError(f"{where}: {key} is true or false")
    if "users_over" in rule and not isinstance(rule["users_over"], int):
        raise CatalogueError(f"{where}: users_over is a whole number")
    if "features_any" in rule and set(rule["features_any"]) - catalogue.feature_codes:
        raise CatalogueError(f"{where}: unknown features in {rule['features_any']}")
    if "categories_any" in rule and set(rule["categories_any"]) - catalogue.category_codes:
        raise CatalogueError(f"{where}: unknown categories in {rule['categories_any']}")
    if "risk" in rule:
        risk = rule["risk"]
        named = risk.get("harms")
        if not (
            (isinstance(named, str) and named in HARM_SETS)
            or (isinstance(named, list) and set(named) <= harms)
        ):
            raise CatalogueError(f"{where}: risk.harms names unknown harm kinds ({named})")
        if risk.get("at_least") not in levels:
            raise CatalogueError(f"{where}: risk.at_least is one of {sorted(levels)}")
    for alternative in rule.get("any", []):
        _validate_measure_rule(alternative, catalogue, harms, levels, where)


def _decimal(value: Any, where: str) -> Decimal:
    try:
        result = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        result = None
    if result is None or not result.is_finite() or result < 0:
        raise CatalogueError(f"{where}: a non-negative decimal string, not {value!r}")
    return result


def _validate_parameters(parameters: Mapping[str, Any]) -> None:
    penalty, fees = parameters.get("penalty"), parameters.get("fees")
    if not isinstance(penalty, dict) or not isinstance(fees, dict):
        raise CatalogueError("parameters: 'penalty' and 'fees' are JSON objects")
    _require(penalty, ["fixed_gbp", "revenue_percent", "source_url"], "parameters.penalty")
    _decimal(penalty["fixed_gbp"], "parameters.penalty.fixed_gbp")
    _decimal(penalty["revenue_percent"], "parameters.penalty.revenue_percent")
    _require(
        fees,
        [
            "threshold_gbp",
            "charging_year_start",
            "qualifying_period_years_before",
            "first_charging_year",
            "first_notification_by",
            "notification_months_before",
            "exemption",
            "source_url",
        ],
        "parameters.fees",
    )
    _decimal(fees["threshold_gbp"], "parameters.fees.threshold_gbp")
    _date(f"2000-{fees['charging_year_start']}", "parameters.fees.charging_year_start")
    _date(fees["first_notification_by"], "parameters.fees.first_notification_by")
    for key in (
        "qualifying_period_years_before",
        "first_charging_year",
        "notification_months_before",
    ):
        if not isinstance(fees[key], int) or fees[key] < 0:
            raise CatalogueError(f"parameters.fees.{key} is a whole number")
    _require(fees["exemption"], ["uk_referable_below_gbp", "note"], "parameters.fees.exemption")
    _decimal(fees["exemption"]["uk_referable_below_gbp"], "parameters.fees.exemption")
    for name, block in (("penalty", penalty), ("fees", fees)):
        if not block.get("verified", True) and not block.get("unverified_note"):
            raise CatalogueError(
                f"parameters.{name}: unverified figures must say what is unverified"
            )


def validate_rule(rule: Any, catalogue: Catalogue, where: str) -> None:
    if not isinstance(rule, dict) or not rule:
        raise CatalogueError(f"{where}: a rule is a non-empty JSON object")
    unknown = set(rule) - RULE_KEYS
    if unknown:
        raise CatalogueError(f"{where}: unknown rule key(s) {sorted(unknown)}")
    vocabularies = {
        "kinds_any": set(KINDS),
        "categories_any": catalogue.category_codes,
        "features_all": catalogue.feature_codes,
        "features_any": catalogue.feature_codes,
        "features_none": catalogue.feature_codes,
    }
    for key, vocabulary in vocabularies.items():
        if key in rule:
            values = rule[key]
            if not isinstance(values, list) or not values:
                raise CatalogueError(f"{where}: {key} is a non-empty list")
            bad = [v for v in values if v not in vocabulary]
            if bad:
                raise CatalogueError(f"{where}: {key} has unknown value(s) {bad}")
    if "notice" in rule and (rule["notice"] not in NOTICE_RULE_KINDS or len(rule) > 1):
        raise CatalogueError(
            f"{where}: notice is one of {sorted(NOTICE_RULE_KINDS)}, and stands alone"
        )
    for key in ("children_likely_to_access", "regulated"):
        if key in rule and not isinstance(rule[key], bool):
            raise CatalogueError(f"{where}: {key} is true or false")
    if "users_over" in rule and (not isinstance(rule["users_over"], int) or rule["users_over"] < 0):
        raise CatalogueError(f"{where}: users_over is a whole number")
    if "fees" in rule and rule["fees"] not in FEES_RULES:
        raise CatalogueError(f"{where}: fees is one of {sorted(FEES_RULES)}")
    if "any" in rule:
        if not isinstance(rule["any"], list) or not rule["any"]:
            raise CatalogueError(f"{where}: any is a non-empty list of rules")
        for alternative in rule["any"]:
            validate_rule(alternative, catalogue, where)


def _validate_deadline(deadline: Any, where: str) -> None:
    if not isinstance(deadline, dict):
        raise CatalogueError(f"{where}: deadline is a JSON object")
    kind = deadline.get("kind")
    if kind not in DEADLINE_KINDS:
        raise CatalogueError(
            f"{where}: deadline kind {kind!r} is not one of {sorted(DEADLINE_KINDS)}"
        )
    if deadline.get("basis") not in BASES:
        raise CatalogueError(f"{where}: deadline basis must be one of {sorted(BASES)}")
    if kind == "fixed":
        _date(deadline.get("date"), f"{where}.deadline.date")
    if kind == "launch" and not isinstance(deadline.get("offset_days"), int):
        raise CatalogueError(f"{where}: a launch deadline needs offset_days")
    recurrence = deadline.get("recurrence")
    if recurrence is not None:
        if not isinstance(recurrence.get("months"), int) or recurrence["months"] < 1:
            raise CatalogueError(f"{where}: recurrence.months is a positive whole number")
        if recurrence.get("basis") not in BASES:
            raise CatalogueError(f"{where}: recurrence basis must be one of {sorted(BASES)}")
    new_service = deadline.get("new_service")
    if new_service is not None:
        if not isinstance(new_service.get("offset_days"), int):
            raise CatalogueError(f"{where}: new_service.offset_days is a whole number")
        if new_service.get("basis") not in BASES:
            raise CatalogueError(f"{where}: new_service basis must be one of {sorted(BASES)}")


# --- Evaluation -----------------------------------------------------------


def _fmt_users(n: int) -> str:
    return f"{n:,}"


def evaluate(
    rule: Mapping[str, Any],
    profile: Profile,
    features: frozenset[str],
    parameters: Mapping[str, Any] | None = None,
) -> tuple[bool, list[str]]:
    """Whether the rule holds for the profile, and the facts that made it hold."""
    reasons: list[str] = []
    if "notice" in rule:
        return False, []  # created by an Ofcom notice, never by a service's profile
    if "kinds_any" in rule:
        hit = [k for k in rule["kinds_any"] if k in profile.kinds()]
        if not hit:
            return False, []
        reasons.append(" and ".join(KINDS[k] for k in hit))
    if "regulated" in rule and rule["regulated"] and profile.exemption:
        return False, []
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
        reasons.append("has " + ", ".join(rule["features_all"]))
    if "features_any" in rule:
        hit = [f for f in rule["features_any"] if f in features]
        if not hit:
            return False, []
        reasons.append("has " + ", ".join(hit))
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
            ok, why = evaluate(alternative, profile, features, parameters)
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


def add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def first_due(deadline: Mapping[str, Any], profile: Profile) -> dt.date | None:
    """The first cycle's due date, or None for a duty with no fixed date."""
    kind = deadline["kind"]
    launch = profile.launch_date
    if kind == "fixed":
        due = dt.date.fromisoformat(deadline["date"])
        new_service = deadline.get("new_service")
        if new_service and launch and launch > due:
            return launch + dt.timedelta(days=new_service["offset_days"])
        return due
    if kind == "launch":
        if launch is None:
            return None
        return launch + dt.timedelta(days=deadline["offset_days"])
    return None


def describe_deadline(deadline: Mapping[str, Any]) -> str:
    """The deadline rule in words, naming its basis."""
    kind = deadline["kind"]
    basis = BASES[deadline["basis"]]
    parts: list[str]
    if kind == "fixed":
        parts = [f"first due {dt.date.fromisoformat(deadline['date']):%-d %b %Y} ({basis})"]
        new_service = deadline.get("new_service")
        if new_service:
            days = -new_service["offset_days"]
            when = "before launch" if days > 0 else "at launch"
            parts.append(
                f"for a service launched later, {days or ''} day{'s' if days > 1 else ''} "
                f"{when} ({BASES[new_service['basis']]})".replace("  ", " ")
            )
    elif kind == "launch":
        parts = [
            f"{abs(deadline['offset_days'])} days "
            f"{'before' if deadline['offset_days'] < 0 else 'after'} launch ({basis})"
        ]
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
    """A one-word kind for the deadline: fixed, launch, recurring, continuous, ..."""
    if deadline.get("recurrence"):
        return "recurring"
    return str(deadline["kind"])


def applicable_duties(catalogue: Catalogue, profile: Profile) -> list[Applicable]:
    """Every duty that applies to the profile, with the reason and the due rule."""
    features = catalogue.implied_features(profile.features)
    result = []
    for duty in catalogue.duties:
        if duty.get("retired"):
            continue
        ok, reasons = evaluate(duty["applies"], profile, features, catalogue.parameters)
        if not ok:
            continue
        if duty.get("scope") == "provider":
            reasons.append("one obligation for the provider, covering all its services")
        result.append(
            Applicable(
                code=duty["code"],
                section=duty["section"],
                title=duty["title"],
                why="; ".join(reasons) if reasons else "applies to every regulated service",
                due=first_due(duty["deadline"], profile),
                due_rule=due_rule_kind(duty["deadline"]),
                due_rule_text=describe_deadline(duty["deadline"]),
            )
        )
    return result


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
    return f"The profile no longer meets the rule: {describe_rule(duty['applies'])}."


def describe_rule(rule: Mapping[str, Any]) -> str:
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
        parts.append("has " + " and ".join(rule["features_all"]))
    if "features_any" in rule:
        parts.append("has " + " or ".join(rule["features_any"]))
    if "features_none" in rule:
        parts.append("has none of " + ", ".join(rule["features_none"]))
    if "users_over" in rule:
        parts.append(f"more than {_fmt_users(rule['users_over'])} monthly UK users")
    if rule.get("regulated"):
        parts.append("not exempt under Schedule 1")
    if "fees" in rule:
        parts.append("qualifying worldwide revenue at or above the fees threshold, not exempt")
    if "any" in rule:
        parts.append("(" + " or ".join(describe_rule(r) for r in rule["any"]) + ")")
    return ", ".join(parts)


def notice_powers(catalogue: Catalogue, profile: Profile) -> list[dict[str, str]]:
    """The Ofcom notice powers that could reach the profile, so a team can prepare."""
    features = catalogue.implied_features(profile.features)
    result = []
    for power in catalogue.notice_powers:
        ok, reasons = evaluate(power["applies"], profile, features, catalogue.parameters)
        if ok:
            facts = "; ".join(reasons)
            result.append(
                {
                    "section": power["section"],
                    "title": power["title"],
                    "why": f"{power['why']} Reaches it as: {facts}." if facts else power["why"],
                }
            )
    return result


def likely_categories(catalogue: Catalogue, profile: Profile) -> list[tuple[str, str]]:
    """The register categories the thresholds suggest, with the reason for each."""
    features = catalogue.implied_features(profile.features)
    hits: dict[str, str] = {}
    for category in catalogue.categories:
        ok, reasons = evaluate(category["likely_if"], profile, features)
        if ok:
            hits[category["code"]] = "; ".join(reasons)
    # s.95: a service meeting Category 1 and 2B goes only in the Category 1 part.
    for category in catalogue.categories:
        if category["code"] in hits:
            for superseded in category.get("supersedes", []):
                hits.pop(superseded, None)
    return sorted(hits.items())


# --- Profiles from JSON (the command and the API) -------------------------

PROFILE_FIELDS = {
    "name": "a string",
    "user_to_user": "true or false",
    "search": "true or false",
    "provider_pornography": "true or false",
    "category": '"1", "2A", "2B", "none", or a list of these',
    "uk_monthly_users": "a whole number, 0 or more",
    "children_likely_to_access": "true, false or null",
    "features": "a list of feature names",
    "launch_date": "a YYYY-MM-DD date",
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
    children = data.get("children_likely_to_access")
    if children is not None and not isinstance(children, bool):
        raise wrong("children_likely_to_access")
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
        **flags,
    )
