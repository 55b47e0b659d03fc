"""The API answers in its own JSON shape, {"error", "fields"}, whatever goes wrong: a body
nested too deep or too big, an unknown address, a bug, the database going away; and an id
it refuses says nothing about which user ids exist."""

import json

import pytest
from django.db import OperationalError, connection
from rest_framework.test import APIClient

from obligations.api import reports as api_reports
from tests.factories import UserFactory, member
from tests.helpers import client_for, team_obligation

DEEP = 50_000
PROFILE = {"name": "New app", "user_to_user": True, "search": False}


def deep_json(depth: int) -> str:
    return '{"name": "x", "user_to_user": true, "search": false, "features": ' + (
        "[" * depth + "]" * depth + "}"
    )


def error_shape(response) -> dict:  # type: ignore[no-untyped-def]
    assert response["Content-Type"] == "application/json", response.content[:300]
    body = response.json()
    assert set(body) == {"error", "fields"} and body["error"]
    return body


def test_a_body_nested_50000_deep_is_a_400_not_a_500(team):
    client = client_for(team["casey"])
    for url in (
        "/api/v1/applicability/",
        "/api/v1/services/",
        f"/api/v1/obligations/{team_obligation(team).pk}/owner/",
    ):
        response = client.post(url, deep_json(DEEP), content_type="application/json")
        assert response.status_code == 400, url
        assert "nested more than 32 levels deep" in error_shape(response)["error"]


def test_the_browsable_api_refuses_it_too(team):
    client = APIClient()
    client.force_login(team["casey"])
    response = client.post(
        "/api/v1/applicability/",
        deep_json(DEEP),
        content_type="application/json",
        HTTP_ACCEPT="text/html",
    )
    assert response.status_code == 400
    assert "nested more than 32 levels deep" in response.content.decode()


def test_ordinary_nesting_still_parses(team):
    body = json.dumps({**PROFILE, "features": []})
    response = client_for(team["casey"]).post(
        "/api/v1/applicability/", body, content_type="application/json"
    )
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps({**PROFILE, "name": "x" * 2000}), "application/json"),
        ("name=" + "x" * 2000, "application/x-www-form-urlencoded"),
    ],
)
def test_a_body_over_the_upload_limit_is_a_json_413(team, settings, body, content_type):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client_for(team["casey"]).post(
        "/api/v1/applicability/", body, content_type=content_type
    )
    assert response.status_code == 413
    assert "1,000-byte limit" in error_shape(response)["error"]


def test_an_unknown_api_address_is_a_json_404_and_other_pages_keep_theirs(team, client):
    response = client_for(team["casey"]).get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert "no such address" in error_shape(response)["error"]
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_a_bug_in_an_api_view_is_a_json_500(team, monkeypatch):
    def broken() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(api_reports, "loaded_catalogue", broken)
    client = client_for(team["casey"])
    client.raise_request_exception = False
    response = client.post("/api/v1/applicability/", PROFILE, format="json")
    assert response.status_code == 500
    body = error_shape(response)
    assert "has been logged" in body["error"] and "a bug" not in body["error"]


def test_a_database_outage_is_a_json_503_saying_so(team):
    client = client_for(team["casey"])
    client.raise_request_exception = False

    def unreachable(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        raise OperationalError("could not connect to server: Connection refused")

    with connection.execute_wrapper(unreachable):
        response = client.get("/api/v1/obligations/")
    assert response.status_code == 503
    assert "cannot reach its database" in error_shape(response)["error"]
    assert response["Retry-After"] == "60"


def test_the_owner_field_gives_one_answer_for_an_unknown_id_and_an_outsider(team):
    url = f"/api/v1/obligations/{team_obligation(team).pk}/owner/"
    client = client_for(team["casey"])
    gone = member(team["org"], username="gone")
    type(gone).objects.filter(pk=gone.pk).update(is_active=False)  # the account closed since
    answers = {
        who: client.post(url, {"owner": pk}, format="json")
        for who, pk in {
            "another organisation's user": team["eve"].pk,
            "an id no user has": 10**9,
            "a member whose account is closed": gone.pk,
            "a user in no organisation": UserFactory().pk,
        }.items()
    }
    bodies = {who: (r.status_code, r.json()) for who, r in answers.items()}
    assert set(map(json.dumps, bodies.values())) == {
        json.dumps(
            (
                400,
                {
                    "error": "owner: Not a member of this obligation's organisation.",
                    "fields": {"owner": ["Not a member of this obligation's organisation."]},
                },
            )
        )
    }, bodies
    ours = client.post(url, {"owner": team["rita"].pk}, format="json")
    assert ours.status_code == 200 and ours.json()["owner"] == "rita"
    assert team_obligation(team).owner == team["rita"]
