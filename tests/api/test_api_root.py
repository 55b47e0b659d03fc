"""The API's front page lists every endpoint a person may want, each with what it is for,
and every link on it works for an auditor."""

from __future__ import annotations

from django.urls import URLPattern

from obligations.api.urls import urlpatterns
from tests.helpers import client_for


def test_the_front_page_lists_every_endpoint_with_a_description(team):
    listed = client_for(team["audrey"]).get("/api/v1/").json()
    assert {"obligations export (XLSX)", "audit packs", "dashboard", "applicability"} <= set(listed)
    assert all(entry["description"].strip() for entry in listed.values())
    # Every route of the API's own URL list (not the router's) is on the page.
    paths = {entry["url"].removeprefix("http://testserver") for entry in listed.values()}
    for pattern in urlpatterns:
        if isinstance(pattern, URLPattern):
            assert "/api/v1/" + str(pattern.pattern) in paths, pattern.pattern


def test_every_link_on_the_front_page_answers_an_auditor(team):
    client = client_for(team["audrey"])
    for label, entry in client.get("/api/v1/").json().items():
        response = client.get(entry["url"])
        # The audit pack asks which service (400), applicability is a POST (405).
        expected = {"audit packs": 400, "applicability": 405}.get(label, 200)
        assert response.status_code == expected, (label, response.status_code)


def test_the_browsable_page_explains_the_api_in_words(team):
    page = client_for(team["audrey"]).get("/api/v1/", HTTP_ACCEPT="text/html")
    text = page.content.decode()
    assert "Every endpoint, with what it is for, is listed below" in text
    assert "The default basic root view for DefaultRouter" not in text


def test_the_front_page_answers_in_json_by_suffix_and_parameter(team):
    client = client_for(team["audrey"])
    for url in ("/api/v1/.json", "/api/v1/?format=json"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "audit packs" in response.json()
