"""The admin's home page grouped for the people who use it, not by Django app: the work,
the services and providers it is about, the reference the law supplies, and access. Every
model the admin shows is still listed (the rest under "Other"), and an app's own page
(/admin/<app>/) keeps Django's list."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest

# (section, its key, the obligations models in it, in order)
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "Work",
        "work",
        (
            "obligation",
            "ofcomnotice",
            "technologynotice",
            "riskassessment",
            "measuredecision",
            "reminder",
        ),
    ),
    ("Services and providers", "services", ("organisation", "provider", "service")),
    (
        "Reference",
        "reference",
        (
            "catalogueversion",
            "duty",
            "codemeasure",
            "harmkind",
            "riskfactor",
            "feature",
            "registercategory",
            "exemption",
        ),
    ),
    ("Access", "access", ("apitoken", "calendarfeed", "accesslog")),
)


class TrackerAdminSite(admin.AdminSite):
    # The sidebar's 300 px cost the register its owner and due columns at 1366 px; the home
    # page's sections, the breadcrumbs and the links above every page do its work.
    enable_nav_sidebar = False

    def get_app_list(
        self, request: HttpRequest, app_label: str | None = None
    ) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        ours = next((app for app in apps if app["app_label"] == "obligations"), None)
        if ours is None:
            return apps
        by_name = {model["object_name"].lower(): model for model in ours["models"]}
        sections = []
        for name, key, models in SECTIONS:
            listed = [by_name.pop(model) for model in models if model in by_name]
            if listed:
                sections.append({**ours, "name": name, "app_label": key, "models": listed})
        if by_name:
            sections.append({**ours, "name": "Other", "app_label": "other",
                             "models": list(by_name.values())})  # fmt: skip
        others = [app for app in apps if app["app_label"] != "obligations"]
        return [*sections, *others]


class TrackerAdminConfig(AdminConfig):
    default_site = "obligations.adminsite.TrackerAdminSite"
