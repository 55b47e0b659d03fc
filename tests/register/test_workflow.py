"""The status workflow: every allowed and forbidden transition, four eyes and the ways
around it, and one event per step whichever path (service, admin form, bulk action) took it."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from obligations.access.models import Role
from obligations.register import selectors as register_selectors
from obligations.register.actions import assign_owner
from obligations.register.admin_filters import OverdueFilter
from obligations.register.evidence import add_evidence_file
from obligations.register.models import Event, Obligation
from obligations.register.states import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    CycleStatus,
    EventKind,
    EventSource,
    TransitionError,
)
from obligations.register.workflow import (
    TRANSITIONS,
    do_approve,
    do_mark_not_applicable,
    do_start,
    do_submit_for_review,
    reviewers_for,
    transition_to,
)
from tests import factories
from tests.conftest import TODAY
from tests.factories import (
    OrganisationFactory,
    ProviderFactory,
    applied_service,
    due_in,
    member,
)
from tests.helpers import assert_constant_queries, client_for

ALL = list(CycleStatus.values)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def team(catalogue):  # type: ignore[no-untyped-def]
    org = OrganisationFactory(name="Ours")
    service = applied_service(provider=ProviderFactory(organisation=org), name="Our service")
    owner = member(org, username="casey")
    reviewer = member(org, username="robin")
    third = member(org, username="sam")
    # Record keeping (s.23): no risk assessment or Codes measure stands in its way, so these
    # tests are about the workflow alone (test_assessments.py covers those gates).
    obligation = service.obligations.select_related("current_cycle").get(duty__code="U2U-RECORDS")
    assign_owner(actor=owner, obligation=obligation, owner=owner, source=EventSource.ADMIN)
    return {
        "org": org,
        "owner": owner,
        "reviewer": reviewer,
        "third": third,
        "obligation": obligation,
        "cycle": obligation.current_cycle,
    }


def add_pdf(cycle, actor, **kwargs):  # type: ignore[no-untyped-def]
    return add_evidence_file(
        actor=actor,
        cycle=cycle,
        uploaded=SimpleUploadedFile("ra.pdf", PDF, content_type="application/pdf"),
        title="Risk assessment",
        source=EventSource.ADMIN,
        **kwargs,
    )


def put_in(cycle, status, submitted_by=None):  # type: ignore[no-untyped-def]
    return factories.put_in(cycle, status, status_reason="set up", submitted_by=submitted_by)


def status_events(obligation):  # type: ignore[no-untyped-def]
    return list(obligation.events.filter(kind=EventKind.STATUS).order_by("at", "id"))


ALLOWED = [(source, target) for target, (sources, _) in TRANSITIONS.items() for source in sources]
FORBIDDEN = [
    (source, target) for source in ALL for target in ALL if (source, target) not in ALLOWED
]


def test_the_table_is_the_workflow_the_issue_describes():
    assert set(ALLOWED) == {
        (CycleStatus.NOT_STARTED, CycleStatus.IN_PROGRESS),
        (CycleStatus.SENT_BACK, CycleStatus.IN_PROGRESS),
        (CycleStatus.IN_PROGRESS, CycleStatus.READY_FOR_REVIEW),
        (CycleStatus.READY_FOR_REVIEW, CycleStatus.MET),
        (CycleStatus.READY_FOR_REVIEW, CycleStatus.SENT_BACK),
        *((s, CycleStatus.NOT_APPLICABLE) for s in OPEN_STATUSES),
    }


@pytest.mark.parametrize(("source", "target"), ALLOWED)
def test_every_allowed_transition_moves_and_leaves_one_event(team, source, target):
    cycle = put_in(team["cycle"], source, submitted_by=team["owner"])
    add_pdf(cycle, team["owner"])
    before = len(status_events(team["obligation"]))
    cycle = transition_to(
        actor=team["reviewer"],
        cycle=cycle,
        to=target,
        reason="because",
        source=EventSource.API,
    )
    assert cycle.status == target
    events = status_events(team["obligation"])
    assert len(events) == before + 1
    event = events[-1]
    assert (event.from_status, event.to_status) == (source, target)
    assert (event.actor, event.source, event.cycle_id) == (
        team["reviewer"],
        EventSource.API,
        cycle.pk,
    )
    assert (cycle.closed_at is not None) == (target in CLOSED_STATUSES)


@pytest.mark.parametrize(("source", "target"), FORBIDDEN)
def test_every_forbidden_transition_is_one_clear_error_and_changes_nothing(team, source, target):
    cycle = put_in(team["cycle"], source, submitted_by=team["owner"])
    add_pdf(cycle, team["owner"])
    events = Event.objects.count()
    with pytest.raises(TransitionError) as refused:
        transition_to(
            actor=team["reviewer"], cycle=cycle, to=target, reason="x", source=EventSource.API
        )
    assert "cannot be moved" in str(refused.value) or "not a status" in str(refused.value)
    cycle.refresh_from_db()
    assert cycle.status == source
    assert Event.objects.count() == events


def test_an_unknown_target_is_refused(team):
    with pytest.raises(TransitionError, match="not a status"):
        transition_to(actor=team["owner"], cycle=team["cycle"], to="done", source=EventSource.API)


@pytest.mark.parametrize("target", [CycleStatus.SENT_BACK, CycleStatus.NOT_APPLICABLE])
def test_send_back_and_not_applicable_need_a_reason(team, target):
    cycle = put_in(team["cycle"], CycleStatus.READY_FOR_REVIEW)
    with pytest.raises(TransitionError, match="needs a reason"):
        transition_to(
            actor=team["reviewer"], cycle=cycle, to=target, reason="   ", source=EventSource.API
        )
    cycle = transition_to(
        actor=team["reviewer"],
        cycle=cycle,
        to=target,
        reason="Missing the CSEA section",
        source="api",
    )
    assert cycle.status_reason == "Missing the CSEA section"


def walk_to_review(team):  # type: ignore[no-untyped-def]
    """The owner starts, uploads and submits: the ordinary day's work."""
    cycle = do_start(actor=team["owner"], cycle=team["cycle"], source="admin")
    add_pdf(cycle, team["owner"])
    return do_submit_for_review(actor=team["owner"], cycle=cycle, source="admin")


def test_the_ordinary_path_ends_met_with_the_reviewer_recorded(team):
    cycle = walk_to_review(team)
    assert cycle.submitted_by == team["owner"]
    cycle = do_approve(actor=team["reviewer"], cycle=cycle, source="admin")
    assert (cycle.status, cycle.reviewer) == (CycleStatus.MET, team["reviewer"])
    assert [
        (e.from_status, e.to_status, e.actor.username) for e in status_events(cycle.obligation)
    ] == [
        (CycleStatus.NOT_STARTED, CycleStatus.IN_PROGRESS, "casey"),
        (CycleStatus.IN_PROGRESS, CycleStatus.READY_FOR_REVIEW, "casey"),
        (CycleStatus.READY_FOR_REVIEW, CycleStatus.MET, "robin"),
    ]


def test_the_owner_cannot_approve_their_own_work(team):
    cycle = walk_to_review(team)
    with pytest.raises(TransitionError, match="owner cannot approve"):
        do_approve(actor=team["owner"], cycle=cycle, source="admin")


def test_the_submitter_cannot_approve_even_when_not_the_owner(team):
    cycle = do_start(actor=team["third"], cycle=team["cycle"], source="admin")
    add_pdf(cycle, team["owner"])
    cycle = do_submit_for_review(actor=team["third"], cycle=cycle, source="admin")
    with pytest.raises(TransitionError, match="submitted it for review"):
        do_approve(actor=team["third"], cycle=cycle, source="admin")


def test_the_uploader_of_current_evidence_cannot_approve(team):
    cycle = walk_to_review(team)
    add_pdf(cycle, team["reviewer"])
    with pytest.raises(TransitionError, match="uploader of its current evidence"):
        do_approve(actor=team["reviewer"], cycle=cycle, source="admin")
    # A third colleague who did none of the work can.
    assert do_approve(actor=team["third"], cycle=cycle, source="admin").status == CycleStatus.MET


def test_met_needs_current_evidence(team):
    cycle = do_start(actor=team["owner"], cycle=team["cycle"], source="admin")
    cycle = do_submit_for_review(actor=team["owner"], cycle=cycle, source="admin")
    with pytest.raises(TransitionError, match="current evidence"):
        do_approve(actor=team["reviewer"], cycle=cycle, source="admin")


def test_expired_evidence_does_not_count(team):
    cycle = do_start(actor=team["owner"], cycle=team["cycle"], source="admin")
    add_pdf(cycle, team["owner"], expires_on=TODAY - dt.timedelta(days=1))
    cycle = do_submit_for_review(actor=team["owner"], cycle=cycle, source="admin")
    with pytest.raises(TransitionError, match="current evidence"):
        do_approve(actor=team["reviewer"], cycle=cycle, source="admin")


def test_reassigning_during_review_sends_it_back_to_in_progress(team):
    cycle = walk_to_review(team)
    assign_owner(
        actor=team["third"],
        obligation=cycle.obligation,
        owner=team["reviewer"],
        source=EventSource.ADMIN,
    )
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.IN_PROGRESS
    last = status_events(cycle.obligation)[-1]
    assert (last.from_status, last.to_status, last.actor) == (
        CycleStatus.READY_FOR_REVIEW,
        CycleStatus.IN_PROGRESS,
        team["third"],
    )
    # The would-be reviewer now owns it: they cannot approve it after resubmission by another.
    cycle = do_submit_for_review(actor=team["third"], cycle=cycle, source="admin")
    with pytest.raises(TransitionError, match="owner cannot approve"):
        do_approve(actor=team["reviewer"], cycle=cycle, source="admin")


def test_only_the_current_cycle_changes_status(team):
    old = team["cycle"]
    do_mark_not_applicable(actor=team["owner"], cycle=old, reason="Service closed", source="admin")
    with pytest.raises(TransitionError):
        do_start(actor=team["owner"], cycle=old, source="admin")


def test_overdue_is_derived_from_the_due_date(team, rf):
    cycle = team["cycle"]
    due_in(team["obligation"], -1, team["owner"], TODAY)
    obligations = Obligation.objects.filter(pk=team["obligation"].pk)

    def overdue():  # type: ignore[no-untyped-def]
        request = rf.get("/", {"due": "overdue"})
        flt = OverdueFilter(request, {"due": ["overdue"]}, Obligation, None)  # type: ignore[dict-item]
        return list(flt.queryset(request, obligations))

    assert overdue() == [team["obligation"]]
    do_start(actor=team["owner"], cycle=cycle, source="admin")
    assert overdue() == [team["obligation"]]
    do_mark_not_applicable(actor=team["owner"], cycle=cycle, reason="x", source="admin")
    assert overdue() == []


def test_the_deadline_filter_lists_open_work_due_within_its_window(team, rf):
    others = team["obligation"].service.obligations.exclude(pk=team["obligation"].pk)
    due = dict(zip((-1, 0, 7, 8, 30, 31), others.order_by("pk")[:6], strict=True))
    for days, obligation in due.items():
        due_in(obligation, days, team["owner"], TODAY)
    met = due[7]
    factories.put_in(met.current_cycle, CycleStatus.MET)  # due within the week, but done

    def listed(value):  # type: ignore[no-untyped-def]
        request = rf.get("/", {"due": value})
        flt = OverdueFilter(request, {"due": [value]}, Obligation, None)  # type: ignore[dict-item]
        found = set(flt.queryset(request, Obligation.objects.all()))
        return {days for days, obligation in due.items() if obligation in found}

    assert listed("overdue") == {-1}
    assert listed("7") == {0}
    assert listed("30") == {0, 8, 30}


# --- Each path leaves exactly one event with the right actor and source ----


def test_the_admin_form_path(client, team):
    client.force_login(team["owner"])
    url = reverse("admin:obligations_obligation_transition", args=[team["obligation"].pk])
    before = Event.objects.count()
    response = client.post(url, {"to": CycleStatus.IN_PROGRESS}, follow=True)
    assert "Now in progress" in response.content.decode()
    event = Event.objects.order_by("-id").first()
    assert Event.objects.count() == before + 1
    assert (event.actor, event.source, event.to_status) == (
        team["owner"],
        EventSource.ADMIN,
        CycleStatus.IN_PROGRESS,
    )


def test_a_forbidden_transition_in_the_admin_is_a_message_not_an_error_page(client, team):
    client.force_login(team["owner"])
    url = reverse("admin:obligations_obligation_transition", args=[team["obligation"].pk])
    before = Event.objects.count()
    response = client.post(url, {"to": CycleStatus.MET}, follow=True)
    assert response.status_code == 200
    assert "cannot be moved to met" in response.content.decode()
    assert Event.objects.count() == before
    assert client.get(url).status_code == 405


def test_the_bulk_action_path(client, team):
    client.force_login(team["owner"])
    other = Obligation.objects.filter(service=team["obligation"].service).exclude(
        pk=team["obligation"].pk
    )[0]
    before = Event.objects.count()
    response = client.post(
        reverse("admin:obligations_obligation_changelist"),
        {"action": "bulk_in_progress", "_selected_action": [team["obligation"].pk, other.pk]},
        follow=True,
    )
    assert "Start work: 2 obligation(s)" in response.content.decode()
    events = list(Event.objects.order_by("-id")[:2])
    assert Event.objects.count() == before + 2
    assert {(e.obligation_id, e.actor_id, e.source) for e in events} == {
        (team["obligation"].pk, team["owner"].pk, EventSource.BULK),
        (other.pk, team["owner"].pk, EventSource.BULK),
    }


def test_the_bulk_action_reports_what_it_refused(client, team):
    client.force_login(team["owner"])
    response = client.post(
        reverse("admin:obligations_obligation_changelist"),
        {"action": "bulk_ready_for_review", "_selected_action": [team["obligation"].pk]},
        follow=True,
    )
    assert "cannot be moved to ready for review" in response.content.decode()


def test_bulk_assign_owner_goes_through_the_service(client, team):
    client.force_login(team["owner"])
    cycle = walk_to_review(team)
    last = Event.objects.order_by("-id").first().pk
    url = reverse("admin:obligations_obligation_changelist")
    data = {"action": "bulk_assign_owner", "_selected_action": [cycle.obligation_id]}
    page = client.post(url, data)
    assert page.status_code == 200 and "Assign an owner" in page.content.decode()
    client.post(url, {**data, "apply": "1", "owner": team["third"].pk}, follow=True)
    cycle.refresh_from_db()
    assert cycle.obligation.owner == team["third"] and cycle.status == CycleStatus.IN_PROGRESS
    kinds = list(Event.objects.filter(pk__gt=last).order_by("id").values_list("kind", "source"))
    assert kinds == [
        (EventKind.OWNER_CHANGED, EventSource.BULK),
        (EventKind.STATUS, EventSource.BULK),
    ]


def test_my_work_shows_mine_and_what_waits_for_my_review(client, team):
    due_in(team["obligation"], -2, team["owner"], TODAY)
    walk_to_review(team)
    url = reverse("admin:obligations_obligation_my_work")
    client.force_login(team["owner"])
    mine = client.get(url).content.decode()
    assert "U2U-RECORDS" in mine and "overdue" in mine
    client.force_login(team["reviewer"])
    body = client.get(url).content.decode()
    review_part = body.split("Waiting for my review", 1)[1].split("All my open obligations", 1)[0]
    assert "U2U-RECORDS" in review_part


def test_my_work_shows_the_most_urgent_and_lists_each_section_whole_in_the_register(
    client, team, monkeypatch
):
    monkeypatch.setattr(register_selectors, "MY_WORK_SHOWN", 2)
    owner = team["owner"]
    others = team["obligation"].service.obligations.exclude(pk=team["obligation"].pk)
    for days, obligation in zip((-3, -9, -1, 5, 20), others.order_by("-pk")[:5], strict=True):
        assign_owner(actor=owner, obligation=obligation, owner=owner, source="admin")
        due_in(obligation, days, owner, TODAY)
    due_in(team["obligation"], 40, owner, TODAY)
    walk_to_review(team)  # U2U-RECORDS waits for a review by someone else
    client.force_login(owner)
    page = client.get(reverse("admin:obligations_obligation_my_work"))
    sections = {s["key"]: s for s in page.context["sections"]}
    overdue = sections["overdue"]
    assert overdue["count"] == 3
    assert [o.due_date for o in overdue["rows"]] == [TODAY - dt.timedelta(days=d) for d in (9, 3)]
    assert "The 2 due soonest of 3." in page.content.decode()
    assert sections["30"]["count"] == 2  # due in 5 and 20 days; not the review due in 40
    register = reverse("admin:obligations_obligation_changelist")
    for user in (owner, team["reviewer"]):
        client.force_login(user)
        sections = client.get(reverse("admin:obligations_obligation_my_work")).context["sections"]
        for section in sections:
            listed = client.get(register, {"mine": section["key"]}).context["cl"].queryset
            in_order = list(listed.order_by("due_date", "pk"))
            assert len(in_order) == section["count"], (user, section["key"])
            assert in_order[:2] == section["rows"], (user, section["key"])
    assert sections[2]["key"] == "review" and sections[2]["count"] == 1
    assert client.get(register, {"mine": "everything"}).url.endswith("?e=1")


def test_my_work_and_the_obligation_page_cost_the_same_queries_at_two_sizes(client, team):
    owner, provider = team["owner"], team["obligation"].service.provider
    client.force_login(owner)

    def grow(size):  # type: ignore[no-untyped-def]
        while Obligation.objects.filter(owner=owner).count() < size:
            service = applied_service(provider=provider)
            for obligation in service.obligations.select_related("current_cycle"):
                assign_owner(actor=owner, obligation=obligation, owner=owner, source="admin")
                add_pdf(obligation.current_cycle, owner)

    def measure():  # type: ignore[no-untyped-def]
        assert client.get(reverse("admin:obligations_obligation_my_work")).status_code == 200
        page = reverse("admin:obligations_obligation_change", args=[team["obligation"].pk])
        assert client.get(page).status_code == 200

    assert_constant_queries(grow, measure, sizes=(10, 60))


def test_a_manager_reviews_in_the_admin_and_the_api_and_does_nothing_else(client, team):
    """Managers approve as reviewers (four eyes still applies) without being editors: the
    review's two moves are open to them, every other move is refused."""
    manager = member(team["org"], role=Role.MANAGER, username="morgan")
    auditor = member(team["org"], role=Role.AUDITOR, username="audrey")
    cycle = walk_to_review(team)
    api_url = reverse("api:obligation-transition", args=[team["obligation"].pk])
    api = client_for(manager)
    refused = api.post(api_url, {"to": CycleStatus.NOT_APPLICABLE, "reason": "x"}, format="json")
    assert refused.status_code == 403
    assert "approve (met) or send back" in refused.json()["error"]
    sent_back = api.post(
        api_url, {"to": CycleStatus.SENT_BACK, "reason": "No sign-off"}, format="json"
    )
    assert sent_back.status_code == 200, sent_back.content
    assert sent_back.json()["status"] == CycleStatus.SENT_BACK
    assert (
        client_for(auditor).post(api_url, {"to": CycleStatus.MET}, format="json").status_code == 403
    )

    cycle = do_start(actor=team["owner"], cycle=cycle, source="admin")
    cycle = do_submit_for_review(actor=team["owner"], cycle=cycle, source="admin")
    client.force_login(manager)
    page = client.get(
        reverse("admin:obligations_obligation_change", args=[team["obligation"].pk])
    ).content.decode()
    assert 'value="met"' in page and 'value="sent_back"' in page
    assert 'value="not_applicable"' not in page  # an editor's move
    transition = reverse("admin:obligations_obligation_transition", args=[team["obligation"].pk])
    assert (
        client.post(transition, {"to": CycleStatus.NOT_APPLICABLE, "reason": "x"}).status_code
        == 403
    )
    response = client.post(transition, {"to": CycleStatus.MET}, follow=True)
    assert "Now met" in response.content.decode()
    cycle.refresh_from_db()
    assert (cycle.status, cycle.reviewer) == (CycleStatus.MET, manager)


def test_managers_are_asked_to_review(team):
    manager = member(team["org"], role=Role.MANAGER, username="morgan")
    auditor = member(team["org"], role=Role.AUDITOR, username="audrey")
    reviewers = reviewers_for(team["obligation"], team["owner"])
    assert manager.pk in reviewers and auditor.pk not in reviewers


def test_the_register_list_marks_open_work_past_its_date_overdue(client, team):
    due_in(team["obligation"], -2, team["owner"], TODAY)
    client.force_login(team["owner"])
    url = reverse("admin:obligations_obligation_changelist")
    search = {"q": "U2U-RECORDS"}
    page = client.get(url, search).content.decode()
    assert "Not started · overdue" in page
    assert ">22 Nov 2026<" in page  # the due column, from the same copy
    put_in(team["cycle"], CycleStatus.MET)
    page = client.get(url, search).content.decode()
    assert ">Met</span>" in page and "· overdue" not in page


def test_the_obligation_page_offers_approval_only_to_someone_who_may_approve(client, team):
    cycle = walk_to_review(team)
    url = reverse("admin:obligations_obligation_change", args=[cycle.obligation.pk])
    button = 'value="met">Approve: met for this cycle</button>'
    client.force_login(team["owner"])
    page = client.get(url).content.decode()
    assert button not in page
    assert "Approval not offered to you:</strong> Four eyes: the obligation&#x27;s owner" in page
    client.force_login(team["reviewer"])
    page = client.get(url).content.decode()
    assert button in page and "Approval not offered" not in page
