"""Reads of the loaded catalogue: the current version, its duties and parameters, a service's
profile."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from obligations.catalogue.models import (
    CatalogueVersion,
    Duty,
    Exemption,
    Feature,
    RegisterCategory,
)
from obligations.catalogue.rules import Catalogue, Profile
from obligations.providers.models import RevenuePeriod, Service


def service_profile(service: Service, *, today: dt.date | None = None) -> Profile:
    """The engine's view of a saved service (three queries: revenue and its M2M fields)."""
    revenue = (
        RevenuePeriod.objects.filter(provider_id=service.provider_id, complete=True)
        .order_by("-end")
        .values_list("amount_gbp", flat=True)
        .first()
    )
    return _profile(service, service.categories.all(), service.features.all(), revenue)


def _profile(service: Service, categories: Any, features: Any, revenue: Decimal | None) -> Profile:
    return Profile(
        name=service.name,
        user_to_user=service.user_to_user,
        search=service.search,
        provider_pornography=service.provider_pornography,
        categories=frozenset(c.code for c in categories),
        uk_monthly_users=service.uk_monthly_users,
        children_likely_to_access=service.children_likely_to_access,
        children_access_assessed_on=service.children_access_assessed_on,
        features=frozenset(f.code for f in features),
        launch_date=service.launch_date,
        exemption=service.exemption.code if service.exemption_id else None,  # type: ignore[union-attr]
        uk_significant_users=service.uk_significant_users,
        uk_target_market=service.uk_target_market,
        uk_material_risk=service.uk_material_risk,
        qualifying_worldwide_revenue=Decimal(revenue) if revenue is not None else None,
    )


def latest_catalogue_version() -> CatalogueVersion | None:
    """The catalogue version loaded last: the one in force."""
    return CatalogueVersion.objects.order_by("-loaded_at", "-pk").first()


def duty_entry(duty: Duty) -> dict[str, Any]:
    """A loaded duty as the engine reads a catalogue entry (catalogue.commencement too)."""
    entry = {
        "code": duty.code,
        "section": duty.section,
        "title": duty.title,
        "scope": duty.scope,
        "applies": duty.applies,
        "deadline": duty.deadline,
        "in_force_from": duty.in_force_from,
        "commencement": duty.commencement,
        "verified": duty.verified,
        "pk": duty.pk,
    }
    if duty.applies_note:  # the file gives applies_from and its note together, or neither
        entry["applies_from"], entry["applies_note"] = duty.applies_from, duty.applies_note
    return entry


def loaded_catalogue() -> Catalogue:
    """The catalogue as loaded in the database (retired entries left out)."""
    latest = latest_catalogue_version()
    if latest is None:
        raise CatalogueVersion.DoesNotExist(
            "No catalogue is loaded: run `python manage.py load_catalogue`."
        )
    return Catalogue(
        version=latest.version,
        published=latest.published,
        sha256=latest.sha256,
        features=[
            {"code": f.code, "label": f.label, "implies": f.implies}
            for f in Feature.objects.filter(retired_at__isnull=True)
        ],
        categories=[
            {"code": c.code, "label": c.label, "likely_if": c.likely_if, "supersedes": c.supersedes}
            for c in RegisterCategory.objects.all()
        ],
        exemptions=[
            {"code": e.code, "label": e.label, "paragraph": e.paragraph}
            for e in Exemption.objects.all()
        ],
        duties=[duty_entry(d) for d in Duty.objects.filter(retired_at__isnull=True)],
        parameters=latest.parameters,
        notice_powers=latest.notice_powers,
    )


def catalogue_parameters() -> dict[str, Any]:
    """The figures of the loaded catalogue (penalty cap, fees), with their sources."""
    latest = CatalogueVersion.objects.order_by("-loaded_at", "-pk").values("parameters").first()
    if latest is None:
        raise CatalogueVersion.DoesNotExist(
            "No catalogue is loaded: run `python manage.py load_catalogue`."
        )
    return dict(latest["parameters"])
