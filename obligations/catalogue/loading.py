"""Loading a catalogue file into the database, with the Codes it carries, and applying it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from obligations.assessments.actions import regulatory_change
from obligations.catalogue.diff import (
    FACTOR_FIELDS,
    HARM_FIELDS,
    CatalogueDiff,
    diff_catalogue,
    duty_values,
    field_values,
    measure_values,
)
from obligations.catalogue.models import (
    CatalogueVersion,
    CodeMeasure,
    Duty,
    Exemption,
    Feature,
    HarmKind,
    RegisterCategory,
    RiskFactor,
)
from obligations.catalogue.rules import Catalogue
from obligations.providers.models import Service
from obligations.register.apply import apply_catalogue
from obligations.register.states import EventSource


@transaction.atomic
def load_catalogue(
    *, actor: User, catalogue: Catalogue, allow_retire: bool = False
) -> CatalogueDiff:
    """Load a catalogue version: idempotent; retires, never deletes; refused, with nothing
    written, when it would go back or retire too much (`check_catalogue_load`).

    After a change every service is re-applied, so new duties reach the register.
    """
    diff = diff_catalogue(catalogue, allow_retire=allow_retire)
    if diff.empty and CatalogueVersion.objects.filter(sha256=catalogue.sha256).exists():
        return diff
    now = timezone.now()
    version, _ = CatalogueVersion.objects.update_or_create(
        version=catalogue.version,
        defaults={
            "published": catalogue.published,
            "sha256": catalogue.sha256,
            "summary": diff.as_dict(),
            "loaded_at": now,
            "parameters": catalogue.parameters,
            "notice_powers": catalogue.notice_powers,
        },
    )
    for entry in catalogue.features:
        Feature.objects.update_or_create(
            code=entry["code"],
            defaults={
                "label": entry["label"],
                "description": entry.get("description", ""),
                "implies": entry.get("implies", []),
                "retired_at": None,
            },
        )
    Feature.objects.exclude(code__in=catalogue.feature_codes).filter(
        retired_at__isnull=True
    ).update(retired_at=now)
    for entry in catalogue.categories:
        RegisterCategory.objects.update_or_create(
            code=entry["code"],
            defaults={
                "label": entry["label"],
                "threshold": entry["threshold"],
                "likely_if": entry["likely_if"],
                "supersedes": entry.get("supersedes", []),
                "source": entry["source"],
                "source_url": entry["source_url"],
            },
        )
    for entry in catalogue.exemptions:
        Exemption.objects.update_or_create(
            code=entry["code"],
            defaults={
                "label": entry["label"],
                "paragraph": entry["paragraph"],
                "source_url": entry["source_url"],
                "verified": entry.get("verified", True),
                "unverified_note": entry.get("unverified_note", ""),
            },
        )
    touched = set(diff.added) | set(diff.changed)
    for entry in catalogue.duties:
        if entry["code"] in touched:
            Duty.objects.update_or_create(
                code=entry["code"],
                defaults={**duty_values(entry), "catalogue_version": version, "retired_at": None},
            )
    Duty.objects.filter(code__in=diff.retired).update(retired_at=now)
    if diff.codes_changed:
        _load_codes(catalogue, version, diff, now)
    if touched or diff.retired or diff.vocabulary_changed:
        for service in Service.objects.order_by("pk"):
            apply_catalogue(actor=actor, service=service, source=EventSource.COMMAND)
    if diff.harms_added or diff.measures_changed:
        regulatory_change(actor=actor, diff=diff, catalogue=catalogue)
    return diff


def _upsert(
    model: type[HarmKind] | type[RiskFactor],
    entries: list[dict[str, Any]],
    names: tuple[str, ...],
    version: CatalogueVersion,
    now: dt.datetime,
) -> None:
    """Bring a catalogue vocabulary's rows in line with the file: retire, never delete."""
    for entry in entries:
        model.objects.update_or_create(
            code=entry["code"],
            defaults={
                **field_values(entry, names),
                "catalogue_version": version,
                "retired_at": None,
            },
        )
    model.objects.exclude(code__in=[e["code"] for e in entries]).filter(
        retired_at__isnull=True
    ).update(retired_at=now)


def _load_codes(
    catalogue: Catalogue, version: CatalogueVersion, diff: CatalogueDiff, now: dt.datetime
) -> None:
    _upsert(HarmKind, catalogue.harm_kinds, HARM_FIELDS, version, now)
    _upsert(RiskFactor, catalogue.risk_factors, FACTOR_FIELDS, version, now)
    duties = {d.code: d for d in Duty.objects.all()}
    existing = {x.code: x for x in CodeMeasure.objects.all()}
    substantive = set(diff.measures_changed) | {
        x["code"] for x in catalogue.measures if x["code"] not in existing
    }
    for entry in catalogue.measures:
        values = {
            **measure_values(entry, catalogue),
            "catalogue_version": version,
            "retired_at": None,
        }
        if entry["code"] in substantive:
            values["changed_in"] = version
        measure, _ = CodeMeasure.objects.update_or_create(code=entry["code"], defaults=values)
        measure.duties.set([duties[code] for code in entry["duties"]])
    CodeMeasure.objects.exclude(code__in=[x["code"] for x in catalogue.measures]).filter(
        retired_at__isnull=True
    ).update(retired_at=now)
