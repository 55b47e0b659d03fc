"""Ofcom's Codes measures and risk levels, as pure functions over catalogue data.

Which measures a service is recommended depends on its profile (size, features, register
category, whether children are likely to access it) and on the risk levels of its latest
risk assessments. A measure triggered by risk is *undetermined* (None) until the assessment
that would decide it has levels: the register says so rather than guessing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from obligations.catalogue.rules import features_in_words
from obligations.dates import display

# Which Code a family of measures belongs to, and which assessments set its risk levels.
FAMILY_OF_CODE = {"ICU": "illegal", "ICS": "illegal", "PCU": "children", "PCS": "children"}
# Each Code by name, in the order a register lists them.
CODE_TITLES = {
    "ICU": "Illegal content Code, user-to-user services",
    "ICS": "Illegal content Code, search services",
    "PCU": "Protection of children Code, user-to-user services",
    "PCS": "Protection of children Code, search services",
}


def in_force_from(issued_on: dt.date | None, params: Mapping[str, Any]) -> dt.date | None:
    """The day an issued measure comes into force: the end of the period of 21 days beginning
    with its issue day (s.43(4)(b)), so the issue date plus 21 days. Laying starts no clock:
    a measure not yet issued has no in-force date."""
    if issued_on is None:
        return None
    return issued_on + dt.timedelta(days=int(params["code_in_force"]["days_after_issue"]))


def level_for(likelihood: str, impact: str, params: Mapping[str, Any]) -> str:
    """The risk level the catalogue's matrix gives a likelihood and an impact."""
    return str(params["matrix"][likelihood][impact])


@dataclass(frozen=True)
class Facts:
    """What a service's recommended measures depend on."""

    users: int
    features: frozenset[str]
    categories: frozenset[str]
    children_likely: bool
    # family ("illegal", "children") -> harm code -> highest level rank; a family missing
    # from the mapping has no assessment with levels yet.
    levels: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Recommendation:
    measure: Mapping[str, Any]
    recommended: bool | None  # None: depends on a risk assessment not yet made
    why: str

    @property
    def code(self) -> str:
        return str(self.measure["code"])


def _fmt(n: int) -> str:
    return f"{n:,}"


class _Evaluator:
    def __init__(
        self,
        facts: Facts,
        family: str,
        params: Mapping[str, Any],
        harms: Mapping[str, Mapping[str, Any]],
        feature_names: Mapping[str, str],
    ) -> None:
        self.facts, self.family, self.params, self.harms = facts, family, params, harms
        self.feature_names = feature_names
        # A group is named by its harm of the same code, else by its parts' common prefix
        # ("CSEA: grooming" and "CSEA: image-based CSAM" are the group "CSEA"): the harm of the
        # group's own code comes last, so that its label is the one kept.
        self.group_names = {
            h["group"]: h["label"] if c == h["group"] else h["label"].split(":")[0]
            for c, h in sorted(harms.items(), key=lambda item: item[0] == item[1]["group"])
        }
        self.levels = facts.levels.get(family)
        # A service's measures ask the same few questions dozens of times: answered once.
        self.ranks = {item["code"]: int(item["rank"]) for item in params["levels"]}
        self.by_name = {
            "any": [c for c, h in harms.items() if h["family"].startswith(family)],
            "children_pc": [c for c, h in harms.items() if h["family"] == "children_pc"],
        }

    def named(self, harms: Any) -> list[str]:
        if isinstance(harms, str):
            return self.by_name[harms]
        return list(harms)

    def multi_risk(self) -> tuple[bool | None, str]:
        """Medium or high risk of two or more kinds (the catalogue's multi_risk rule): kinds are
        counted by group, so CSEA's parts (Table C rows 2A-2C) count once, as CSEA."""
        if self.levels is None:
            return None, f"no {self.family} risk assessment with levels yet"
        rule = self.params["multi_risk"]
        floor = self.ranks[rule["at_least"]]
        groups = sorted(
            {
                self.group_names[self.harms[c]["group"]]
                for c, rank in self.levels.items()
                if rank >= floor
            }
        )
        label = f"{rule['at_least']} or higher risk for {len(groups)} kind(s)"
        if groups:
            label += f" ({', '.join(groups)})"
        return len(groups) >= int(rule["kinds"]), label

    def risk(self, spec: Mapping[str, Any]) -> tuple[bool | None, str]:
        if self.levels is None:
            return None, f"no {self.family} risk assessment with levels yet"
        floor = self.ranks[spec["at_least"]]
        hit = [c for c in self.named(spec["harms"]) if self.levels.get(c, 0) >= floor]
        if hit:
            named = ", ".join(self.harms[c]["label"] for c in hit)
            return True, f"{spec['at_least']} or higher risk of {named}"
        return False, ""

    def evaluate(self, rule: Mapping[str, Any]) -> tuple[bool | None, list[str]]:
        """All of the rule's conditions: False if one fails, None if one cannot be known."""
        results = []
        for ok, why in self._conditions(rule):
            if ok is False:  # the rest need not be worked out (nor their reasons written)
                return False, []
            results.append((ok, why))
        if any(ok is None for ok, _ in results):
            return None, [why for ok, why in results if ok is None]
        return True, [why for _, why in results if why]

    def _conditions(self, rule: Mapping[str, Any]) -> Iterator[tuple[bool | None, str]]:
        """Each of the rule's conditions, in a fixed order: whether it holds, and why."""
        facts = self.facts
        if "large" in rule:
            large = int(self.params["large_users"])
            is_large = facts.users > large
            yield (
                is_large == rule["large"],
                f"{'large' if is_large else 'not large'}: {_fmt(facts.users)} monthly UK "
                f"users ({'more than' if is_large else 'at most'} {_fmt(large)})",
            )
        if "multi_risk" in rule:
            multi, why = self.multi_risk()
            yield None if multi is None else multi == rule["multi_risk"], why
        if "risk" in rule:
            yield self.risk(rule["risk"])
        if "users_over" in rule:
            yield (
                facts.users > rule["users_over"],
                f"{_fmt(facts.users)} monthly UK users (more than {_fmt(rule['users_over'])})",
            )
        if "features_any" in rule:
            hit = [f for f in rule["features_any"] if f in facts.features]
            yield bool(hit), f"has {features_in_words(hit, self.feature_names)}"
        if "features_none" in rule:
            hit = [f for f in rule["features_none"] if f in facts.features]
            named = features_in_words(rule["features_none"], self.feature_names)
            yield not hit, f"has none of {named}"
        if "categories_any" in rule:
            hit = [c for c in rule["categories_any"] if c in facts.categories]
            yield bool(hit), f"Category {', '.join(hit)}"
        if "children_likely" in rule:
            yield (
                facts.children_likely == rule["children_likely"],
                "children likely to access it"
                if facts.children_likely
                else "children not likely to access it",
            )
        if "any" in rule:
            yield self.any(rule["any"])

    def any(self, alternatives: Iterable[Mapping[str, Any]]) -> tuple[bool | None, str]:
        unknown = []
        for alternative in alternatives:
            ok, reasons = self.evaluate(alternative)
            if ok:
                return True, "; ".join(reasons)
            if ok is None:
                unknown += reasons
        if unknown:
            return None, "; ".join(dict.fromkeys(unknown))
        return False, ""


def recommend(
    measures: Iterable[Mapping[str, Any]],
    facts: Facts,
    *,
    code_families: Iterable[str],
    params: Mapping[str, Any],
    harms: Mapping[str, Mapping[str, Any]],
    feature_names: Mapping[str, str],
    today: dt.date,
) -> list[Recommendation]:
    """Every measure of the Codes that apply to the service, with whether it is recommended
    and why. Measures not yet in force are listed as not recommended, saying when."""
    families = set(code_families)
    evaluators: dict[str, _Evaluator] = {}
    result = []
    for measure in measures:
        if measure["code_family"] not in families:
            continue
        starts: dt.date | None = measure["effective_from"]
        if measure["status"] != "in_force" or starts is None:
            result.append(Recommendation(measure, False, f"{measure['status']}, not in force"))
            continue
        if starts > today:
            result.append(Recommendation(measure, False, f"in force from {display(starts)}"))
            continue
        family = FAMILY_OF_CODE[measure["code_family"]]
        if family not in evaluators:
            evaluators[family] = _Evaluator(facts, family, params, harms, feature_names)
        ok, reasons = evaluators[family].evaluate(measure["recommended_for"])
        if ok is None:
            why = "Depends on the risk assessment: " + "; ".join(dict.fromkeys(reasons))
        elif ok:
            why = "; ".join(reasons) or "recommended for every service the Code covers"
        else:
            why = "its conditions are not met"
        result.append(Recommendation(measure, ok, why))
    return result
