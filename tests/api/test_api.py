"""The REST API as an auditor and a compliance engineer use it: tokens, scoping, filters,
the workflow with its four-eyes rule, evidence, services, applicability, and clear errors."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from obligations.access.models import ApiToken, Role
from obligations.access.tokens import create_api_token, revoke_api_token, secret_hash
from obligations.providers.models import RevenueBasis, RevenuePeriod, Service
from obligations.register.actions import assign_owner, set_due_date
from obligations.register.models import Event, Evidence, Obligation
from obligations.register.states import CycleStatus, EventSource
from obligations.register.workflow import do_start
from tests.conftest import TODAY
from tests.factories import (
    UserFactory,
    due_in,
    member,
    put_in,
)
from tests.helpers import client_for, team_obligation

PDF = b"%PDF-1.4\n" + b"policy " * 200 + b"\n%%EOF\n"
SYSTEM = EventSource.ADMIN


# --- Authentication and scoping --------------------------------------------


def test_without_a_valid_token_the_api_says_401(team):
    url = "/api/v1/obligations/"
    assert APIClient().get(url).status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token osa_not-a-real-key")
    response = bad.get(url)
    assert response.status_code == 401
    assert response.json()["error"] == "The token is not valid, or was revoked."


def test_a_revoked_or_expired_token_stops_working(team):
    user = team["casey"]
    token, key = create_api_token(actor=user, name="nightly")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/obligations/").status_code == 200
    assert ApiToken.objects.filter(key_hash=secret_hash(key)).exists()
    assert not ApiToken.objects.filter(key_hash=key).exists()  # only the hash is kept
    revoke_api_token(actor=user, token=token)
    assert client.get("/api/v1/obligations/").status_code == 401
    _, expiring = create_api_token(
        actor=user, name="short", expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    client.credentials(HTTP_AUTHORIZATION=f"Token {expiring}")
    assert client.get("/api/v1/obligations/").status_code == 401


def test_a_token_is_made_only_by_its_holder_and_revoked_by_their_admins(team):
    admin = member(team["org"], role=Role.ADMIN, username="ada")
    operator = UserFactory(username="root", is_superuser=True)
    # Whoever held another's key would act in their name: a token is always its maker's.
    for actor in (admin, operator):
        made, _ = create_api_token(actor=actor, name="their own")
        assert (made.user, made.created_by) == (actor, actor)
    token, _ = create_api_token(actor=team["casey"], name="mine")
    others, _ = create_api_token(actor=team["eve"], name="eve's")
    with pytest.raises(PermissionDenied):
        revoke_api_token(actor=team["rita"], token=token)  # a colleague may not
    with pytest.raises(PermissionDenied):
        revoke_api_token(actor=admin, token=others)  # nor another organisation's admin
    assert revoke_api_token(actor=admin, token=token)
    assert revoke_api_token(actor=operator, token=others)


def test_another_organisations_records_are_invisible_and_a_404(team):
    client = client_for(team["casey"])
    rows = client.get("/api/v1/obligations/", {"page_size": 500}).json()["results"]
    assert rows and {r["organisation"] for r in rows} == {"Ours"}
    theirs = team["other"].obligations.first()
    assert client.get(f"/api/v1/obligations/{theirs.pk}/").status_code == 404
    response = client.post(
        f"/api/v1/obligations/{theirs.pk}/transition/", {"to": "in_progress"}, format="json"
    )
    assert response.status_code == 404
    assert client.get(f"/api/v1/services/{team['other'].pk}/").status_code == 404
    names = [s["name"] for s in client.get("/api/v1/services/").json()["results"]]
    assert names == ["Chat"]


# --- Filters, pagination and errors -------------------------------------------


def test_filters_narrow_the_register(team, clock):
    ob = team_obligation(team)
    assign_owner(actor=team["casey"], obligation=ob, owner=team["casey"], source=SYSTEM)
    set_due_date(
        actor=team["casey"],
        cycle=ob.current_cycle,
        due=TODAY - dt.timedelta(days=3),
        reason="Agreed with Ofcom",
        source=SYSTEM,
    )
    do_start(actor=team["casey"], cycle=ob.current_cycle, source=SYSTEM)
    # Met, and its date past: done, not overdue.
    done = team["service"].obligations.filter(applicable=True).exclude(pk=ob.pk).first()
    due_in(done, -3, team["casey"], TODAY)
    put_in(done.current_cycle, CycleStatus.MET)
    client = client_for(team["audrey"], read_only=True)

    def ids(**params):  # type: ignore[no-untyped-def]
        body = client.get("/api/v1/obligations/", {"page_size": 500, **params}).json()
        return {row["id"] for row in body["results"]}

    assert ids(owner=team["casey"].pk) == {ob.pk}
    assert ob.pk in ids(overdue="true")
    assert ob.pk not in ids(overdue="false")
    assert done.pk in ids(overdue="false")
    # The filter and the rows' own "overdue" column follow one rule.
    rows = client.get("/api/v1/obligations/", {"page_size": 500}).json()["results"]
    overdue = {row["id"] for row in rows if row["overdue"]}
    assert overdue == ids(overdue="true")
    assert ob.pk in overdue and done.pk not in overdue
    assert ids(status="in_progress") == {ob.pk}
    assert ob.pk in ids(due_before=(TODAY - dt.timedelta(days=1)).isoformat())
    assert ob.pk not in ids(due_after=TODAY.isoformat())
    assert ids(duty="U2U-RECORDS") == {ob.pk}
    assert ids(section=ob.duty.section) >= {ob.pk}
    assert ids(service=team["other"].pk) == set()
    assert ids(provider=team["provider"].pk) == ids()
    assert ob.pk in ids(updated_since=(timezone.now() - dt.timedelta(minutes=1)).isoformat())
    row = client.get(f"/api/v1/obligations/{ob.pk}/").json()
    assert row["overdue"] is True
    assert row["owner"] == "casey"
    assert row["status"] == "in_progress"


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"colour": "red"}, "colour", "Unknown query parameter"),
        ({"due_before": "01/02/2026"}, "due_before", "valid date"),
        ({"status": "finished"}, "status", "not one of the available choices"),
        ({"overdue": "maybe"}, "overdue", "not one of the available choices"),
        ({"page_size": "9999"}, "page_size", "from 1 to 500"),
        ({"cursor": "garbage"}, "cursor", "Not a cursor"),
        ({"as_of": "yesterday"}, "as_of", "use YYYY-MM-DD"),
        ({"as_of": "2099-01-01"}, "as_of", "past"),
        ({"owner": "casey"}, "owner", "number"),
    ],
)
def test_a_bad_filter_is_a_400_that_says_which(team, params, field, message):
    response = client_for(team["audrey"]).get("/api/v1/obligations/", params)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error", "fields"}
    assert field in body["fields"]
    assert message in " ".join(body["fields"][field])


def test_pages_follow_a_cursor_with_no_row_twice(team):
    client = client_for(team["casey"])
    total = Obligation.objects.filter(provider=team["provider"]).count()
    seen: list[int] = []
    url = "/api/v1/obligations/?page_size=7"
    while url:
        body = client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert len(seen) == len(set(seen)) == total


# --- The workflow, with the admin's rules ------------------------------------


def test_the_workflow_runs_through_the_api_with_four_eyes(team, evidence_storage):
    ob = team_obligation(team)
    casey, rita = client_for(team["casey"]), client_for(team["rita"])
    url = f"/api/v1/obligations/{ob.pk}/"

    def move(client, to, **extra):  # type: ignore[no-untyped-def]
        return client.post(url + "transition/", {"to": to, **extra}, format="json")

    assert move(casey, "in_progress").json()["status"] == "in_progress"
    upload = casey.post(
        url + "evidence/",
        {"file": SimpleUploadedFile("records.pdf", PDF), "title": "Records policy"},
        format="multipart",
    )
    assert upload.status_code == 201, upload.json()
    assert upload.json()["sha256"] and upload.json()["download_url"]
    assert move(casey, "ready_for_review").status_code == 200
    refused = move(casey, "met")
    assert refused.status_code == 400
    assert "four eyes" in refused.json()["error"].lower() or "cannot" in refused.json()["error"]
    assert move(rita, "met").json()["status"] == "met"
    assert move(rita, "in_progress").status_code == 400  # a closed cycle stays closed
    events = client_for(team["audrey"]).get("/api/v1/events/", {"obligation": ob.pk}).json()
    kinds = [(e["kind"], e["to_status"], e["source"]) for e in events["results"]]
    assert ("status", "met", "api") in kinds


def test_read_only_tokens_and_auditors_cannot_change_anything(team):
    ob = team_obligation(team)
    body = {"to": "in_progress"}
    read_only = client_for(team["casey"], read_only=True)
    response = read_only.post(f"/api/v1/obligations/{ob.pk}/transition/", body, format="json")
    assert response.status_code == 403
    assert response.json()["error"] == "This token is read-only."
    auditor = client_for(team["audrey"])
    response = auditor.post(f"/api/v1/obligations/{ob.pk}/transition/", body, format="json")
    assert response.status_code == 403
    assert "read the register but not change it" in response.json()["error"]
    ob.current_cycle.refresh_from_db()
    assert ob.current_cycle.status == CycleStatus.NOT_STARTED
    assert not ob.events.filter(source=EventSource.API).exists()


def test_owner_and_due_date_actions(team):
    ob = team_obligation(team)
    client = client_for(team["casey"])
    url = f"/api/v1/obligations/{ob.pk}/"
    assert client.post(url + "owner/", {"owner": team["rita"].pk}, format="json").json()[
        "owner"
    ] == ("rita")
    outsider = client.post(url + "owner/", {"owner": team["eve"].pk}, format="json")
    assert outsider.status_code == 400
    assert "Not a member" in outsider.json()["error"]
    new_due = TODAY + dt.timedelta(days=60)
    moved = client.post(
        url + "due-date/", {"due_date": new_due.isoformat(), "reason": "Ofcom agreed"}
    )
    assert moved.json()["due"] == new_due.isoformat()
    bad = client.post(url + "due-date/", {"due_date": "next week", "reason": "x" * 5})
    assert bad.status_code == 400
    assert "due_date" in bad.json()["fields"]


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [("page.html", b"<html>", 415), ("fake.pdf", b"MZ not a pdf", 415), ("e.pdf", b"", 400)],
)
def test_a_refused_upload_is_a_clear_4xx_and_nothing_is_stored(
    team, evidence_storage, name, content, status
):
    ob = team_obligation(team)
    response = client_for(team["casey"]).post(
        f"/api/v1/obligations/{ob.pk}/evidence/",
        {"file": SimpleUploadedFile(name, content)},
        format="multipart",
    )
    assert response.status_code == status
    assert response.json()["error"]
    assert not Evidence.objects.exists()


def test_an_oversized_upload_is_413(team, settings, evidence_storage):
    settings.EVIDENCE_MAX_BYTES = 100
    ob = team_obligation(team)
    response = client_for(team["casey"]).post(
        f"/api/v1/obligations/{ob.pk}/evidence/",
        {"file": SimpleUploadedFile("big.pdf", PDF)},
        format="multipart",
    )
    assert response.status_code == 413
    assert "100-byte limit" in response.json()["error"]
    assert not Evidence.objects.exists()


def test_evidence_links_and_downloads(team, evidence_storage):
    ob = team_obligation(team)
    client = client_for(team["casey"])
    link = client.post(
        f"/api/v1/obligations/{ob.pk}/evidence/",
        {"url": "https://wiki.example.test/records", "title": "Wiki"},
        format="json",
    )
    assert link.status_code == 201
    assert link.json()["download_url"] is None
    both = client.post(
        f"/api/v1/obligations/{ob.pk}/evidence/",
        {"url": "https://x.test", "file": SimpleUploadedFile("a.pdf", PDF)},
        format="multipart",
    )
    assert both.status_code == 400
    file = client.post(
        f"/api/v1/obligations/{ob.pk}/evidence/",
        {"file": SimpleUploadedFile("a.pdf", PDF)},
        format="multipart",
    ).json()
    download = client_for(team["audrey"], read_only=True).get(file["download_url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PDF
    assert download["X-Evidence-SHA256"] == file["sha256"]
    assert client_for(team["eve"]).get(file["download_url"]).status_code == 404
    listed = client.get("/api/v1/evidence/", {"obligation": ob.pk}).json()["results"]
    assert {e["id"] for e in listed} == {file["id"], link.json()["id"]}


# --- Services, providers, applicability ---------------------------------------


def test_creating_a_service_applies_the_catalogue(team):
    client = client_for(team["casey"])
    response = client.post(
        "/api/v1/services/",
        {
            "provider": team["provider"].pk,
            "name": "Forum",
            "user_to_user": True,
            "uk_monthly_users": 50_000,
            "children_likely_to_access": True,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert "U2U-ILLEGAL-RA" in body["register"]["created"]
    service = Service.objects.get(pk=body["id"])
    assert service.obligations.filter(duty__code="U2U-CHILD-RA").exists()
    events = Event.objects.filter(obligation__service=service, source=EventSource.API)
    assert events.exists()
    changed = client.patch(
        f"/api/v1/services/{service.pk}/", {"children_likely_to_access": False}, format="json"
    )
    assert changed.status_code == 200
    assert "U2U-CHILD-RA" in changed.json()["register"]["no_longer_applies"]


def test_a_service_that_is_nothing_or_elsewhere_is_refused(team):
    client = client_for(team["casey"])
    nothing = client.post(
        "/api/v1/services/", {"provider": team["provider"].pk, "name": "Blank"}, format="json"
    )
    assert nothing.status_code == 400
    assert "user-to-user, search" in nothing.json()["error"]
    theirs = client.post(
        "/api/v1/services/",
        {"provider": team["other"].provider_id, "name": "X", "search": True},
        format="json",
    )
    assert theirs.status_code == 400
    assert "provider" in theirs.json()["fields"]
    auditor = client_for(team["audrey"]).post(
        "/api/v1/services/",
        {"provider": team["provider"].pk, "name": "Y", "search": True},
        format="json",
    )
    assert auditor.status_code == 403
    assert not Service.objects.filter(name__in=["Blank", "X", "Y"]).exists()


def test_providers_show_their_penalty_cap_and_exposure(team):
    RevenuePeriod.objects.create(
        provider=team["provider"],
        start=dt.date(2025, 1, 1),
        end=dt.date(2025, 12, 31),
        amount_gbp="2500000000.00",
        basis=RevenueBasis.AUDITED,
    )
    body = client_for(team["audrey"]).get(f"/api/v1/providers/{team['provider'].pk}/").json()
    assert body["penalty_cap"]["amount_gbp"] == "250000000.00"
    assert body["penalty_cap"]["rule"]
    assert body["exposure"]["at_risk"] is True
    assert "overdue obligation(s)" in body["exposure"]["reasons"][0]


def test_applicability_answers_like_the_command(team):
    client = client_for(team["audrey"], read_only=True)
    response = client.post(
        "/api/v1/applicability/",
        {"name": "New app", "user_to_user": True, "search": False},
        format="json",
    )
    assert response.status_code == 200, response.json()
    codes = {d["code"] for d in response.json()["duties"]}
    assert "U2U-ILLEGAL-RA" in codes
    assert all(d["why"] for d in response.json()["duties"])
    bad = client.post("/api/v1/applicability/", {"name": "x"}, format="json")
    assert bad.status_code == 400
    assert bad.json() == {
        "error": "user_to_user: is required (true or false)",
        "fields": {"user_to_user": ["is required (true or false)"]},
    }
    nothing = {"name": "x", "user_to_user": False, "search": False}
    whole = client.post("/api/v1/applicability/", nothing, format="json")
    assert whole.status_code == 400
    assert whole.json()["error"].startswith("profile: the profile must be user_to_user")


# --- Tokens in the admin ------------------------------------------------------


def test_a_token_is_made_in_the_admin_by_its_holder_shown_once_and_revoked_there(client, team):
    casey = team["casey"]
    client.force_login(casey)
    form = client.get("/admin/obligations/apitoken/add/")
    assert 'name="user"' not in form.content.decode()  # no one to choose: the token is casey's
    response = client.post(
        "/admin/obligations/apitoken/add/",
        # A "user" sent anyway is not a field of the form, and changes nothing.
        {"user": team["rita"].pk, "name": "nightly export", "read_only": "on"},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(msg) for msg in response.context["messages"]]
    key = next(word for msg in shown for word in msg.split() if word.startswith("osa_"))
    token = ApiToken.objects.get()
    assert (token.user, token.created_by, token.read_only) == (casey, casey, True)
    assert key not in client.get(f"/admin/obligations/apitoken/{token.pk}/change/").content.decode()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/obligations/").status_code == 200
    # Someone from another organisation does not see the token: not found, as if it did not
    # exist.
    client.force_login(team["eve"])
    assert client.get(f"/admin/obligations/apitoken/{token.pk}/change/").status_code == 404
    # casey's admin lists it (without its key, which is kept nowhere) and revokes it.
    admin = member(team["org"], role=Role.ADMIN, username="ada")
    client.force_login(admin)
    listing = client.get("/admin/obligations/apitoken/").content.decode()
    assert "nightly export" in listing and key not in listing
    client.post(
        "/admin/obligations/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
        follow=True,
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api.get("/api/v1/obligations/").status_code == 401


@pytest.mark.parametrize("maker", ["admin", "operator"])
def test_no_one_makes_a_token_for_a_member_in_the_admin(client, team, maker):
    """The hole: an organisation admin chose a member in the form and was shown their key."""
    if maker == "admin":
        actor = member(team["org"], role=Role.ADMIN, username="ada")
    else:
        actor = UserFactory(username="root", is_superuser=True)
    client.force_login(actor)
    response = client.post(
        "/admin/obligations/apitoken/add/",
        {"user": team["casey"].pk, "name": "as casey", "read_only": ""},
        follow=True,
    )
    assert response.status_code == 200
    assert not team["casey"].api_tokens.exists()
    # What was made is the maker's own token, for acting as themselves.
    assert list(ApiToken.objects.values_list("user", "created_by")) == [(actor.pk, actor.pk)]
