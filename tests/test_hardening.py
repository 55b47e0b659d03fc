"""Hardening: the access log, sign-in throttling, the Content Security Policy, evidence served
only as an attachment, the record that cannot be rewritten, and production settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.apps import apps
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from obligations.access.models import AccessAction, AccessLog, MembershipEvent, Role
from obligations.access.signin import client_ip, record_access
from obligations.access.tokens import create_api_token
from obligations.notices.models import NoticeEvent
from obligations.providers.models import Service
from obligations.register.evidence import add_evidence_file
from obligations.register.models import Event
from obligations.register.states import EventSource
from tests.browser import browser_sign_in
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member
from tests.helpers import private_pem

ADMIN = EventSource.ADMIN
PDF = b"%PDF-1.4\n" + b"policy " * 50 + b"\n%%EOF\n"
PASSWORD = "pw-for-tests-only"


@pytest.fixture
def team(catalogue):  # type: ignore[no-untyped-def]
    ours, theirs = OrganisationFactory(name="Ours"), OrganisationFactory(name="Theirs")
    service = applied_service(provider=ProviderFactory(organisation=ours), name="Chat")
    casey = member(ours, username="casey")
    evidence = add_evidence_file(
        actor=casey,
        cycle=service.obligations.get(duty__code="U2U-RECORDS").current_cycle,
        uploaded=SimpleUploadedFile("policy.pdf", PDF),
        title="Policy",
        source=ADMIN,
    )
    return {
        "ours": ours,
        "service": service,
        "casey": casey,
        "evidence": evidence,
        "ada": member(ours, role=Role.ADMIN, username="ada"),
        "audrey": member(ours, role=Role.AUDITOR, username="audrey"),
        "tess": member(theirs, role=Role.ADMIN, username="tess"),
    }


def sign_in(client: Client, username: str, password: str, ip: str = "203.0.113.9") -> str:
    response = client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
    )
    return response.content.decode() if response.status_code == 200 else response["Location"]


# --- The access log -------------------------------------------------------------------


def test_sign_ins_exports_packs_and_downloads_are_logged_for_the_organisation_admins(
    team, settings
):
    settings.AUDIT_PACK_SIGNING_KEY = private_pem(Ed25519PrivateKey.generate())
    client = Client(HTTP_USER_AGENT="Auditor's browser")
    assert sign_in(client, "audrey", "wrong").count("correct username and password")
    assert sign_in(client, "audrey", PASSWORD) == "/admin/"
    export = client.get(reverse("api:obligation-export", kwargs={"kind": "csv"}))
    assert export.status_code == 200
    b"".join(export.streaming_content)
    pack = client.get(reverse("api:audit-pack") + f"?service={team['service'].pk}")
    assert pack.status_code == 200
    download = client.get(reverse("evidence-download", args=[team["evidence"].pk]))
    assert download.status_code == 200

    rows = list(AccessLog.objects.order_by("at", "pk"))
    assert [r.action for r in rows] == [
        AccessAction.SIGN_IN_FAILED,
        AccessAction.SIGN_IN,
        AccessAction.EXPORT,
        AccessAction.AUDIT_PACK,
        AccessAction.EVIDENCE_DOWNLOAD,
    ]
    assert {r.username for r in rows} == {"audrey"}
    assert {r.ip_address for r in rows[:2]} == {"203.0.113.9"}  # the sign-in form's address
    assert {r.ip_address for r in rows[2:]} == {"127.0.0.1"}  # the test client's default
    assert rows[2].user_agent == "Auditor's browser"
    assert rows[2].organisation == team["ours"] and "filters: none" in rows[2].description
    assert team["evidence"].sha256 in rows[4].description

    # Ours's admin sees all five; theirs's admin none; a compliance member cannot open it.
    url = reverse("admin:obligations_accesslog_changelist")
    ada, tess, casey = Client(), Client(), Client()
    ada.force_login(team["ada"])
    tess.force_login(team["tess"])
    casey.force_login(team["casey"])
    listed = ada.get(url)
    assert listed.status_code == 200
    assert listed.context["cl"].result_count == 5 + 2  # and Ada's and Casey's sign-ins
    assert tess.get(url).context["cl"].result_count == 1  # her own sign-in only
    assert casey.get(url).status_code == 403
    # Never editable, never deletable, never added by hand.
    entry = rows[2]
    assert (
        ada.post(reverse("admin:obligations_accesslog_change", args=[entry.pk])).status_code == 403
    )
    assert (
        ada.post(reverse("admin:obligations_accesslog_delete", args=[entry.pk])).status_code == 403
    )
    assert ada.get(reverse("admin:obligations_accesslog_add")).status_code == 403
    assert AccessLog.objects.filter(pk=entry.pk).exists()


# --- Throttling --------------------------------------------------------------------------


def test_sign_in_pauses_after_five_failures_for_a_name_from_an_address(team):
    client = Client()
    for _ in range(settings.SIGN_IN_FAILURES_PER_NAME):
        assert "correct username and password" in sign_in(client, "casey", "guess")
    # Now even the right password is refused, with a message saying why and for how long.
    page = sign_in(client, "casey", PASSWORD)
    assert "Too many failed sign-ins" in page and "15 minutes" in page
    assert AccessLog.objects.filter(action=AccessAction.SIGN_IN_THROTTLED).count() == 1
    # Another address is not held up by this one's failures.
    assert sign_in(Client(), "casey", PASSWORD, ip="198.51.100.7") == "/admin/"


def test_sign_in_resumes_after_the_lockout(team, clock):
    client = Client()
    for _ in range(settings.SIGN_IN_FAILURES_PER_NAME):
        sign_in(client, "casey", "guess")
    assert "Too many" in sign_in(client, "casey", PASSWORD)
    clock.shift(60 * settings.SIGN_IN_LOCKOUT_MINUTES + 1)
    assert sign_in(client, "casey", PASSWORD) == "/admin/"


def test_an_address_spraying_many_names_is_paused(team, settings):
    settings.SIGN_IN_FAILURES_PER_ADDRESS = 3
    client = Client()
    for name in ("ann", "bob", "cat"):
        sign_in(client, name, "guess")
    assert "Too many" in sign_in(client, "casey", PASSWORD)


def test_api_keys_guessed_from_one_address_are_refused_with_429(team, settings):
    settings.SIGN_IN_FAILURES_PER_ADDRESS = 3
    _, key = create_api_token(actor=team["casey"], name="ci")
    guesser = APIClient(REMOTE_ADDR="192.0.2.1")
    guesser.credentials(HTTP_AUTHORIZATION="Token osa_guess")
    assert [guesser.get("/api/v1/services/").status_code for _ in range(3)] == [401] * 3
    guesser.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    refused = guesser.get("/api/v1/services/")
    assert refused.status_code == 429 and "Too many refused API keys" in refused.json()["error"]
    elsewhere = APIClient(REMOTE_ADDR="192.0.2.2")
    elsewhere.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert elsewhere.get("/api/v1/services/").status_code == 200


def test_behind_trusted_proxies_the_forwarded_address_counts(rf, settings):
    settings.TRUSTED_PROXIES = 1
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.5")
    assert client_ip(request) == "203.0.113.5"  # the hop our proxy saw, not a claim
    settings.TRUSTED_PROXIES = 0
    assert client_ip(request) == "10.0.0.1"


# --- Content Security Policy -------------------------------------------------------------


def test_the_dashboards_carry_a_strict_policy_and_no_inline_styles_or_scripts(team):
    client = Client()
    client.force_login(team["ada"])
    for url in (
        reverse("dashboard:organisation"),
        reverse("dashboard:service", args=[team["service"].pk]),
        reverse("measures-record", args=[team["service"].pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        policy = response["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self';" in policy
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        nonce = response.wsgi_request.csp_nonce
        assert f"style-src 'self' 'nonce-{nonce}'" in policy
        html = response.content.decode()
        assert " style=" not in html and "<script" not in html
        assert html.count("<style") == html.count(f'<style nonce="{nonce}">') == 1
    # Each response gets its own nonce.
    assert client.get(reverse("dashboard:organisation")).wsgi_request.csp_nonce != nonce


def test_the_admin_allows_inline_styles_but_never_inline_scripts(team):
    client = Client()
    client.force_login(team["ada"])
    policy = client.get(reverse("admin:index"))["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy and "script-src 'self';" in policy
    assert "nonce" not in policy  # a nonce would switch 'unsafe-inline' off


def test_no_page_may_run_an_inline_script_swagger_ui_included(team):
    client = Client()
    client.force_login(team["ada"])
    for url in (
        reverse("api-docs"),
        reverse("api:api-root"),
        reverse("admin:index"),
        reverse("dashboard:organisation"),
    ):
        policy = client.get(url)["Content-Security-Policy"]
        assert "script-src 'self';" in policy, url
        assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0], url


def test_swagger_ui_loads_its_start_up_script_as_a_file(team):
    client = Client()
    client.force_login(team["ada"])
    page = client.get(reverse("api-docs"))
    assert page.status_code == 200
    html = page.content.decode()
    # Every <script> names a file and holds nothing inline.
    assert html.count("<script") == html.count('"></script>') == 3
    start = reverse("api-docs") + "?script="
    assert f'<script src="{start}"></script>' in html
    script = client.get(start)
    assert script.status_code == 200
    assert script["Content-Type"] == "application/javascript"
    assert f'url: "{reverse("api-schema")}"' in script.content.decode()


# --- Evidence ----------------------------------------------------------------------------


def test_evidence_is_an_attachment_never_sniffed_and_never_under_a_public_url(team):
    assert not settings.MEDIA_URL.strip("/")  # no media URL, and no pattern serving files
    assert settings.STORAGES["default"]["OPTIONS"]["base_url"] is None  # type: ignore[index]
    stored = team["evidence"].file.name
    client = Client()
    for path in (f"/{stored}", f"/media/{stored}", f"/evidence/{stored}"):
        assert client.get(path).status_code in (302, 404), path
    client.force_login(team["audrey"])
    for url in (
        reverse("evidence-download", args=[team["evidence"].pk]),
        reverse("api:evidence-download", kwargs={"pk": team["evidence"].pk}),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith("attachment;")
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert Client().get(reverse("evidence-download", args=[team["evidence"].pk])).status_code == 302


# --- The record cannot be rewritten --------------------------------------------------------


APPEND_ONLY = [
    model
    for model in apps.get_app_config("obligations").get_models()
    if model.__name__.startswith("Historical")
    or model in (Event, NoticeEvent, AccessLog, MembershipEvent)
]


def test_history_and_events_have_no_edit_or_delete_in_the_admin_or_the_api(team):
    client = Client()
    client.force_login(team["ada"])
    obligation = team["service"].obligations.get(duty__code="U2U-RECORDS")
    event = obligation.events.first()
    version = obligation.history.first()
    # A POSTed old version would be saved by simple-history: refused.
    url = reverse(
        "admin:obligations_obligation_simple_history", args=[obligation.pk, version.history_id]
    )
    assert client.post(url, {"owner": team["audrey"].pk}).status_code == 405
    assert client.get(url).status_code == 200
    # Events and history have no admin pages of their own; the API lists them, read-only.
    from django.contrib.admin import site

    assert not any(model in site._registry for model in APPEND_ONLY if model is not AccessLog)
    api = APIClient()
    api.force_authenticate(team["ada"])
    for method in ("put", "patch", "delete"):
        assert getattr(api, method)(f"/api/v1/events/{event.pk}/").status_code == 405
    assert api.post("/api/v1/events/", {}).status_code == 405
    assert Event.objects.filter(pk=event.pk, reason=event.reason).exists()
    assert obligation.history.count() >= 1 and obligation.owner_id is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_trigger_refuses_update_and_delete_of_the_record(team):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT event_object_table FROM information_schema.triggers "
            "WHERE trigger_name LIKE %s",
            ["%_append_only"],
        )
        guarded = {row[0] for row in cursor.fetchall()}
    assert guarded == {model._meta.db_table for model in APPEND_ONLY}
    record_access(user=None, action=AccessAction.SIGN_IN_FAILED, request=None)
    for model in APPEND_ONLY:
        table = model._meta.db_table
        if not model.objects.exists():
            continue
        for sql in (f"UPDATE {table} SET id = id", f"DELETE FROM {table}"):
            with (
                pytest.raises(DatabaseError, match="append-only"),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                cursor.execute(sql)
    assert Event.objects.exists() and AccessLog.objects.exists()


# --- In a real browser ----------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class TestInABrowser:
    @pytest.fixture
    def clock(self) -> Iterator[None]:
        """The live server needs the real clock (sessions), as in tests/test_browser.py."""
        yield None

    def test_no_page_breaks_the_content_security_policy(self, live_server, browser):
        call_command("load_catalogue", verbosity=0)
        call_command("load_demo", verbosity=0)
        service = Service.objects.get(name="Northwind Social")
        obligation = service.obligations.get(duty__code="U2U-ILLEGAL-RA")
        page = browser.new_page()
        refused: list[str] = []
        page.on(
            "console",
            lambda message: (
                refused.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text
                else None
            ),
        )
        browser_sign_in(page, live_server.url, "manager")
        for path in (
            "/dashboard/",
            f"/dashboard/services/{service.pk}/",
            f"/records/services/{service.pk}/measures/",
            f"/admin/obligations/obligation/{obligation.pk}/change/",
            "/admin/obligations/obligation/",
        ):
            page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
        # The heatmap's colours still apply (classes, not style attributes).
        page.goto(live_server.url + "/dashboard/")
        cell = page.locator("table.heatmap td").first
        assert cell.evaluate("c => getComputedStyle(c).backgroundColor") != "rgba(0, 0, 0, 0)"
        page.goto(live_server.url + "/api/docs/")
        page.wait_for_selector(".swagger-ui .info", timeout=20000)
        assert not refused, "\n".join(refused)
