"""The API's front page: every endpoint, with what it is for, so that an auditor or a
script's author finds the exports, audit packs and dashboard without reading the schema."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.routers import APIRootView

# (name shown, URL name in the API's namespace, its arguments, what it is for)
ENDPOINTS: tuple[tuple[str, str, dict[str, str], str], ...] = (
    (
        "obligations",
        "obligation-list",
        {},
        "The register: one row per obligation, filterable; "
        "`as_of=YYYY-MM-DD` shows it as it stood that day.",
    ),
    (
        "obligations export (CSV)",
        "obligation-export",
        {"kind": "csv"},
        "The register as a CSV file, with the list's filters and `as_of`.",
    ),
    (
        "obligations export (XLSX)",
        "obligation-export",
        {"kind": "xlsx"},
        "The register as a spreadsheet: dates as dates, the header frozen, every column filtered.",
    ),
    (
        "obligations export (JSON)",
        "obligation-export",
        {"kind": "json"},
        "The register as one JSON document, with the filters it was made with.",
    ),
    (
        "audit packs",
        "audit-pack",
        {},
        "A signed ZIP of a service's or provider's register, events and evidence: "
        "`?service=ID` or `?provider=ID`.",
    ),
    (
        "audit pack public key",
        "audit-pack-key",
        {},
        "The Ed25519 public key that verifies audit packs (`manage.py verify_audit_pack`).",
    ),
    (
        "dashboard",
        "dashboard",
        {},
        "The organisation's figures: met, overdue, due soon, by "
        "service and duty, and the 12-month trend.",
    ),
    (
        "applicability",
        "applicability",
        {},
        "POST a service's description; answers which "
        "duties of the Act apply, why and since when, saving nothing.",
    ),
    ("services", "service-list", {}, "The online services the register covers."),
    ("providers", "provider-list", {}, "The providers of those services, and their revenue."),
    ("organisations", "organisation-list", {}, "The organisations you belong to."),
    (
        "duties",
        "duty-list",
        {},
        "The catalogue: the Act's duties, each with its section and commencement.",
    ),
    ("events", "event-list", {}, "The record: who changed what in the register, and when."),
    (
        "evidence",
        "evidence-list",
        {},
        "Evidence items, each with its SHA-256; files download through the tracker only.",
    ),
    (
        "technology notices",
        "technology-notice-list",
        {},
        "Ofcom's Technology Notices (s.121) and their stages.",
    ),
    ("ofcom notices", "ofcom-notice-list", {}, "Ofcom's other notices and their deadlines."),
    ("reminders", "reminder-list", {}, "Reminders sent, and to be sent, about deadlines."),
    ("risk assessments", "risk-assessment-list", {}, "Risk assessments per kind of harm."),
    (
        "measure decisions",
        "measure-decision-list",
        {},
        "The decision on each of Ofcom's Codes measures, with its rationale.",
    ),
)


class TrackerRoot(APIRootView):
    """The Online Safety Act register's API. Send `Authorization: Token <key>` (API tokens are
    made in the admin) or sign in. Every endpoint, with what it is for, is listed below; the
    full reference is the OpenAPI schema (`schema`) and its pages (`docs`)."""

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        namespace = request.resolver_match.namespace if request.resolver_match else ""
        listed: dict[str, dict[str, str]] = {}
        for label, name, arguments, description in ENDPOINTS:
            url = reverse(
                f"{namespace}:{name}" if namespace else name,
                kwargs=arguments,
                # Plain links, whatever the page was asked for as (`/api/v1/.json`): only the
                # router's lists have `.json` forms, and an export's format is its `kind`.
                request=request,
            )
            listed[label] = {"url": url, "description": description}
        for label, name, description in (
            ("schema", "api-schema", "The OpenAPI 3 schema of this API."),
            ("docs", "api-docs", "The schema as browsable pages (Swagger UI)."),
        ):
            listed[label] = {"url": reverse(name, request=request), "description": description}
        return Response(listed)
