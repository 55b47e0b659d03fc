"""The API keeps its published contract: a valid OpenAPI 3 schema that lists every endpoint,
Swagger UI served from local files only, and no request, however odd, that makes a 5xx."""

import datetime as dt
import re
from collections import Counter
from decimal import Decimal

import hypothesis
import pytest
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from rest_framework.routers import APIRootView
from rest_framework.test import APIClient
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from obligations.access.models import Organisation
from obligations.access.tokens import create_api_token
from obligations.api.urls import router, urlpatterns
from obligations.assessments.actions import decide_measure, start_assessment
from obligations.assessments.models import MeasureDecision, MeasureDecisionKind, RiskAssessment
from obligations.catalogue.models import CodeMeasure, Duty, Exemption, Feature, RegisterCategory
from obligations.notices.actions import record_notice
from obligations.notices.models import NoticeKind, OfcomNotice, TechnologyNotice
from obligations.providers.models import Provider, RevenueBasis, RevenuePeriod, Service
from obligations.register.evidence import add_evidence_file, add_evidence_link
from obligations.register.models import Event, Evidence, Obligation, ObligationCycle
from obligations.register.states import EventSource
from obligations.reminders.models import Reminder
from tests.conftest import TODAY
from tests.factories import (
    OrganisationFactory,
    ProviderFactory,
    applied_service,
    due_soon_reminder,
    member,
)

PDF = b"%PDF-1.4\n" + b"policy " * 50 + b"\n%%EOF\n"
ADMIN = EventSource.ADMIN
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Each list's path segment (and two other kinds of row), and the model its ids name.
ROWS = {
    "organisations": Organisation,
    "providers": Provider,
    "services": Service,
    "duties": Duty,
    "obligations": Obligation,
    "events": Event,
    "evidence": Evidence,
    "technology-notices": TechnologyNotice,
    "ofcom-notices": OfcomNotice,
    "reminders": Reminder,
    "risk-assessments": RiskAssessment,
    "measure-decisions": MeasureDecision,
    "cycles": ObligationCycle,
    "users": User,
}
# Query parameters and body fields that name a row, and which kind.
NAMED = {
    "organisation": "organisations",
    "provider": "providers",
    "service": "services",
    "obligation": "obligations",
    "cycle": "cycles",
    "owner": "users",
    "actor": "users",
    "recipient": "users",
}


def world() -> dict[str, object]:
    """Two organisations: ours with one of everything the API lists, theirs with a service."""
    ours, theirs = OrganisationFactory(name="Ours"), OrganisationFactory(name="Theirs")
    provider = ProviderFactory(organisation=ours, name="Northwind")
    service = applied_service(provider=provider, name="Chat", features=["e2ee_messaging"])
    other = applied_service(provider=ProviderFactory(organisation=theirs), name="Elsewhere")
    casey, rita = member(ours, username="casey"), member(ours, username="rita")
    eve = member(theirs, username="eve")
    RevenuePeriod.objects.create(
        provider=provider,
        start=dt.date(2025, 1, 1),
        end=dt.date(2025, 12, 31),
        amount_gbp=Decimal("250000000.00"),
        basis=RevenueBasis.AUDITED,
    )
    cycle = service.obligations.get(duty__code="U2U-RECORDS").current_cycle
    add_evidence_link(
        actor=casey, cycle=cycle, url="https://wiki.example.test/r", title="Wiki", source=ADMIN
    )
    evidence = add_evidence_file(
        actor=casey,
        cycle=cycle,
        uploaded=SimpleUploadedFile("policy.pdf", PDF),
        title="Policy",
        source=ADMIN,
    )
    add_evidence_link(
        actor=eve,
        cycle=other.obligations.get(duty__code="U2U-RECORDS").current_cycle,
        url="https://theirs.example.test/r",
        title="Theirs",
        source=ADMIN,
    )
    record_notice(
        actor=casey,
        notice=TechnologyNotice(
            service=service, ofcom_reference="TN-1", csea_public=True, csea_private=True
        ),
        source=ADMIN,
    )
    record_notice(
        actor=casey,
        notice=OfcomNotice(
            service=service,
            kind=NoticeKind.PENALTY,
            given_on=TODAY,
            single_penalty_gbp=Decimal("50000"),
            pay_by=TODAY + dt.timedelta(days=28),
        ),
        source=ADMIN,
    )
    due_soon_reminder(cycle, casey, TODAY)
    assessment_cycle = service.obligations.get(duty__code="U2U-ILLEGAL-RA").current_cycle
    start_assessment(actor=casey, cycle=assessment_cycle, source=ADMIN)
    decide_measure(
        actor=casey,
        service=service,
        measure=CodeMeasure.objects.get(code="ICU G3"),
        decision=MeasureDecisionKind.ADOPTED,
        detail="",
        evidence=[evidence],
    )
    return {"service": service, "other": other, "casey": casey, "rita": rita, "eve": eve}


def token_for(user: User) -> str:
    _, key = create_api_token(actor=user, name="contract", read_only=False)
    return key


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


# --- The schema --------------------------------------------------------------


def url_operations() -> set[tuple[str, str]]:
    """(METHOD, /api/v1/path/{param}/) for every route in obligations/api/urls.py, read from
    the URL patterns themselves rather than from the schema generator."""

    def as_path(pattern: str) -> str:
        pattern = pattern.removeprefix("^").removesuffix("$")
        pattern = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern).replace("{pk}", "{id}")
        return "/api/v1/" + pattern

    found = set()
    for url in router.urls:
        pattern = str(url.pattern)
        if "format>" in pattern or issubclass(
            url.callback.cls, APIRootView
        ):  # `.json`; a page of links
            continue
        methods = HTTP_METHODS & set(url.callback.actions)  # DRF adds "head" on first use
        found |= {(method.upper(), as_path(pattern)) for method in methods}
    for url in urlpatterns:
        cls = getattr(getattr(url, "callback", None), "cls", None)  # not the router's include()
        if cls is not None:
            methods = HTTP_METHODS & set(dir(cls))
            found |= {(method.upper(), as_path(str(url.pattern))) for method in methods}
    return found


def test_the_schema_is_valid_openapi_3_and_lists_every_endpoint(catalogue):
    user = member(OrganisationFactory(), username="casey")
    response = client_for(user).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    body = response.json()
    assert body["openapi"].startswith("3.")
    # openapi-spec-validator is not installed; schemathesis checks the document against the
    # official OpenAPI 3.0 meta-schema (and drf-spectacular's own check runs below).
    schemathesis.openapi.from_dict(body).validate()
    published = {
        (method.upper(), path)
        for path, item in body["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert url_operations() == published
    paths = body["paths"]
    history = paths["/api/v1/obligations/{id}/history/"]["get"]["responses"]["200"]["content"]
    assert history["application/json"]["schema"]["type"] == "array"  # one list, not pages
    export = paths["/api/v1/obligations/export/{kind}/"]["get"]["responses"]["200"]["content"]
    assert set(export) == {"text/csv", "application/json", XLSX}
    download = paths["/api/v1/evidence/{id}/download/"]["get"]["responses"]["200"]["content"]
    assert set(download) == {"*/*"}  # the file comes back as the type it was stored as
    statuses = {"$ref": "#/components/schemas/CycleStatusEnum"}  # one name, wherever used
    assert body["components"]["schemas"]["TransitionRequest"]["properties"]["to"]["allOf"] == [
        statuses
    ]
    assert body["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": 'Token-based authentication with required prefix "Token"',
    }


def test_spectacular_generates_the_schema_without_a_warning(tmp_path, capsys):
    GENERATOR_STATS.reset()  # warnings an earlier generation in this process left behind
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "Warning" not in capsys.readouterr().err
    assert out.read_text().startswith("openapi: 3.0")


def test_swagger_ui_is_served_from_local_files_only(client, catalogue):
    client.force_login(member(OrganisationFactory(), username="casey"))
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn" not in html.lower()
    assert not re.search(r"(https?:)?//[\w.-]+\.[a-z]{2,}", html), "an absolute URL"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    # The stylesheet, the bundle, the preset, and the start-up script made for the page.
    assert len(assets) >= 4 and "/api/docs/?script=" in assets
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200, asset
        body = b"".join(served.streaming_content) if served.streaming else served.content
        assert body, asset
        if asset == "/api/docs/?script=":
            assert b"cdn" not in body.lower()
        else:
            assert asset.startswith("/static/"), asset
            assert finders.find(asset.removeprefix("/static/")), asset


# --- Property-based: no request makes a 5xx ------------------------------------

# No 5xx; and a documented response has the documented type and shape. (Not checked: that
# every status is documented. The schema lists each operation's success only, not its
# 400/401/403/404/413/415, which drf-spectacular does not generate.)
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
FUZZ = hypothesis.settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same cases on every run: a red build is a regression, not luck
    database=None,  # nothing written under the project
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
)


def existing(values, ids):  # type: ignore[no-untyped-def]
    """`values` as generated or, as often, with each key that names a row set to one that
    exists (ours or theirs), so that cases get past "not found" to the code behind it."""
    names = [k for k in values if ids.get(k)] if isinstance(values, dict) else []
    if not names:
        return st.just(values)

    def one_or_many(name):  # type: ignore[no-untyped-def]
        if isinstance(values[name], list):
            return st.lists(st.sampled_from(ids[name]), max_size=3, unique=True)
        return st.sampled_from(ids[name])

    rows = st.fixed_dictionaries({k: one_or_many(k) for k in names})
    return st.one_of(st.just(values), rows.map(lambda chosen: {**values, **chosen}))


def good_requests(data):  # type: ignore[no-untyped-def]
    """For the operations random data seldom gets right, one request that must succeed."""
    service, ob = data["service"], data["service"].obligations.get(duty__code="U2U-RECORDS")
    return {
        "POST /api/v1/applicability/": {
            "body": {"name": "New app", "user_to_user": True, "search": False},
            "media_type": "application/json",
        },
        "GET /api/v1/audit-packs/": {"query": {"service": service.pk}},
        "POST /api/v1/services/": {
            "body": {"provider": service.provider_id, "name": "Forum", "search": True},
            "media_type": "application/json",
        },
        "PUT /api/v1/services/{id}/": {
            "path_parameters": {"id": service.pk},
            "body": {"provider": service.provider_id, "name": "Chat", "user_to_user": True},
            "media_type": "application/json",
        },
        "POST /api/v1/obligations/{id}/evidence/": {
            "path_parameters": {"id": ob.pk},
            "body": {"file": PDF, "title": "Records policy"},
            "media_type": "multipart/form-data",
        },
        "POST /api/v1/obligations/{id}/transition/": {
            "path_parameters": {"id": ob.pk},
            "body": {"to": "in_progress"},
            "media_type": "application/json",
        },
        "POST /api/v1/obligations/{id}/owner/": {
            "path_parameters": {"id": ob.pk},
            "body": {"owner": data["rita"].pk},
            "media_type": "application/json",
        },
        "POST /api/v1/obligations/{id}/due-date/": {
            "path_parameters": {"id": ob.pk},
            "body": {"due_date": "2027-01-29", "reason": "Agreed with Ofcom"},
            "media_type": "application/json",
        },
        "PATCH /api/v1/services/{id}/": {
            "path_parameters": {"id": service.pk},
            "body": {"name": "Chat and calls"},
            "media_type": "application/json",
        },
    }


@pytest.fixture
def signing_key(settings):  # type: ignore[no-untyped-def]
    """Audit packs signed with a throwaway key, never the development key kept in var/."""
    key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    settings.AUDIT_PACK_SIGNING_KEY, settings.AUDIT_PACK_SIGNING_KEY_FILE = key.decode(), ""


@pytest.fixture
def hypothesis_home(tmp_path):  # type: ignore[no-untyped-def]
    """Hypothesis keeps its caches in a temporary directory, not in .hypothesis/ here."""
    set_hypothesis_home_dir(tmp_path / "hypothesis")
    yield
    set_hypothesis_home_dir(None)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("evidence_storage", "signing_key", "hypothesis_home")
def test_no_request_makes_a_server_error(live_server, catalogue):
    """Every operation in the published schema, with valid and invalid data, as a compliance
    member with a write token: a 4xx for what is wrong, never a 5xx."""
    data = world()
    auth = {"Authorization": f"Token {token_for(data['casey'])}"}
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/", headers=auth)
    schema.validate()
    rows = {name: list(model.objects.values_list("pk", flat=True)) for name, model in ROWS.items()}
    named = {name: rows[kind] for name, kind in NAMED.items()}
    named.update(
        categories=list(RegisterCategory.objects.values_list("code", flat=True)),
        features=list(Feature.objects.values_list("code", flat=True)),
        exemption=list(Exemption.objects.values_list("code", flat=True)),
    )

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):  # type: ignore[no-untyped-def]
        match = re.match(r"^/api/v1/([^/]+)/\{id\}/", context.operation.path)
        return existing(path_parameters, {"id": rows.get(match.group(1)) if match else None})

    @schema.hook
    def flatmap_query(context, query):  # type: ignore[no-untyped-def]
        with_rows = existing(query, named)
        if context.operation.method.upper() == "GET":
            return with_rows
        return st.one_of(with_rows, st.just({}))  # on a write, the list's filters are noise

    @schema.hook
    def flatmap_body(context, body):  # type: ignore[no-untyped-def]
        return existing(body, named)

    failures: dict[str, str] = {}
    statuses: dict[str, Counter[int]] = {}
    good = good_requests(data)
    for result in schema.get_all_operations():
        operation = result.ok()
        cases = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        def call(case):  # type: ignore[no-untyped-def]
            response = case.call_and_validate(
                base_url=live_server.url, headers=auth, checks=CHECKS, timeout=30
            )
            statuses.setdefault(case.operation.label, Counter())[response.status_code] += 1

        fuzz = hypothesis.given(case=cases)(call)
        if operation.label in good:  # a request that must succeed, besides the random ones
            fuzz = hypothesis.example(case=operation.Case(**good[operation.label]))(fuzz)
        fuzz = FUZZ(fuzz)
        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # every operation runs; all are reported
            failures[operation.label] = str(exc)
    assert not failures, "\n\n".join(f"{label}:\n{error}" for label, error in failures.items())
    ran = {tuple(label.split()) for label in statuses if not label.startswith("HEAD ")}
    assert ran == url_operations()
    # The token worked (every operation got past it) and each write went through at least once.
    assert [label for label, seen in statuses.items() if set(seen) <= {401, 403}] == []
    assert [label for label in good if not any(200 <= s < 300 for s in statuses[label])] == []


# --- What the property-based run found ---------------------------------------


@pytest.fixture
def casey(catalogue):  # type: ignore[no-untyped-def]
    organisation = OrganisationFactory(name="Ours")
    service = applied_service(provider=ProviderFactory(organisation=organisation), name="Chat")
    return {"client": client_for(member(organisation, username="casey")), "service": service}


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/api/v1/providers/", {"organisation": "-1.7976931348623157e+308"}, "organisation"),
        ("/api/v1/services/", {"organisation": "-9.460963859810781e+18"}, "organisation"),
        ("/api/v1/obligations/", {"service": "99999999999999999999"}, "service"),
        ("/api/v1/obligations/", {"owner": "1.5"}, "owner"),
        ("/api/v1/events/", {"actor": "1.3925021600233493e+44"}, "actor"),
        ("/api/v1/evidence/", {"cycle": "-1.69e+180"}, "cycle"),
        ("/api/v1/reminders/", {"recipient": "0"}, "recipient"),
        ("/api/v1/ofcom-notices/", {"provider": "-1.7976931348623157e+308"}, "provider"),
        ("/api/v1/obligations/", {"updated_since": "0001-01-01T00:00:00+14:00"}, "updated_since"),
        ("/api/v1/events/", {"until": "9999-12-31T23:59:59-12:00"}, "until"),
        ("/api/v1/evidence/", {"uploaded_since": "0001-01-01T00:00:00+14:00"}, "uploaded_since"),
        ("/api/v1/obligations/", {"page_size": "²"}, "page_size"),
        ("/api/v1/obligations/", {"cursor": "cj0wJnA9eHh4"}, "cursor"),  # r=0&p=xxx
    ],
)
def test_an_unreadable_filter_is_a_400_not_a_server_error(casey, url, params, field):
    """Ids past 64 bits or with fractions, and times outside years 1-9999 in UTC, overflowed
    in the database driver (a 500 on SQLite); page sizes like "²" and cursors whose position
    is not an id failed in int()."""
    response = casey["client"].get(url, params)
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]


def test_history_refuses_an_overflowing_filter_too(casey):
    ob = casey["service"].obligations.get(duty__code="U2U-RECORDS")
    response = casey["client"].get(
        f"/api/v1/obligations/{ob.pk}/history/", {"owner": "-1.7976931348623157e+308"}
    )
    assert response.status_code == 400
    assert "owner" in response.json()["fields"]


def test_ids_in_filters_still_find_rows(casey):
    client, service = casey["client"], casey["service"]
    body = client.get("/api/v1/obligations/", {"service": str(service.pk), "page_size": 500})
    assert body.status_code == 200
    assert {r["service_id"] for r in body.json()["results"]} == {service.pk}
    since = client.get("/api/v1/events/", {"since": "2026-11-24T09:00:00+00:00"})
    assert since.status_code == 200 and since.json()["results"]


def test_a_time_with_a_far_offset_is_compared_as_the_instant_it_names(casey):
    """+22:30 is a valid ISO 8601 offset that PostgreSQL refuses ("time zone displacement out
    of range", a 500): the filter sends the instant in UTC instead."""
    client = casey["client"]
    # 2026-11-25 08:00 at +22:30 is 2026-11-24 09:30 UTC: before the events (10:00), then after.
    before = client.get("/api/v1/events/", {"since": "2026-11-25T08:00:00+22:30"})
    assert before.status_code == 200, before.content
    assert before.json()["results"]
    after = client.get("/api/v1/events/", {"since": "2026-11-25T09:00:00+22:30"})
    assert after.status_code == 200
    assert after.json()["results"] == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("obligations/{ob}/owner/", '{"owner": 1e400}', "owner"),
        ("obligations/{ob}/owner/", '{"owner": -1e400}', "owner"),
        ("services/", '{"provider": 1e400, "name": "X", "search": true}', "provider"),
        ("services/{service}/", '{"provider": 1e400}', "provider"),
    ],
)
def test_an_infinite_id_in_json_is_a_400(casey, path, body, field):
    """JSON's 1e400 parses as infinity, which int() cannot take: PrimaryKeyRelatedField let
    that OverflowError through as a 500."""
    ob = casey["service"].obligations.get(duty__code="U2U-RECORDS")
    url = "/api/v1/" + path.format(ob=ob.pk, service=casey["service"].pk)
    client = casey["client"]
    send = client.patch if path.startswith("services/{") else client.post
    response = send(url, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]


def test_an_audit_pack_for_a_superscript_id_is_a_400(casey):
    response = casey["client"].get("/api/v1/audit-packs/", {"service": "²"})
    assert response.status_code == 400


@pytest.mark.parametrize("params", [{"owner": "²"}, {"as_of": "0001-01-01"}])
def test_the_dashboard_refuses_what_it_cannot_read(casey, params):
    response = casey["client"].get("/api/v1/dashboard/", params)
    assert response.status_code == 400
    assert set(params) <= set(response.json()["fields"])
