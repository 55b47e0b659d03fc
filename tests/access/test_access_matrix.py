"""Who may see and change what, for every URL the tracker serves.

`ROUTES` classifies every URL pattern of the URL configuration (admin, API, dashboards,
records, evidence downloads, calendar feeds, exports and audit packs): how to fill its
arguments and which status each role gets, for its own organisation's object and for
another's. A new pattern missing from the table fails `test_every_url_pattern_is_classified`.

Two organisations, A and B, each carry a marker in their names (organisation, provider,
service, evidence, notices, members); no response to a user may contain the marker of an
organisation they do not belong to. The data is built once per test and every request's
problems are collected, so that one run reports all of them.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django_celery_beat import models as beat
from django_otp.plugins.otp_totp.models import TOTPDevice

from obligations.access.models import AccessAction, AccessLog, CalendarFeed, Membership, Role
from obligations.access.signin import record_access
from obligations.access.tokens import create_api_token, create_calendar_feed
from obligations.assessments.actions import decide_measure, start_assessment
from obligations.assessments.models import MeasureDecisionKind
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
from obligations.notices.actions import record_notice
from obligations.notices.models import NoticeKind, OfcomNotice, TechnologyNotice
from obligations.providers.models import Service
from obligations.register.evidence import add_evidence_file
from obligations.register.states import CycleStatus, EventSource
from obligations.reminders.endpoints import create_webhook, send_test_message
from obligations.reminders.models import WebhookKind
from tests.conftest import TODAY
from tests.factories import (
    OrganisationFactory,
    ProviderFactory,
    applied_service,
    due_soon_reminder,
    member,
)

MARK = {"A": "Zanzibar7A", "B": "Quokka9B"}
ADMIN = EventSource.ADMIN
PDF = b"%PDF-1.4\n" + b"policy " * 50 + b"\n%%EOF\n"
# Organisation A's members, by role; the lapsed auditor's access expired yesterday; the
# outsider is a compliance member of organisation B only.
SUBJECTS = ("admin", "compliance", "manager", "auditor", "expired", "anonymous", "outsider")
HOME = {
    "admin": "A",
    "compliance": "A",
    "manager": "A",
    "auditor": "A",
    "expired": None,
    "anonymous": None,
    "outsider": "B",
}
EDITORS = ("admin", "compliance")
ROLE = {"outsider": "compliance"}  # the outsider's role in organisation B
LOGIN = 302  # the admin, dashboards and records send anonymous users to the login page
API_ANON = 401  # the API answers anonymous calls itself (WWW-Authenticate: Token)
SIDES = {"own": "A", "other": "B"}  # "own": organisation A's objects; "other": B's
BEAT_MODELS = (
    beat.PeriodicTask,
    beat.ClockedSchedule,
    beat.CrontabSchedule,
    beat.SolarSchedule,
    beat.IntervalSchedule,
)


# --- The data ----------------------------------------------------------------------------


def organisation_world(side: str) -> dict[str, Any]:
    mark = MARK[side]
    org = OrganisationFactory(name=f"Organisation {mark}")
    provider = ProviderFactory(organisation=org, name=f"Provider {mark}")
    service = applied_service(provider=provider, name=f"Service {mark}")
    people = {
        role: member(org, role=role, username=f"{role}-{mark}")
        for role in ("admin", "compliance", "manager", "auditor")
    }
    casey = people["compliance"]
    obligation = service.obligations.get(duty__code="U2U-RECORDS")
    evidence = add_evidence_file(
        actor=casey,
        cycle=obligation.current_cycle,
        uploaded=SimpleUploadedFile("policy.pdf", PDF),
        title=f"Evidence {mark}",
        source=ADMIN,
    )
    technology = record_notice(
        actor=casey,
        notice=TechnologyNotice(service=service, ofcom_reference=f"TN {mark}", csea_public=True),
        source=ADMIN,
    )
    ofcom = record_notice(
        actor=casey,
        notice=OfcomNotice(
            service=service,
            kind=NoticeKind.PENALTY,
            ofcom_reference=f"PN {mark}",
            given_on=TODAY,
            single_penalty_gbp=Decimal("50000"),
            pay_by=TODAY + dt.timedelta(days=28),
        ),
        source=ADMIN,
    )
    reminders = {
        user.pk: due_soon_reminder(
            obligation.current_cycle, user, TODAY, reason=f"Due in a week ({mark})."
        )
        for user in people.values()
    }
    assessment = start_assessment(
        actor=casey,
        cycle=service.obligations.get(duty__code="U2U-ILLEGAL-RA").current_cycle,
        source=ADMIN,
    )
    decision = decide_measure(
        actor=casey,
        service=service,
        measure=CodeMeasure.objects.get(code="ICU G3"),
        decision=MeasureDecisionKind.ADOPTED,
        detail=f"Adopted ({mark}).",
        evidence=[evidence],
    )
    feed_secret = ""
    for user in people.values():
        _, secret = create_calendar_feed(actor=user, user=user, service=service)
        feed_secret = secret if user == casey else feed_secret
    tokens = {
        user.pk: create_api_token(actor=user, name=f"Token {mark}")[0] for user in people.values()
    }
    record_access(
        user=casey,
        action=AccessAction.EXPORT,
        request=None,
        organisation_ids=[org.pk],
        description=f"Export of {mark}",
    )
    webhook, _ = create_webhook(
        actor=people["admin"],
        organisation=org,
        kind=WebhookKind.SLACK,
        url=f"https://hooks.example.com/{mark}",
        name=f"Webhook {mark}",
    )
    return {
        "webhookendpoint": webhook,
        "webhookdelivery": send_test_message(actor=people["admin"], endpoint=webhook),
        "people": people,
        "organisation": org,
        "provider": provider,
        "service": service,
        "obligation": obligation,
        "event": obligation.events.first(),
        "evidence": evidence,
        "technologynotice": technology,
        "ofcomnotice": ofcom,
        "reminders": reminders,
        "riskassessment": assessment,
        "measuredecision": decision,
        "feed_secret": feed_secret,
        "feeds": {f.user_id: f for f in CalendarFeed.objects.filter(user__in=people.values())},
        "tokens": tokens,
        "accesslog": AccessLog.objects.get(organisation=org),
    }


@pytest.fixture(autouse=True)
def quiet_refusals() -> Iterator[None]:
    """Each refused request logs a warning with its traceback: thousands of them here, and
    formatting them would take most of the run."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture
def world(db, catalogue, settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    key = Ed25519PrivateKey.generate()
    settings.AUDIT_PACK_SIGNING_KEY = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    settings.AUDIT_PACK_SIGNING_KEY_FILE = ""
    data = {side: organisation_world(side) for side in SIDES.values()}
    lapsed = member(data["A"]["organisation"], role=Role.AUDITOR, username="lapsed")
    _, lapsed_secret = create_calendar_feed(actor=lapsed, user=lapsed, service=data["A"]["service"])
    create_api_token(actor=lapsed, name="Lapsed")
    data["A"]["reminders"][lapsed.pk] = due_soon_reminder(
        data["A"]["obligation"].current_cycle, lapsed, TODAY
    )
    Membership.objects.filter(user=lapsed).update(expires_at=timezone.now() - dt.timedelta(days=1))
    # One row of each operators-only model, so that their pages have something to refuse.
    Group.objects.create(name="Operators")
    interval = beat.IntervalSchedule.objects.create(every=1, period=beat.IntervalSchedule.DAYS)
    beat.PeriodicTask.objects.get_or_create(
        name="Matrix", defaults={"task": "obligations.tasks.noop", "interval": interval}
    )
    beat.ClockedSchedule.objects.create(clocked_time=timezone.now())
    beat.CrontabSchedule.objects.get_or_create(minute="0", hour="7")
    beat.SolarSchedule.objects.create(event="sunrise", latitude=51.5, longitude=-0.1)
    TOTPDevice.objects.create(user=lapsed, name="Phone", confirmed=True)
    users = {role: data["A"]["people"][role] for role in (*EDITORS, "manager", "auditor")}
    users.update(expired=lapsed, outsider=data["B"]["people"]["compliance"])
    return {**data, "users": users, "lapsed_feed": lapsed_secret}


# --- How each URL is filled, and what each role gets -----------------------------------


Filler = Callable[[dict[str, Any], str, str], str]
Expect = Callable[[str, str], int]


@dataclass(frozen=True)
class Route:
    url: Filler  # (world, subject, side) -> the address
    expect: Expect  # (subject, side) -> status of a GET
    per_side: bool = False  # whether the address names an organisation's object
    writes: tuple[str, ...] = ()  # methods that change data, refused to non-editors
    marker_of: Callable[[str], str] | None = None  # whose data the answer may hold anyway
    post_data: Callable[[dict[str, Any], str], dict[str, Any]] | None = None
    refusals: frozenset[int] = frozenset({403, 404, 405})  # how a refused write answers
    subjects: tuple[str, ...] | None = None  # None: all; fewer where all get the same answer


def tenant(ok: int = 200, roleless: int = 403, anonymous: int = LOGIN) -> Expect:
    """An organisation's object: `ok` in its own organisation, 404 in another's."""

    def expect(subject: str, side: str) -> int:
        if subject == "anonymous":
            return anonymous
        if subject == "expired":
            return roleless
        return ok if HOME[subject] == SIDES[side] else 404

    return expect


def by_role(
    ok: int = 200,
    readers: int | None = None,
    roleless: int = 403,
    anonymous: int = LOGIN,
    only: tuple[str, ...] | None = None,
) -> Expect:
    """A page about no one organisation's object: `ok` for members (`readers` for the roles
    that cannot edit, if different); `roleless` for a signed-in user without a live role."""

    def expect(subject: str, side: str) -> int:
        if subject == "anonymous":
            return anonymous
        if subject == "expired":
            return roleless
        if only is not None and subject not in only:
            return 403
        if readers is not None and ROLE.get(subject, subject) not in EDITORS:
            return readers
        return ok

    return expect


def same(status: int, anonymous: int = LOGIN) -> Expect:
    return lambda subject, side: anonymous if subject == "anonymous" else status


def anyone(status: int) -> Expect:
    return lambda subject, side: status


def org_admin_object(subject: str, side: str) -> int:
    """The access log: an organisation's admins only."""
    if subject == "anonymous":
        return LOGIN
    if subject != "admin":
        return 403
    return 200 if side == "own" else 404


def personal(ok: int = 200, roleless: int = 403, found_first: bool = False) -> Expect:
    """A user's own object (`own_or_other`): theirs, or another organisation's member's.
    `found_first`: the page looks the object up before asking about permissions."""

    def expect(subject: str, side: str) -> int:
        if subject == "anonymous":
            return LOGIN
        if subject == "expired" and roleless == 403 and not found_first:
            return 403  # no view permission at all: refused whatever the object
        if side == "other":
            return 404
        return roleless if subject == "expired" else ok

    return expect


def admin_url(name: str, *args: Any) -> str:
    return reverse(f"admin:{name}", args=args)


def obj(kind: str, attr: str = "pk") -> Callable[[dict[str, Any], str, str], Any]:
    return lambda w, subject, side: getattr(w[SIDES[side]][kind], attr)


def own_or_other(pick: Callable[[dict[str, Any], Any], Any]) -> Callable[..., Any]:
    """A per-user object: the subject's own, or one of a manager of organisation B (whom
    none of the subjects may see: the outsider is a compliance member there)."""

    def fill(w: dict[str, Any], subject: str, side: str) -> Any:
        if side == "other" or subject == "anonymous":
            return pick(w["B"], w["B"]["people"]["manager"]).pk
        user = w["users"][subject]
        return pick(w[HOME[subject] or "A"], user).pk

    return fill


def first_history_id(kind: str) -> Callable[..., Any]:
    return lambda w, subject, side: w[SIDES[side]][kind].history.first().history_id


def seen(view: Expect, ok: int) -> Expect:
    """History and delete pages look the object up first: `ok` where the change page shows
    it, 404 wherever it does not (whatever the reason, so nothing is confirmed)."""
    return lambda subject, side: (
        LOGIN if subject == "anonymous" else ok if view(subject, side) == 200 else 404
    )


def admin_model(
    model: str,
    pick: Callable[..., Any],
    *,
    listing: Expect | None = None,
    view: Expect,
    add: Expect,
    history: Expect | None = None,
    delete: Expect | None = None,
    simple_history: bool = False,
    per_side: bool = True,
    action: str | None = "delete_selected",
    subjects: tuple[str, ...] | None = None,
) -> dict[str, Route]:
    """The standard pages of one ModelAdmin, and its simple-history pages if it has them.
    `action`: the bulk action a reader's changelist POST tries (None: the rows are personal,
    each user's own to revoke)."""
    name = f"obligations_{model}" if "_" not in model else model
    writes = ("POST",) if action else ()

    def page(suffix: str) -> Filler:
        return lambda w, subject, side: admin_url(f"{name}_{suffix}", pick(w, subject, side))

    def bulk(w: dict[str, Any], subject: str) -> dict[str, Any]:
        return {"action": action, "_selected_action": [pick(w, subject, "own")], "index": "0"}

    routes = {
        f"admin:{name}_changelist": Route(
            lambda w, s, side: admin_url(f"{name}_changelist"),
            listing or by_role(),
            writes=writes,
            post_data=bulk,
            # An action the user lacks: Django shows the list again, or (the outsider's rows
            # not found) redirects back to it.
            refusals=frozenset({200, 302, 403}),
            subjects=subjects,
        ),
        f"admin:{name}_add": Route(lambda w, s, side: admin_url(f"{name}_add"), add, writes=writes),
        f"admin:{name}_change": Route(page("change"), view, per_side, writes=writes),
        f"admin:{name}_history": Route(page("history"), history or seen(view, 200), per_side),
        f"admin:{name}_delete": Route(
            page("delete"), delete or seen(view, 403), per_side, writes=writes
        ),
    }
    if simple_history:
        routes[f"admin:{name}_simple_history"] = Route(
            lambda w, s, side: admin_url(
                f"{name}_simple_history", pick(w, s, side), first_history_id(model)(w, s, side)
            ),
            seen(view, 200),
            per_side,
            writes=writes,
        )
    return routes


# Pages whose answer depends on being signed in, never on the role or the organisation:
# asked by one reader, the roleless user, the outsider and an anonymous visitor.
STAFF_WIDE = ("auditor", "expired", "outsider", "anonymous")
TENANT = tenant()
CHANGE_PLAN = tenant(roleless=404)
NO_ADD = by_role(403)
EDITOR_ADD = by_role(200, readers=403)
CATALOGUE = same(200)
SUPERUSER_ONLY = same(403)


def catalogue_admin(model: str, pick: Callable[..., Any]) -> dict[str, Route]:
    return admin_model(
        model,
        pick,
        listing=CATALOGUE,
        view=CATALOGUE,
        add=SUPERUSER_ONLY,
        history=CATALOGUE,
        delete=SUPERUSER_ONLY,
        per_side=False,
        subjects=STAFF_WIDE,
    )


def superuser_admin(name: str, model: Any) -> dict[str, Route]:
    return admin_model(
        name,
        lambda w, s, side: model.objects.first().pk,
        listing=SUPERUSER_ONLY,
        view=SUPERUSER_ONLY,
        add=SUPERUSER_ONLY,
        history=SUPERUSER_ONLY,
        delete=SUPERUSER_ONLY,
        per_side=False,
        subjects=STAFF_WIDE,
    )


def colleague(w: dict[str, Any], subject: str, side: str) -> int:
    return int(w[SIDES[side]]["people"]["manager"].pk)


def api(name: str, **kwargs: Any) -> str:
    return reverse(f"api:{name}", kwargs=kwargs or None)


def api_object(basename: str, kind: str, writes: tuple[str, ...] = ()) -> dict[str, Route]:
    return {
        f"api:{basename}-list": Route(
            lambda w, s, side: api(f"{basename}-list"),
            by_role(anonymous=API_ANON, roleless=200),
            writes=("POST",) if writes else (),
        ),
        f"api:{basename}-detail": Route(
            lambda w, s, side: api(f"{basename}-detail", pk=w[SIDES[side]][kind].pk),
            tenant(anonymous=API_ANON, roleless=404),
            per_side=True,
            writes=writes,
        ),
    }


def object_page(name: str, kind: str, expect: Expect | None = None) -> Route:
    """A page outside the admin about one object of each organisation."""
    return Route(
        lambda w, s, side: reverse(name, args=[w[SIDES[side]][kind].pk]),
        expect or tenant(roleless=404),
        per_side=True,
    )


# Managers may review (approve or send back), so the move they try is one only editors make.
EDITORS_MOVE = {"to": CycleStatus.NOT_APPLICABLE, "reason": "Refused"}


def obligation_action(action: str) -> Route:
    return Route(
        lambda w, s, side: api(f"obligation-{action}", pk=w[SIDES[side]]["obligation"].pk),
        same(405, anonymous=API_ANON),
        per_side=True,
        writes=("POST",),
        post_data=(lambda w, s: EDITORS_MOVE) if action == "transition" else None,
    )


def feed_marker(side: str) -> str:
    return MARK[SIDES[side]]


ROUTES: dict[str, Route] = {
    # The site root and the admin's own pages.
    "": Route(lambda w, s, side: "/", anyone(302)),
    "admin:index": Route(lambda w, s, side: admin_url("index"), same(200)),
    "admin:login": Route(lambda w, s, side: admin_url("login"), same(302, anonymous=200)),
    "admin:logout": Route(lambda w, s, side: admin_url("logout"), same(405, anonymous=302)),
    "admin:password_change": Route(lambda w, s, side: admin_url("password_change"), same(200)),
    "admin:password_change_done": Route(
        lambda w, s, side: admin_url("password_change_done"), same(200)
    ),
    # Each user's own two-factor enrolment; password reset, for anyone (a bad link: its page).
    "admin_two_factor": Route(lambda w, s, side: reverse("admin_two_factor"), same(200)),
    # Links and forms only, each list scoped: someone with no role sees empty lists.
    "auditors-corner": Route(lambda w, s, side: reverse("auditors-corner"), same(200)),
    "admin_password_reset": Route(lambda w, s, side: reverse("admin_password_reset"), anyone(200)),
    "password_reset_done": Route(lambda w, s, side: reverse("password_reset_done"), anyone(200)),
    "password_reset_confirm": Route(
        lambda w, s, side: reverse("password_reset_confirm", args=["MQ", "no-such-token"]),
        anyone(200),
    ),
    "password_reset_complete": Route(
        lambda w, s, side: reverse("password_reset_complete"), anyone(200)
    ),
    "admin:jsi18n": Route(lambda w, s, side: admin_url("jsi18n"), same(200)),
    "admin:app_list": Route(
        lambda w, s, side: reverse("admin:app_list", args=["obligations"]), same(200)
    ),
    "admin:autocomplete": Route(
        lambda w, s, side: (
            admin_url("autocomplete")
            + "?app_label=obligations&model_name=obligation&field_name=owner"
        ),
        by_role(),
    ),
    # Nothing has a "view on site" page: a 404 whoever asks, whether or not the object exists.
    "admin:view_on_site": Route(
        lambda w, s, side: admin_url(
            "view_on_site",
            ContentType.objects.get_for_model(Service).pk,
            w[SIDES[side]]["service"].pk,
        ),
        same(404),
        per_side=True,
    ),
    r"admin/(?P<url>.*)$": Route(lambda w, s, side: "/admin/no/such/page/", same(404)),
    # Each ModelAdmin's `<id>/` redirects to its change page, for any id: it confirms nothing.
    "admin/<path:object_id>/": Route(
        lambda w, s, side: f"/admin/obligations/service/{w[SIDES[side]]['service'].pk}/",
        same(302),
        per_side=True,
    ),
    # The register, scoped to the user's organisations.
    **admin_model("organisation", obj("organisation"), view=TENANT, add=NO_ADD),
    **admin_model(
        "provider",
        obj("provider"),
        view=TENANT,
        add=EDITOR_ADD,
        simple_history=True,
    ),
    **admin_model("service", obj("service"), view=TENANT, add=EDITOR_ADD, simple_history=True),
    "admin:obligations_service_preview": Route(
        lambda w, s, side: admin_url("obligations_service_preview"), by_role(roleless=404)
    ),
    "admin:obligations_service_measures": Route(
        lambda w, s, side: admin_url("obligations_service_measures", w[SIDES[side]]["service"].pk),
        tenant(roleless=404),
        per_side=True,
        writes=("POST",),
    ),
    "admin:obligations_service_change_plan": Route(
        lambda w, s, side: admin_url(
            "obligations_service_change_plan", w[SIDES[side]]["service"].pk
        ),
        lambda subject, side: (
            404 if subject in ("manager", "auditor") else CHANGE_PLAN(subject, side)
        ),
        per_side=True,
        writes=("POST",),
    ),
    **admin_model(
        "obligation",
        obj("obligation"),
        view=TENANT,
        add=NO_ADD,
        simple_history=True,
        action="bulk_in_progress",
    ),
    # The filters' search as you type: a name both organisations' rows hold; each user's own.
    "admin:obligations_obligation_filter_choices": Route(
        lambda w, s, side: (
            admin_url("obligations_obligation_filter_choices", "service") + "?term=Service"
        ),
        by_role(),
    ),
    "admin:obligations_service_filter_choices": Route(
        lambda w, s, side: (
            admin_url("obligations_service_filter_choices", "provider") + "?term=Provider"
        ),
        by_role(),
    ),
    "admin:obligations_obligation_my_work": Route(
        lambda w, s, side: admin_url("obligations_obligation_my_work"), by_role()
    ),
    "admin:obligations_obligation_import": Route(
        lambda w, s, side: admin_url("obligations_obligation_import"),
        by_role(200, readers=403),
        writes=("POST",),
    ),
    **{
        f"admin:obligations_obligation_{action}": Route(
            lambda w, s, side, action=action: admin_url(
                f"obligations_obligation_{action}", w[SIDES[side]]["obligation"].pk
            ),
            same(405),
            per_side=True,
            writes=("POST",),
            post_data=(lambda w, s: EDITORS_MOVE) if action == "transition" else None,
        )
        for action in ("transition", "start_assessment", "evidence")
    },
    "admin:obligations_evidence_purge": Route(
        lambda w, s, side: admin_url("obligations_evidence_purge", w[SIDES[side]]["evidence"].pk),
        tenant(roleless=404),
        per_side=True,
        writes=("POST",),
        # The form is shown to members; purging itself is refused by the service to all but
        # the organisation's admins, with the reason on the form.
        refusals=frozenset({200, 403, 404}),
    ),
    **admin_model(
        "technologynotice",
        obj("technologynotice"),
        view=TENANT,
        add=EDITOR_ADD,
        simple_history=True,
    ),
    **{
        f"admin:obligations_technologynotice_{action}": Route(
            lambda w, s, side, action=action: admin_url(
                f"obligations_technologynotice_{action}", w[SIDES[side]]["technologynotice"].pk
            ),
            same(403),
            per_side=True,
            writes=("POST",),
        )
        for action in ("stage", "event")
    },
    **admin_model(
        "ofcomnotice",
        obj("ofcomnotice"),
        view=TENANT,
        add=EDITOR_ADD,
        simple_history=True,
    ),
    **admin_model(
        "riskassessment",
        obj("riskassessment"),
        view=TENANT,
        add=NO_ADD,
        simple_history=True,
    ),
    **admin_model(
        "measuredecision",
        obj("measuredecision"),
        view=TENANT,
        add=NO_ADD,
        simple_history=True,
    ),
    # Each user's notifications (managers and admins see their organisation's).
    **admin_model(
        "reminder",
        own_or_other(lambda org, user: org["reminders"][user.pk]),
        view=personal(),
        add=NO_ADD,
    ),
    # Personal: API tokens (any staff user, their own) and calendar feeds (members, their own).
    **admin_model(
        "apitoken",
        own_or_other(lambda org, user: org["tokens"].get(user.pk) or user.api_tokens.get()),
        listing=same(200),
        # Any staff user has tokens of their own; another's is not found, and no one may
        # delete one (they are revoked).
        view=personal(roleless=200),
        add=same(200),
        history=personal(roleless=200),
        delete=personal(403, roleless=403, found_first=True),
        action=None,
    ),
    **admin_model(
        "calendarfeed",
        own_or_other(lambda org, user: org["feeds"].get(user.pk) or user.calendar_feeds.get()),
        view=personal(),
        add=by_role(),
        # Feeds are the user's own: their history and delete pages find them, and refuse.
        history=personal(roleless=403, found_first=True),
        delete=personal(403, roleless=403, found_first=True),
        action=None,
    ),
    **admin_model(
        "accesslog",
        obj("accesslog"),
        listing=lambda subject, side: org_admin_object(subject, "own"),
        view=org_admin_object,
        add=SUPERUSER_ONLY,
    ),
    # Team chat webhooks and their deliveries: an organisation's admins only (the address is
    # a secret).
    **admin_model(
        "webhookendpoint",
        obj("webhookendpoint"),
        listing=lambda subject, side: org_admin_object(subject, "own"),
        view=org_admin_object,
        add=lambda subject, side: org_admin_object(subject, "own"),
        action="test_message",
    ),
    **admin_model(
        "webhookdelivery",
        obj("webhookdelivery"),
        listing=lambda subject, side: org_admin_object(subject, "own"),
        view=org_admin_object,
        add=SUPERUSER_ONLY,
    ),
    # The catalogue: read-only for every signed-in member of staff.
    **catalogue_admin("duty", lambda w, s, side: Duty.objects.get(code="U2U-RECORDS").pk),
    **catalogue_admin("feature", lambda w, s, side: Feature.objects.first().pk),
    **catalogue_admin("registercategory", lambda w, s, side: RegisterCategory.objects.first().pk),
    **catalogue_admin("exemption", lambda w, s, side: Exemption.objects.first().pk),
    **catalogue_admin("catalogueversion", lambda w, s, side: CatalogueVersion.objects.first().pk),
    **catalogue_admin("harmkind", lambda w, s, side: HarmKind.objects.first().pk),
    **catalogue_admin("riskfactor", lambda w, s, side: RiskFactor.objects.first().pk),
    **catalogue_admin("codemeasure", lambda w, s, side: CodeMeasure.objects.first().pk),
    # Colleagues: members see their organisations' people, read-only; operators manage them.
    **admin_model(
        "auth_user",
        colleague,
        view=TENANT,
        add=SUPERUSER_ONLY,
        delete=SUPERUSER_ONLY,
    ),
    "admin:auth_user_password_change": Route(
        lambda w, s, side: admin_url("auth_user_password_change", colleague(w, s, side)),
        same(403),
        per_side=True,
        writes=("POST",),
    ),
    # Operators only.
    **superuser_admin("auth_group", Group),
    **superuser_admin("otp_totp_totpdevice", TOTPDevice),
    **{
        k: v
        for model in BEAT_MODELS
        for k, v in superuser_admin(f"django_celery_beat_{model._meta.model_name}", model).items()
    },
    # The API: the same scoping, 401 without credentials.
    "api:api-root": Route(
        lambda w, s, side: api("api-root"), by_role(anonymous=API_ANON, roleless=200)
    ),
    **api_object("organisation", "organisation"),
    **api_object("provider", "provider"),
    **api_object("service", "service", writes=("PUT", "PATCH", "DELETE")),
    **api_object("obligation", "obligation", writes=("PUT", "PATCH", "DELETE")),
    **api_object("event", "event", writes=("PUT", "PATCH", "DELETE")),
    **api_object("evidence", "evidence", writes=("PUT", "PATCH", "DELETE")),
    **api_object("technology-notice", "technologynotice"),
    **api_object("ofcom-notice", "ofcomnotice"),
    **api_object("risk-assessment", "riskassessment"),
    **api_object("measure-decision", "measuredecision"),
    "api:reminder-list": Route(
        lambda w, s, side: api("reminder-list"), by_role(anonymous=API_ANON, roleless=200)
    ),
    "api:reminder-detail": Route(
        lambda w, s, side: api(
            "reminder-detail",
            pk=w[SIDES[side]]["reminders"][w[SIDES[side]]["people"]["compliance"].pk].pk,
        ),
        tenant(anonymous=API_ANON, roleless=404),
        per_side=True,
        writes=("PUT", "PATCH", "DELETE"),
    ),
    "api:duty-list": Route(lambda w, s, side: api("duty-list"), same(200, anonymous=API_ANON)),
    "api:duty-detail": Route(
        lambda w, s, side: api("duty-detail", pk=Duty.objects.first().pk),
        same(200, anonymous=API_ANON),
    ),
    "api:obligation-history": Route(
        lambda w, s, side: api("obligation-history", pk=w[SIDES[side]]["obligation"].pk),
        tenant(anonymous=API_ANON, roleless=404),
        per_side=True,
    ),
    "api:obligation-transition": obligation_action("transition"),
    "api:obligation-owner": obligation_action("owner"),
    "api:obligation-due-date": obligation_action("due-date"),
    "api:obligation-evidence": obligation_action("evidence"),
    "api:evidence-download": Route(
        lambda w, s, side: api("evidence-download", pk=w[SIDES[side]]["evidence"].pk),
        tenant(anonymous=API_ANON, roleless=404),
        per_side=True,
    ),
    "api:obligation-export": Route(
        lambda w, s, side: api("obligation-export", kind="csv"),
        same(200, anonymous=API_ANON),
    ),
    "api:audit-pack": Route(
        lambda w, s, side: api("audit-pack") + f"?service={w[SIDES[side]]['service'].pk}",
        tenant(anonymous=API_ANON, roleless=404),
        per_side=True,
    ),
    "api:audit-pack-key": Route(lambda w, s, side: api("audit-pack-key"), anyone(200)),
    "api:applicability": Route(
        lambda w, s, side: api("applicability"), same(405, anonymous=API_ANON)
    ),
    "api:dashboard": Route(
        lambda w, s, side: api("dashboard"), by_role(anonymous=API_ANON, roleless=200)
    ),
    # The same public document for everyone (and slow to build): asked by two subjects.
    "api-schema": Route(
        lambda w, s, side: reverse("api-schema"), anyone(200), subjects=("anonymous", "auditor")
    ),
    "api-docs": Route(lambda w, s, side: reverse("api-docs"), anyone(200)),
    # For load balancers: no sign-in, the same answer for everyone, no one's data. The test's
    # world has no beat heartbeat, so it is unhealthy (tests/deploy/test_health.py for more).
    "health": Route(
        lambda w, s, side: reverse("health"), anyone(503), subjects=("anonymous", "auditor")
    ),
    "health-live": Route(
        lambda w, s, side: reverse("health-live"), anyone(200), subjects=("anonymous", "auditor")
    ),
    # Pages outside the admin.
    "dashboard:organisation": Route(
        lambda w, s, side: reverse("dashboard:organisation"), by_role()
    ),
    "dashboard:service": object_page("dashboard:service", "service", tenant()),
    # A provider's board report (PDF): the dashboard's readers, for their own providers.
    "dashboard:board-report": Route(
        lambda w, s, side: (
            f"{reverse('dashboard:board-report')}?provider={w[SIDES[side]]['provider'].pk}"
        ),
        tenant(),
        per_side=True,
    ),
    "assessment-record": object_page("assessment-record", "riskassessment"),
    "assessment-record-pdf": object_page("assessment-record-pdf", "riskassessment"),
    "measures-record": object_page("measures-record", "service"),
    "measures-record-pdf": object_page("measures-record-pdf", "service"),
    "evidence-download": object_page("evidence-download", "evidence"),
    # The address is the credential: whoever holds it reads that feed, and only that feed.
    "calendar-feed": Route(
        lambda w, s, side: reverse("calendar-feed", args=[w[SIDES[side]]["feed_secret"]]),
        anyone(200),
        per_side=True,
        marker_of=feed_marker,
    ),
}


# --- Walking the URL configuration -------------------------------------------------------


def url_patterns() -> list[tuple[str, str]]:
    """(key in ROUTES, full pattern) for every URL pattern: its name, or for an unnamed one
    its pattern (each ModelAdmin's `<id>/` redirect shares one key)."""
    found = []

    def walk(patterns: list[Any], prefix: str, namespace: str | None) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = namespace
                if pattern.namespace:
                    inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
                walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
                continue
            assert isinstance(pattern, URLPattern)
            full = prefix + str(pattern.pattern)
            if pattern.name:
                key = f"{namespace}:{pattern.name}" if namespace else pattern.name
            elif full.startswith("admin/") and full.endswith("/<path:object_id>/"):
                key = "admin/<path:object_id>/"
            else:
                key = full.removeprefix("admin/") if full.startswith("admin/(?P") else full
                key = f"admin/{key}" if full.startswith("admin/(?P") else key
            found.append((key, full))

    walk(get_resolver().url_patterns, "", None)
    return found


def test_every_url_pattern_is_classified():
    patterns = url_patterns()
    unknown = sorted({f"{key}  ({full})" for key, full in patterns if key not in ROUTES})
    assert not unknown, "URL patterns missing from ROUTES:\n  " + "\n  ".join(unknown)
    stale = sorted(set(ROUTES) - {key for key, _ in patterns})
    assert not stale, f"ROUTES entries for patterns that no longer exist: {stale}"


# --- The matrix -------------------------------------------------------------------------


def body_of(response: Any) -> str:
    """Everything the response says, unpacked from ZIP files (audit packs, XLSX)."""
    content = (
        b"".join(response.streaming_content) if response.streaming else bytes(response.content)
    )
    if content[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            content = b"".join(archive.read(name) for name in archive.namelist())
    return content.decode("utf-8", errors="replace")


def forbidden_markers(subject: str) -> list[str]:
    return [mark for org, mark in MARK.items() if HOME[subject] != org]


def clients(w: dict[str, Any]) -> dict[str, Client]:
    made = {}
    for subject in SUBJECTS:
        client = Client()
        if subject != "anonymous":
            client.force_login(w["users"][subject])
        made[subject] = client
    return made


def cases(route: Route) -> list[str]:
    return list(SIDES) if route.per_side else ["own"]


def reads(world: dict[str, Any], clients: dict[str, Client]) -> list[str]:
    """Every route, as every subject, for each organisation's object: status and markers."""
    problems = []
    for subject, client in clients.items():
        for key, route in ROUTES.items():
            if route.subjects is not None and subject not in route.subjects:
                continue
            for side in cases(route):
                url = route.url(world, subject, side)
                response = client.get(url)
                wanted = route.expect(subject, side)
                if response.status_code != wanted:
                    problems.append(
                        f"{subject:10} GET {url} ({key}, {side}): "
                        f"{response.status_code}, expected {wanted}"
                    )
                if response.status_code == LOGIN and wanted == LOGIN and subject == "anonymous":
                    location = response.get("Location", "")
                    if key not in ("", "admin:logout") and "/login/" not in location:
                        problems.append(f"anonymous  GET {url}: redirected to {location!r}")
                allowed = route.marker_of(side) if route.marker_of else None
                text = body_of(response)
                for mark in forbidden_markers(subject):
                    if mark != allowed and mark in text:
                        problems.append(f"{subject:10} GET {url} ({key}, {side}): shows {mark}")
    return problems


def snapshot() -> dict[str, int]:
    """Row counts of every table a write could touch (field history and admin log included)."""
    counted: list[Any] = [*apps.get_app_config("obligations").get_models(), LogEntry]
    counted.append(get_user_model())
    return {
        model._meta.label: model.objects.count()
        for model in counted
        if model is not AccessLog  # signing in and downloading append to it
    }


def writes(world: dict[str, Any], clients: dict[str, Client]) -> list[str]:
    """Every write the table lists, sent by each subject that may not make it: refused
    (403, 404 or 405; anonymous: the login page or 401), and nothing in the database
    changes. The outsider (an editor in B) and the lapsed auditor try organisation A's
    objects and the changelists' bulk actions."""
    before = snapshot()
    problems = []
    for subject, client in clients.items():
        if subject in EDITORS:
            continue
        for key, route in ROUTES.items():
            if subject in ("outsider", "expired") and not (route.per_side or route.post_data):
                continue
            for method in route.writes:
                url = route.url(world, subject, "own")
                if method == "POST":
                    data = route.post_data(world, subject) if route.post_data else {}
                    response = client.post(url, data=data)
                else:
                    response = client.generic(method, url, "{}", "application/json")
                refused = {LOGIN, API_ANON} if subject == "anonymous" else route.refusals
                if response.status_code not in refused:
                    problems.append(f"{subject:10} {method} {url} ({key}): {response.status_code}")
    after = snapshot()
    problems += [
        f"{label}: {before[label]} rows before the refused writes, {after[label]} after"
        for label in before
        if before[label] != after[label]
    ]
    return problems


def test_every_role_gets_exactly_its_rights_everywhere(world):
    """One test, so that the data is built once: reads, writes, and a calendar address whose
    user's access expired. Every problem is collected and reported together."""
    signed_in = clients(world)
    problems = reads(world, signed_in)
    lapsed = Client().get(reverse("calendar-feed", args=[world["lapsed_feed"]]))
    if lapsed.status_code != 404 or MARK["A"] in lapsed.content.decode():
        problems.append(f"the lapsed auditor's calendar address answers {lapsed.status_code}")
    problems += writes(world, signed_in)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
