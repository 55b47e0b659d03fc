"""What loading a catalogue would change, and whether the load may go ahead."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from obligations.assessments.codes import in_force_from
from obligations.catalogue.commencement import effective_from
from obligations.catalogue.models import (
    CatalogueVersion,
    CodeMeasure,
    Duty,
    DutyScope,
    Exemption,
    Feature,
    HarmKind,
    RegisterCategory,
    RiskFactor,
)
from obligations.catalogue.rules import Catalogue, CatalogueError
from obligations.catalogue.selectors import latest_catalogue_version
from obligations.dates import display


@dataclass
class CatalogueDiff:
    version: str
    added: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)
    retired: list[str] = field(default_factory=list)
    vocabulary_changed: bool = False
    # Harm kinds and Codes measures: a regulatory change opens cycles on affected services.
    harms_added: list[str] = field(default_factory=list)
    measures_changed: list[str] = field(default_factory=list)
    codes_changed: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.added
            or self.changed
            or self.retired
            or self.vocabulary_changed
            or self.codes_changed
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "changed": self.changed,
            "retired": self.retired,
            "harms_added": self.harms_added,
            "measures_changed": self.measures_changed,
        }


DUTY_FIELDS = (
    "title",
    "section",
    "part",
    "instrument",
    "summary",
    "in_force_from",
    "commencement",
    "applies_from",
    "applies_note",
    "effective_from",
    "scope",
    "assessment_kind",
    "applies",
    "deadline",
    "evidence",
    "source_url",
    "verified",
    "unverified_note",
)


def duty_values(entry: dict[str, Any]) -> dict[str, Any]:
    values = {name: entry.get(name) for name in DUTY_FIELDS}
    for name in ("in_force_from", "applies_from"):
        values[name] = dt.date.fromisoformat(entry[name]) if entry.get(name) else None
    values["applies_note"] = entry.get("applies_note") or ""
    values["effective_from"] = effective_from(entry)
    values["scope"] = entry.get("scope") or DutyScope.SERVICE
    values["assessment_kind"] = entry.get("assessment_kind") or ""
    values["evidence"] = entry.get("evidence") or ""
    values["verified"] = entry.get("verified", True)
    values["unverified_note"] = entry.get("unverified_note") or ""
    return values


def diff_catalogue(catalogue: Catalogue, *, allow_retire: bool = False) -> CatalogueDiff:
    """What loading `catalogue` would add, change and retire (reads only); CatalogueError,
    giving every reason, when the load would be refused (`check_catalogue_load`)."""
    diff = CatalogueDiff(version=catalogue.version)
    existing = {d.code: d for d in Duty.objects.all()}
    new_codes = set()
    for entry in catalogue.duties:
        new_codes.add(entry["code"])
        duty = existing.get(entry["code"])
        if duty is None:
            diff.added.append(entry["code"])
            continue
        values = duty_values(entry)
        changed = [name for name in DUTY_FIELDS if getattr(duty, name) != values[name]]
        if duty.retired_at is not None:
            changed.append("retired_at")
        if changed:
            diff.changed[entry["code"]] = changed
    diff.retired = sorted(
        code for code, duty in existing.items() if code not in new_codes and duty.retired_at is None
    )
    vocab_now = (
        {
            f["code"]: (f["label"], f.get("description", ""), f.get("implies", []))
            for f in catalogue.features
        },
        {
            c["code"]: (c["label"], c["threshold"], c["likely_if"], c.get("supersedes", []))
            for c in catalogue.categories
        },
        {
            e["code"]: (e["label"], e["paragraph"], e.get("verified", True))
            for e in catalogue.exemptions
        },
    )
    vocab_db = (
        {
            f.code: (f.label, f.description, f.implies)
            for f in Feature.objects.filter(retired_at__isnull=True)
        },
        {
            c.code: (c.label, c.threshold, c.likely_if, c.supersedes)
            for c in RegisterCategory.objects.all()
        },
        {e.code: (e.label, e.paragraph, e.verified) for e in Exemption.objects.all()},
    )
    latest = latest_catalogue_version()
    rules_now = (catalogue.parameters, catalogue.notice_powers)
    rules_db = (latest.parameters, latest.notice_powers) if latest else None
    diff.vocabulary_changed = vocab_now != vocab_db or rules_now != rules_db
    _diff_codes(catalogue, diff)
    check_catalogue_load(catalogue, diff, latest=latest, allow_retire=allow_retire)
    return diff


# A load that would retire more than this share of the current duties is refused unless the
# loader says it is meant (--allow-retire): a truncated or wrong file must not empty the register.
MAX_RETIRE_SHARE = 0.10


def _version_key(version: str) -> tuple[int, ...] | None:
    """A version's place in the order, number by number (2026.11.10 comes after 2026.11.9);
    None for a version loaded before the schema required numbers."""
    parts = version.split(".")
    return tuple(map(int, parts)) if all(p.isascii() and p.isdigit() for p in parts) else None


def check_catalogue_load(
    catalogue: Catalogue,
    diff: CatalogueDiff,
    *,
    latest: CatalogueVersion | None,
    allow_retire: bool,
) -> None:
    """Refuse (CatalogueError, every reason) a load that would go back or retire too much.

    A catalogue only goes forward: its version must come after the loaded one's, number by
    number, and its published date must not be earlier. A version string names one content:
    loading it again with other content (another sha256) is refused, the same file is a no-op.
    """
    problems = []
    same = CatalogueVersion.objects.filter(version=catalogue.version).first()
    if same is not None and same.sha256 != catalogue.sha256:
        problems.append(
            f"version: {catalogue.version} was loaded on "
            f"{display(timezone.localdate(same.loaded_at))} with other "
            f"content (sha256 {same.sha256[:12]}..., this file {catalogue.sha256[:12]}...): "
            f"give the changed catalogue a new version"
        )
    elif latest is not None and same is not None and same != latest:
        problems.append(
            f"version: {catalogue.version} is older than the loaded version {latest.version}: "
            f"a catalogue only goes forward"
        )
    elif latest is not None and same is None:
        new_key, latest_key = _version_key(catalogue.version), _version_key(latest.version)
        if new_key is not None and latest_key is not None and new_key <= latest_key:
            problems.append(
                f"version: {catalogue.version} does not come after the loaded version "
                f"{latest.version}: a catalogue only goes forward"
            )
        if catalogue.published < latest.published:
            problems.append(
                f"published: {catalogue.published} is before {latest.published}, when the "
                f"loaded version {latest.version} was published: a catalogue only goes forward"
            )
    # Current: loaded and not retired, whether in force or not.
    current = Duty.objects.filter(retired_at__isnull=True).count()
    if not allow_retire and len(diff.retired) > MAX_RETIRE_SHARE * current:
        problems.append(
            f"duties: loading would retire {len(diff.retired)} of the {current} current duties "
            f"(more than {MAX_RETIRE_SHARE:.0%}): {', '.join(diff.retired)}; if that is meant, "
            f"load with --allow-retire"
        )
    if problems:
        raise CatalogueError(problems)


HARM_FIELDS = (
    "label",
    "family",
    "group",
    "assessments",
    "effective_from",
    "effective_until",
    "assess_by",
    "source",
    "source_url",
    "verified",
    "unverified_note",
)


FACTOR_FIELDS = (
    "label",
    "group",
    "assessments",
    "brought_in",
    "source_url",
    "verified",
    "unverified_note",
)


# What a measure asks and whom it is for: a change to these is a regulatory change.
MEASURE_SUBSTANCE = ("code_family", "summary", "recommended_for", "status", "effective_from")


MEASURE_FIELDS = (
    *MEASURE_SUBSTANCE,
    "issued_on",
    "area",
    "basis",
    "source_url",
    "verified",
    "unverified_note",
)


DATE_FIELDS = {"effective_from", "effective_until", "assess_by", "issued_on"}


def field_values(entry: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    values = {}
    for name in names:
        value = entry.get(name)
        if name in DATE_FIELDS:
            value = dt.date.fromisoformat(value) if value else None
        elif name in ("verified",):
            value = entry.get(name, True)
        elif name in ("unverified_note", "source"):
            value = value or ""
        elif name == "brought_in":
            value = value or {}
        values[name] = value
    return values


def measure_values(entry: dict[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    """A measure's row as the catalogue gives it; its in-force date follows from its issue."""
    values = field_values(entry, MEASURE_FIELDS)
    params = catalogue.parameters["assessment"]
    values["effective_from"] = in_force_from(values["issued_on"], params)
    return values


def _diff_codes(catalogue: Catalogue, diff: CatalogueDiff) -> None:
    """What the version adds or changes among harm kinds, risk factors and measures. Only a
    register that already had them sees a regulatory change (not the first load)."""
    harms = {h.code: h for h in HarmKind.objects.all()}
    factors = {f.code: f for f in RiskFactor.objects.all()}
    measures = {x.code: x for x in CodeMeasure.objects.prefetch_related("duties").order_by("code")}

    def differs(obj: Any, values: dict[str, Any]) -> bool:
        return obj.retired_at is not None or any(getattr(obj, k) != v for k, v in values.items())

    harm_changes = [
        h["code"]
        for h in catalogue.harm_kinds
        if h["code"] not in harms or differs(harms[h["code"]], field_values(h, HARM_FIELDS))
    ]
    factor_changes = [
        f["code"]
        for f in catalogue.risk_factors
        if f["code"] not in factors or differs(factors[f["code"]], field_values(f, FACTOR_FIELDS))
    ]
    measure_changes, substantive = [], []
    for entry in catalogue.measures:
        known = measures.get(entry["code"])
        values = measure_values(entry, catalogue)
        duties = sorted(entry["duties"])
        if known is None:
            measure_changes.append(entry["code"])
            substantive.append(entry["code"])
            continue
        now_duties = sorted(d.code for d in known.duties.all())
        if differs(known, values) or now_duties != duties:
            measure_changes.append(entry["code"])
            if (
                known.retired_at is not None
                or now_duties != duties
                or any(getattr(known, k) != values[k] for k in MEASURE_SUBSTANCE)
            ):
                substantive.append(entry["code"])
    listed = (
        {h["code"] for h in catalogue.harm_kinds},
        {f["code"] for f in catalogue.risk_factors},
        {x["code"] for x in catalogue.measures},
    )
    retiring = (
        any(code not in listed[0] and h.retired_at is None for code, h in harms.items())
        or any(code not in listed[1] and f.retired_at is None for code, f in factors.items())
        or any(code not in listed[2] and x.retired_at is None for code, x in measures.items())
    )
    diff.codes_changed = bool(harm_changes or factor_changes or measure_changes or retiring)
    if harms:
        diff.harms_added = [code for code in harm_changes if code not in harms]
    if measures:
        diff.measures_changed = substantive
