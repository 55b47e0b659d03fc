"""Who did what is true: every write path names the person who acted, and no one else.

The write paths are found from the running project: the admin's registered models (their add
and change forms, actions and extra views), the API's routes that accept writes, and the
management commands. Each must be walked in WRITE_PATHS below, or listed in NOT_WRITES with
the reason; a new path with neither fails `test_every_write_path_is_walked`.

Walking a path snapshots every column that records an actor (events, field history, the admin
log, uploads, decisions, approvals...), makes the write as one person, and asserts that every
actor the write recorded is that person.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from obligations.access.tokens import create_api_token, create_calendar_feed
from obligations.access.users import get_system_user
from obligations.api.urls import urlpatterns
from obligations.assessments.actions import start_assessment
from obligations.catalogue.models import CodeMeasure
from obligations.notices.actions import change_notice
from obligations.notices.models import NoticeEventKind, NoticeKind, NoticeStage
from obligations.register.evidence import add_evidence_link
from obligations.register.states import CycleStatus, EventSource
from obligations.reminders.endpoints import create_webhook
from obligations.reminders.models import WebhookKind
from tests.conftest import TODAY
from tests.helpers import OPERATOR_APPS, admin_form_data, signed_in_client
from tests.world import World

User = get_user_model()
SOURCE = EventSource.ADMIN
PASSWORD = "pw-for-tests-only"

# --- Which columns record who acted -----------------------------------------

# Foreign keys to a user that name someone other than the actor: whom the row is about.
SUBJECTS = {
    ("obligations", "obligation", "owner"),
    ("obligations", "membership", "user"),
    ("obligations", "reminder", "recipient"),
}


def actor_columns() -> list[tuple[type[models.Model], str]]:
    """Every foreign key to a user in the tracker's tables and the admin log, except the
    SUBJECTS; on a history table only `history_user` (its other columns copy the row's)."""
    found: list[tuple[type[models.Model], str]] = []
    for model in [*apps.get_app_config("obligations").get_models(), LogEntry]:
        historical = model.__name__.startswith("Historical")
        for field in model._meta.concrete_fields:
            if not (field.is_relation and field.related_model is User):
                continue
            if historical and field.name != "history_user":
                continue
            key = (model._meta.app_label, model._meta.model_name, field.name)
            if key not in SUBJECTS:
                found.append((model, field.attname))
    return found


def snapshot() -> dict[tuple[str, str], dict[int, Any]]:
    return {
        (model._meta.label, column): dict(
            model._base_manager.exclude(**{column: None}).values_list("pk", column)
        )
        for model, column in actor_columns()
    }


def recorded_actors(before: dict[tuple[str, str], dict[int, Any]]) -> dict[str, set[int]]:
    """Each column's actors that the write set (new rows, or a value that changed)."""
    after = snapshot()
    recorded: dict[str, set[int]] = {}
    for key, rows in after.items():
        was = before.get(key, {})
        new = {value for pk, value in rows.items() if was.get(pk) != value}
        if new:
            recorded[".".join(key)] = new
    return recorded


def test_the_actor_columns_are_the_ones_we_know():
    """A new foreign key to a user is either an actor column (checked on every path below)
    or named in SUBJECTS: deciding which is part of adding it."""
    names = {f"{model._meta.label}.{column}" for model, column in actor_columns()}
    assert {
        "obligations.Event.actor_id",
        "obligations.NoticeEvent.actor_id",
        "obligations.Evidence.uploaded_by_id",
        "obligations.ObligationCycle.reviewer_id",
        "obligations.HistoricalService.history_user_id",
        "admin.LogEntry.user_id",
    } <= names
    assert not {n for n in names if n.endswith(("owner_id", "recipient_id"))}


# --- The world the paths act in --------------------------------------------


def api(user: Any, how: str) -> APIClient:
    client = APIClient()
    if how == "token":
        _, key = create_api_token(actor=user, name="script", read_only=False)
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    else:
        client.force_login(user)
    return client


def posted(response: Any, *codes: int) -> None:
    assert response.status_code in codes, response.content.decode()[:2000]


def changed_form(client: Client, url: str, **changes: Any) -> dict[str, Any]:
    """The change form's data as rendered, with `changes` applied."""
    page = client.get(url)
    assert page.status_code == 200
    data = admin_form_data(page)
    data.update(changes)
    return data


# --- The paths -------------------------------------------------------------
# Each takes the world, prepares what it needs (as others), and returns (actor, act): the
# person and the write itself, which runs with the snapshot taken.

Act = Callable[[], None]
Path_ = Callable[[World], tuple[Any, Act]]


def admin_page(
    model: str,
    who: str,
    changes: Callable[[World], dict[str, Any]],
    obj: Callable[[World], Any] | None = None,
    *,
    ok: tuple[int, ...] = (302,),
) -> Path_:
    """The add page of `model` (or the change page of `obj`) as `who` sees it, submitted with
    `changes` made to what the page shows: the page's own form, not a copy of its fields."""

    def path(w: World) -> tuple[Any, Act]:
        client = signed_in_client(w.people[who])
        if obj is None:
            url = reverse(f"admin:{model.replace('.', '_')}_add")
        else:
            url = reverse(f"admin:{model.replace('.', '_')}_change", args=[obj(w).pk])
        data = changed_form(client, url, **changes(w))
        return w.people[who], lambda: posted(client.post(url, data), *ok)

    return path


def admin_riskassessment_change(w: World) -> tuple[Any, Act]:
    ob = w.started("U2U-ILLEGAL-RA")
    assessment = start_assessment(actor=w.people["casey"], cycle=ob.current_cycle, source=SOURCE)
    client = signed_in_client(w.people["rita"])
    url = reverse("admin:obligations_riskassessment_change", args=[assessment.pk])
    data = changed_form(client, url, understand_notes="We read Ofcom's register of risks.")
    first = assessment.entries.order_by("pk").first()
    prefix = next(k for k, v in data.items() if k.endswith("-id") and str(v) == str(first.pk))[:-3]
    data.update(
        {f"{prefix}-likelihood": "low", f"{prefix}-impact": "low", f"{prefix}-rationale": "Rare."}
    )
    return w.people["rita"], lambda: posted(client.post(url, data), 302)


def admin_action(model: str, action: str, actor: str, prepare: Callable[[World], list[int]]):  # type: ignore[no-untyped-def]
    def path(w: World) -> tuple[Any, Act]:
        ids = prepare(w)
        client = signed_in_client(w.people[actor])
        url = reverse(f"admin:obligations_{model}_changelist")
        data: dict[str, Any] = {"action": action, "_selected_action": ids}
        if action == "bulk_assign_owner":
            data.update({"apply": "1", "owner": w.people["rita"].pk})
        return w.people[actor], lambda: posted(client.post(url, data), 302)

    return path


def _obligations(w: World) -> list[int]:
    return [w.obligation().pk, w.obligation("U2U-REPORTING").pk]


def _started(w: World) -> list[int]:
    ob = w.started()
    add_evidence_link(
        actor=w.people["casey"], cycle=ob.current_cycle, url="https://wiki.test/x", title="x",
        source=SOURCE,
    )  # fmt: skip
    return [ob.pk]


def _own_token(w: World) -> list[int]:
    token, _ = create_api_token(actor=w.people["casey"], name="t")
    return [token.pk]


def _own_feed(w: World) -> list[int]:
    feed, _ = create_calendar_feed(actor=w.people["casey"], user=w.people["casey"])
    return [feed.pk]


def admin_view(name: str, actor: str, prepare: Callable[[World], tuple[list[Any], dict[str, Any]]]):  # type: ignore[no-untyped-def]
    def path(w: World) -> tuple[Any, Act]:
        args, data = prepare(w)
        client = signed_in_client(w.people[actor])
        url = reverse(f"admin:{name}", args=args)
        return w.people[actor], lambda: posted(client.post(url, data), 200, 302, 303)

    return path


def _approve(w: World) -> tuple[list[Any], dict[str, Any]]:
    return [w.submitted().pk], {"to": CycleStatus.MET}


def _evidence(w: World) -> tuple[list[Any], dict[str, Any]]:
    return [w.started().pk], {"url": "https://wiki.test/policy", "title": "Policy"}


def _purge(w: World) -> tuple[list[Any], dict[str, Any]]:
    ob = w.started()
    evidence = add_evidence_link(
        actor=w.people["casey"], cycle=ob.current_cycle, url="https://wiki.test/x", title="x",
        source=SOURCE,
    )  # fmt: skip
    return [evidence.pk], {"reason": "Posted in error."}


def _assessment(w: World) -> tuple[list[Any], dict[str, Any]]:
    return [w.started("U2U-ILLEGAL-RA").pk], {}


def _measure(w: World) -> tuple[list[Any], dict[str, Any]]:
    measure = CodeMeasure.objects.filter(duties__code="U2U-ILLEGAL-SAFETY").first()
    return [w.service.pk], {"selected": [measure.pk], "decision": "not_applicable", "detail": "No."}


def _plan(w: World) -> tuple[list[Any], dict[str, Any]]:
    later = TODAY + dt.timedelta(days=60)
    return [w.service.pk], {"description": "Add livestreaming", "planned_for": str(later)}


def _stage(w: World) -> tuple[list[Any], dict[str, Any]]:
    notice = w.technology_notice()
    change_notice(
        actor=w.people["casey"],
        notice=notice,
        changes={
            "warning_given_on": TODAY,
            "representations_due": TODAY + dt.timedelta(days=30),
        },
        source=SOURCE,
    )
    return [notice.pk], {"to": NoticeStage.WARNING, "on": str(TODAY)}


def _notice_event(w: World) -> tuple[list[Any], dict[str, Any]]:
    notice = w.technology_notice()
    return [notice.pk], {"kind": NoticeEventKind.REVIEWED, "on": str(TODAY), "note": "Read."}


def _import_file(w: World) -> bytes:
    """A register row that asks for met, naming rita as the approver."""
    ob = w.submitted()
    return (
        "External reference,Service,Duty code,Status,Evidence link,Approver e-mail\n"
        f"REG-1,Chat,{ob.duty.code},Met,https://wiki.test/signed,{w.people['rita'].email}\n"
    ).encode()


def admin_import(w: World) -> tuple[Any, Act]:
    data = _import_file(w)
    client = signed_in_client(w.people["casey"])
    url = reverse("admin:obligations_obligation_import")

    def act() -> None:
        upload = io.BytesIO(data)
        upload.name = "register.csv"
        form = {"organisation": w.org.pk, "file": upload, "import_good_rows": "on"}
        posted(client.post(url, form), 200)

    return w.people["casey"], act


def command_import(w: World, tmp: Path) -> tuple[Any, Act]:
    path = tmp / "register.csv"
    path.write_bytes(_import_file(w))

    def act() -> None:
        call_command("import_register", str(path), "--organisation", "Ours", stdout=io.StringIO())

    return get_system_user(), act


def api_path(route: str, actor: str, prepare: Callable[[World], tuple[str, dict[str, Any]]]):  # type: ignore[no-untyped-def]
    def path(w: World, how: str) -> tuple[Any, Act]:
        url, body = prepare(w)
        client = api(w.people[actor], how)
        method = "patch" if route == "service-detail" else "post"
        return w.people[actor], lambda: posted(
            getattr(client, method)(url, body, format="json"), 200, 201
        )

    return path


def _api_service(w: World) -> tuple[str, dict[str, Any]]:
    return "/api/v1/services/", {
        "provider": w.provider.pk,
        "name": "Search box",
        "search": True,
        "uk_monthly_users": 5000,
    }


def _api_service_detail(w: World) -> tuple[str, dict[str, Any]]:
    return f"/api/v1/services/{w.service.pk}/", {"uk_monthly_users": 250_000}


def _api_transition(w: World) -> tuple[str, dict[str, Any]]:
    return f"/api/v1/obligations/{w.submitted().pk}/transition/", {"to": "met"}


def _api_owner(w: World) -> tuple[str, dict[str, Any]]:
    return f"/api/v1/obligations/{w.obligation().pk}/owner/", {"owner": w.people["rita"].pk}


def _api_due(w: World) -> tuple[str, dict[str, Any]]:
    due = str(TODAY + dt.timedelta(days=90))
    return f"/api/v1/obligations/{w.started().pk}/due-date/", {"due_date": due, "reason": "Agreed"}


def _api_evidence(w: World) -> tuple[str, dict[str, Any]]:
    return f"/api/v1/obligations/{w.started().pk}/evidence/", {"url": "https://wiki.test/e"}


def _remove_device(w: World) -> tuple[Any, Act]:
    """An operator removes a member's lost authenticator: the access log names the operator."""
    device = TOTPDevice.objects.create(user=w.people["casey"], name="phone", confirmed=True)
    client = signed_in_client(w.people["root"])
    url = reverse("admin:otp_totp_totpdevice_changelist")
    data = {"action": "delete_selected", "_selected_action": [device.pk], "post": "yes"}
    return w.people["root"], lambda: posted(client.post(url, data), 302)


def _webhook(w: World) -> Any:
    endpoint, _ = create_webhook(
        actor=w.people["root"],
        organisation=w.org,
        kind=WebhookKind.SLACK,
        url="https://hooks.slack.com/services/T0/B0/old",
        name="Made by an operator",
    )
    return endpoint


ADMIN_PATHS: dict[str, Path_] = {
    "action otp_totp.totpdevice delete_selected": _remove_device,
    "add obligations.service": admin_page(
        "obligations.service",
        "casey",
        lambda w: {
            "provider": w.provider.pk,
            "name": "New app",
            "user_to_user": "on",
            "uk_monthly_users": "120000",
            "children_likely_to_access": "false",
        },
    ),
    "change obligations.service": admin_page(
        "obligations.service",
        "casey",
        lambda w: {"children_likely_to_access": "true"},
        lambda w: w.service,
    ),
    "add obligations.provider": admin_page(
        "obligations.provider", "casey", lambda w: {"organisation": w.org.pk, "name": "Southwind"}
    ),
    "change obligations.provider": admin_page(
        "obligations.provider", "casey", lambda w: {"name": "Northwind Ltd"}, lambda w: w.provider
    ),
    "add obligations.organisation": admin_page(
        "obligations.organisation", "root", lambda w: {"name": "Theirs"}
    ),
    "change obligations.organisation": admin_page(
        "obligations.organisation",
        "ada",
        lambda w: {"reminder_lead_days": "[14, 2]"},
        lambda w: w.org,
    ),
    "change obligations.obligation": admin_page(
        "obligations.obligation",
        "casey",
        lambda w: {"owner": w.people["rita"].pk},
        lambda w: w.obligation(),
    ),
    "add obligations.technologynotice": admin_page(
        "obligations.technologynotice",
        "casey",
        lambda w: {
            "service": w.service.pk,
            "ofcom_reference": "TN-9",
            "skilled_report_on": str(TODAY),
            "csea_private": "on",
        },
    ),
    "change obligations.technologynotice": admin_page(
        "obligations.technologynotice",
        "rita",
        lambda w: {"ofcom_reference": "TN-1/rev"},
        World.technology_notice,
    ),
    "add obligations.ofcomnotice": admin_page(
        "obligations.ofcomnotice",
        "casey",
        lambda w: {
            "service": w.service.pk,
            "kind": NoticeKind.INFORMATION,
            "given_on": str(TODAY),
            "respond_by": str(TODAY + dt.timedelta(days=28)),
        },
    ),
    "change obligations.ofcomnotice": admin_page(
        "obligations.ofcomnotice",
        "rita",
        lambda w: {"respond_by": str(TODAY + dt.timedelta(days=35))},
        World.ofcom_notice,
    ),
    "change obligations.riskassessment": admin_riskassessment_change,
    "add obligations.apitoken": admin_page(
        "obligations.apitoken", "casey", lambda w: {"name": "nightly export"}
    ),
    "add obligations.calendarfeed": admin_page(
        "obligations.calendarfeed", "casey", lambda w: {}, ok=(200, 302)
    ),
    "add auth.user": admin_page(
        "auth.user",
        "root",
        lambda w: {
            "username": "newcomer",
            "password1": "a-long-passphrase-2026",
            "password2": "a-long-passphrase-2026",
            "usable_password": "true",
        },
    ),
    "change auth.user": admin_page(
        "auth.user", "root", lambda w: {"first_name": "Casey"}, lambda w: w.people["casey"]
    ),
    "action obligations.obligation bulk_assign_owner": admin_action(
        "obligation", "bulk_assign_owner", "casey", _obligations
    ),
    "action obligations.obligation bulk_in_progress": admin_action(
        "obligation", "bulk_in_progress", "rita", _obligations
    ),
    "action obligations.obligation bulk_ready_for_review": admin_action(
        "obligation", "bulk_ready_for_review", "casey", _started
    ),
    "action obligations.apitoken revoke": admin_action("apitoken", "revoke", "casey", _own_token),
    "add obligations.webhookendpoint": admin_page(
        "obligations.webhookendpoint",
        "ada",
        lambda w: {
            "organisation": w.org.pk,
            "kind": "slack",
            "name": "Compliance channel",
            "address": "https://hooks.slack.com/services/T0/B0/abc",
        },
    ),
    "change obligations.webhookendpoint": admin_page(
        "obligations.webhookendpoint",
        "ada",
        lambda w: {"name": "Renamed", "address": "https://hooks.slack.com/services/T0/B0/new"},
        _webhook,
    ),
    "action obligations.webhookendpoint test_message": admin_action(
        "webhookendpoint", "test_message", "ada", lambda w: [_webhook(w).pk]
    ),
    "action obligations.calendarfeed revoke": admin_action(
        "calendarfeed", "revoke", "casey", _own_feed
    ),
    "view obligations_obligation_transition": admin_view(
        "obligations_obligation_transition", "rita", _approve
    ),
    "view obligations_obligation_evidence": admin_view(
        "obligations_obligation_evidence", "casey", _evidence
    ),
    "view obligations_evidence_purge": admin_view("obligations_evidence_purge", "ada", _purge),
    "view obligations_obligation_start_assessment": admin_view(
        "obligations_obligation_start_assessment", "casey", _assessment
    ),
    "view obligations_service_measures": admin_view(
        "obligations_service_measures", "rita", _measure
    ),
    "view obligations_service_change_plan": admin_view(
        "obligations_service_change_plan", "rita", _plan
    ),
    "view obligations_technologynotice_stage": admin_view(
        "obligations_technologynotice_stage", "rita", _stage
    ),
    "view obligations_technologynotice_event": admin_view(
        "obligations_technologynotice_event", "rita", _notice_event
    ),
    "view obligations_obligation_import": admin_import,
}

API_PATHS = {
    "POST service-list": api_path("service-list", "casey", _api_service),
    "PATCH service-detail": api_path("service-detail", "casey", _api_service_detail),
    "POST obligation-transition": api_path("obligation-transition", "rita", _api_transition),
    "POST obligation-owner": api_path("obligation-owner", "casey", _api_owner),
    "POST obligation-due-date": api_path("obligation-due-date", "casey", _api_due),
    "POST obligation-evidence": api_path("obligation-evidence", "casey", _api_evidence),
}

COMMAND_PATHS = {"command import_register": command_import}

# Entry points that write nothing a person did, each with the reason.
NOT_WRITES = {
    "view obligations_obligation_my_work": "a list: reads only",
    "view obligations_service_preview": "answers what would apply; saves nothing",
    "view obligations_obligation_filter_choices": "names for a filter's box: reads only",
    "view obligations_service_filter_choices": "names for a filter's box: reads only",
    "POST applicability": "computes what would apply; saves nothing",
    "PUT service-detail": "the same write as PATCH, walked there",
    "command applicable_duties": "prints what would apply; saves nothing",
    "command catalogue_report": "reads the catalogue file",
    "command audit_pack_public_key": "prints the public key",
    "command build_audit_pack": "writes a file for the operator; no register row",
    "command verify_audit_pack": "reads a pack",
    "command send_reminders": "acts as the named system user (test_reminders.py)",
    "command load_catalogue": "acts as the named system user (test_catalogue.py)",
    "command load_demo": "demo data, as the named system user",
    "command backfill_compliance_counts": "stores counts derived from the events; no actor",
    "command reencrypt_webhooks": "encrypts stored webhook secrets again under a new key; "
    "what they say, and who set them, unchanged",
    "command apply_access_log_retention": "a database setting the deploy makes as the owner; "
    "no register row",
}
# Models whose admin offers no writes to the tracker's users: read-only registers and the
# catalogue, and the operator-only pages of Django's and django-celery-beat's own apps.
READ_ONLY_ADMINS = {
    "obligations.duty",
    "obligations.feature",
    "obligations.registercategory",
    "obligations.exemption",
    "obligations.catalogueversion",
    "obligations.reminder",
    "obligations.accesslog",
    "obligations.harmkind",
    "obligations.riskfactor",
    "obligations.codemeasure",
    "obligations.measuredecision",
    "obligations.webhookdelivery",
}


def _operators_only(label: str) -> bool:
    return label in OPERATOR_APPS or label.split(".")[0] in OPERATOR_APPS


# --- Finding the entry points ----------------------------------------------


def admin_entry_points() -> set[str]:
    found = set()
    superuser = User(is_superuser=True, is_staff=True, is_active=True)
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        if label in READ_ONLY_ADMINS or _operators_only(label):
            continue
        request = type("Request", (), {"user": superuser, "GET": {}, "POST": {}})()
        if model_admin.has_add_permission(request):
            found.add(f"add {label}")
        if model_admin.has_change_permission(request, None):
            found.add(f"change {label}")
        for choice in model_admin.get_action_choices(request, default_choices=[]):
            found.add(f"action {label} {choice[0]}")
        standard = ("_changelist", "_add", "_history", "_delete", "_change", "_autocomplete")
        views = [p.name for p in model_admin.get_urls() if isinstance(p, URLPattern) and p.name]
        found |= {f"view {name}" for name in views if not name.endswith(standard)}
    return found


def api_entry_points() -> set[str]:
    def walk(patterns: list[Any]) -> Any:
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns)
            else:
                yield p

    found = set()
    for pattern in walk(urlpatterns):
        callback = pattern.callback
        actions = getattr(callback, "actions", None)
        view = getattr(callback, "cls", None)
        if actions:
            methods = [verb for verb in actions if verb in ("post", "put", "patch", "delete")]
        else:
            methods = [v for v in ("post", "put", "patch", "delete") if hasattr(view, v)]
        found |= {f"{method.upper()} {pattern.name}" for method in methods}
    return found


def command_entry_points() -> set[str]:
    folder = Path(__file__).resolve().parent.parent / "obligations" / "management" / "commands"
    return {f"command {p.stem}" for p in folder.glob("*.py") if p.stem != "__init__"}


def test_every_write_path_is_walked():
    walked = set(ADMIN_PATHS) | set(API_PATHS) | set(COMMAND_PATHS) | set(NOT_WRITES)
    found = admin_entry_points() | api_entry_points() | command_entry_points()
    assert sorted(found - walked) == [], "a write path with no actor test"
    assert sorted(walked - found) == [], "a walked path that no longer exists"


# --- Walking them -----------------------------------------------------------


def assert_only(actor: Any, recorded: dict[str, set[int]]) -> None:
    assert recorded, "the write recorded no actor at all"
    others = {column: ids - {actor.pk} for column, ids in recorded.items() if ids - {actor.pk}}
    names = dict(User.objects.values_list("pk", "username"))
    assert {c: sorted(names[i] for i in ids) for c, ids in others.items()} == {}


@pytest.mark.parametrize("name", sorted(ADMIN_PATHS))
def test_an_admin_write_names_the_person_who_made_it(world, name):
    actor, act = ADMIN_PATHS[name](world)
    before = snapshot()
    act()
    assert_only(actor, recorded_actors(before))


@pytest.mark.parametrize("how", ["session", "token"])
@pytest.mark.parametrize("name", sorted(API_PATHS))
def test_an_api_write_names_the_person_who_made_it(world, name, how):
    actor, act = API_PATHS[name](world, how)
    before = snapshot()
    act()
    assert_only(actor, recorded_actors(before))


@pytest.mark.parametrize("name", sorted(COMMAND_PATHS))
def test_a_command_acts_as_the_named_system_user(world, name, tmp_path):
    actor, act = COMMAND_PATHS[name](world, tmp_path)
    before = snapshot()
    act()
    assert_only(actor, recorded_actors(before))
