"""The API answers in its own JSON shape, {"error", "fields"}, whatever goes wrong: here, a
body nested too deep."""

import json

from rest_framework.test import APIClient

from tests.test_api import client_for, obligation, team  # noqa: F401 (fixture)

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


def test_a_body_nested_50000_deep_is_a_400_not_a_500(team):  # noqa: F811
    client = client_for(team["casey"])
    for url in (
        "/api/v1/applicability/",
        "/api/v1/services/",
        f"/api/v1/obligations/{obligation(team).pk}/owner/",
    ):
        response = client.post(url, deep_json(DEEP), content_type="application/json")
        assert response.status_code == 400, url
        assert "nested more than 32 levels deep" in error_shape(response)["error"]


def test_the_browsable_api_refuses_it_too(team):  # noqa: F811
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


def test_ordinary_nesting_still_parses(team):  # noqa: F811
    body = json.dumps({**PROFILE, "features": []})
    response = client_for(team["casey"]).post(
        "/api/v1/applicability/", body, content_type="application/json"
    )
    assert response.status_code == 200, response.json()
