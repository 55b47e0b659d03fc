"""Ofcom notices: a Technology Notice's stages (s.121-126), the obligations each notice
creates, dates that move them, and endings that close them without deleting anything."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from obligations.notices.actions import (
    NoticeError,
    change_notice,
    move_technology_notice,
    record_notice,
)
from obligations.notices.models import (
    NoticeEvent,
    NoticeEventKind,
    NoticeKind,
    NoticeStage,
    OfcomNotice,
    TechnologyNotice,
    TechnologyRequirement,
)
from obligations.notices.stages import NOTICE_STAGES
from obligations.register.apply import apply_catalogue
from obligations.register.states import EventKind, EventSource
from tests.conftest import TODAY
from tests.factories import OrganisationFactory, ProviderFactory, applied_service, member

ADMIN = EventSource.ADMIN


@pytest.fixture
def ctx(catalogue):  # type: ignore[no-untyped-def]
    org = OrganisationFactory()
    service = applied_service(
        provider=ProviderFactory(organisation=org), features=["e2ee_messaging"]
    )
    return {"service": service, "user": member(org, username="casey")}


def days(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def new_notice(ctx, **fields):  # type: ignore[no-untyped-def]
    values = {"csea_public": True, "csea_private": True, **fields}
    return record_notice(
        actor=ctx["user"],
        notice=TechnologyNotice(service=ctx["service"], ofcom_reference="TN-1", **values),
        source=ADMIN,
    )


def linked(notice):  # type: ignore[no-untyped-def]
    return {
        o.duty.code: (o.applicable, o.current_cycle.status, o.current_cycle.due_date)
        for o in notice.obligations.select_related("duty", "current_cycle")
    }


def to_warning(ctx, notice):  # type: ignore[no-untyped-def]
    change_notice(
        actor=ctx["user"],
        notice=notice,
        changes={"warning_given_on": TODAY, "representations_due": days(28)},
        source=ADMIN,
    )
    return move_technology_notice(
        actor=ctx["user"], notice=notice, to=NoticeStage.WARNING, on=TODAY, source=ADMIN
    )


def to_given(ctx, notice):  # type: ignore[no-untyped-def]
    change_notice(
        actor=ctx["user"],
        notice=notice,
        changes={"given_on": days(40), "compliance_by": days(180), "appeal_by": days(70)},
        source=ADMIN,
    )
    return move_technology_notice(
        actor=ctx["user"], notice=notice, to=NoticeStage.GIVEN, on=days(40), source=ADMIN
    )


def test_the_full_path_creates_each_obligation_once(ctx):
    notice = new_notice(ctx)
    assert linked(notice) == {}
    notice = to_warning(ctx, notice)
    assert linked(notice) == {"TN-REPRESENTATIONS": (True, "not_started", days(28))}
    change_notice(
        actor=ctx["user"],
        notice=notice,
        changes={"representations_submitted_on": days(20)},
        source=ADMIN,
    )
    notice = move_technology_notice(
        actor=ctx["user"], notice=notice, to=NoticeStage.REPRESENTED, on=days(20), source=ADMIN
    )
    notice = to_given(ctx, notice)
    notice = move_technology_notice(
        actor=ctx["user"], notice=notice, to=NoticeStage.IN_FORCE, on=days(41), source=ADMIN
    )
    assert linked(notice) == {
        "TN-REPRESENTATIONS": (True, "not_started", days(28)),
        "TN-COMPLY": (True, "not_started", days(180)),
        "TN-APPEAL": (True, "not_started", days(70)),
    }
    # Saving again with the same values duplicates nothing.
    change_notice(
        actor=ctx["user"], notice=notice, changes={"compliance_by": days(180)}, source=ADMIN
    )
    assert notice.obligations.count() == 3
    stages = list(
        notice.events.filter(kind=NoticeEventKind.STAGE)
        .order_by("at", "id")
        .values_list("to_stage", flat=True)
    )
    assert stages == [
        NoticeStage.WARNING,
        NoticeStage.REPRESENTED,
        NoticeStage.GIVEN,
        NoticeStage.IN_FORCE,
    ]
    # The notice's obligations are not the profile's: re-applying the catalogue leaves them.
    apply_catalogue(actor=ctx["user"], service=ctx["service"], source=ADMIN)
    assert all(applicable for applicable, *_ in linked(notice).values())


def test_closed_without_a_notice_after_representations(ctx):
    notice = to_warning(ctx, new_notice(ctx))
    change_notice(
        actor=ctx["user"],
        notice=notice,
        changes={"representations_submitted_on": days(10)},
        source=ADMIN,
    )
    move_technology_notice(
        actor=ctx["user"], notice=notice, to=NoticeStage.REPRESENTED, on=days(10), source=ADMIN
    )
    with pytest.raises(NoticeError, match="needs a reason"):
        move_technology_notice(
            actor=ctx["user"], notice=notice, to=NoticeStage.CLOSED, on=days(30), source=ADMIN
        )
    notice = move_technology_notice(
        actor=ctx["user"],
        notice=notice,
        to=NoticeStage.CLOSED,
        on=days(30),
        reason="Ofcom decided not to proceed",
        source=ADMIN,
    )
    applicable, status, _ = linked(notice)["TN-REPRESENTATIONS"]
    assert (applicable, status) == (False, "not_applicable")
    assert notice.closed_reason == "Ofcom decided not to proceed"


ALLOWED = {(src, to) for to, sources in NOTICE_STAGES.items() for src in sources}


@pytest.mark.parametrize(
    ("source", "target"),
    [(s, t) for s in NoticeStage.values for t in NoticeStage.values if (s, t) not in ALLOWED],
)
def test_every_forbidden_stage_change_is_refused(ctx, source, target):
    notice = new_notice(
        ctx,
        warning_given_on=TODAY,
        representations_due=days(28),
        representations_submitted_on=days(5),
        given_on=days(30),
        compliance_by=days(90),
    )
    TechnologyNotice.objects.filter(pk=notice.pk).update(stage=source)
    events = NoticeEvent.objects.count()
    with pytest.raises(NoticeError):
        move_technology_notice(
            actor=ctx["user"], notice=notice, to=target, on=TODAY, reason="x", source=ADMIN
        )
    notice.refresh_from_db()
    assert notice.stage == source and NoticeEvent.objects.count() == events


def test_a_stage_needs_its_dates_first(ctx):
    notice = new_notice(ctx)
    with pytest.raises(NoticeError, match="Record first: warning notice given on"):
        move_technology_notice(
            actor=ctx["user"], notice=notice, to=NoticeStage.WARNING, on=TODAY, source=ADMIN
        )


def test_a_variation_moves_open_obligations_and_is_a_dated_event(ctx):
    notice = to_given(ctx, to_warning(ctx, new_notice(ctx)))
    change_notice(
        actor=ctx["user"],
        notice=notice,
        changes={"compliance_by": days(240)},
        kind=NoticeEventKind.VARIED,
        on=days(60),
        note="Ofcom extended the compliance period",
        source=ADMIN,
    )
    assert linked(notice)["TN-COMPLY"][2] == days(240)
    assert notice.stage == NoticeStage.GIVEN  # a variation is an event, not a stage
    event = notice.events.get(kind=NoticeEventKind.VARIED)
    assert event.changes == {"compliance_by": [str(days(180)), str(days(240))]}
    comply = notice.obligations.get(duty__code="TN-COMPLY")
    assert comply.events.filter(kind=EventKind.DUE_CHANGED).count() == 1


def test_revocation_closes_obligations_and_keeps_them(ctx):
    notice = to_given(ctx, to_warning(ctx, new_notice(ctx)))
    notice = move_technology_notice(
        actor=ctx["user"],
        notice=notice,
        to=NoticeStage.REVOKED,
        on=days(50),
        reason="Revoked",
        source=ADMIN,
    )
    assert {code: status for code, (_, status, _) in linked(notice).items()} == {
        "TN-REPRESENTATIONS": "not_applicable",
        "TN-COMPLY": "not_applicable",
        "TN-APPEAL": "not_applicable",
    }
    assert notice.obligations.count() == 3


def test_the_notice_holds_what_s125_allows(ctx):
    with pytest.raises(ValidationError, match="CSEA content only"):
        new_notice(
            ctx,
            csea_public=False,
            csea_private=False,
            terrorism_public=True,
            requirement=TechnologyRequirement.DEVELOP,
        )
    with pytest.raises(ValidationError, match="covers terrorism content, CSEA"):
        new_notice(ctx, csea_public=False, csea_private=False)
    with pytest.raises(ValidationError, match="at most 36 months"):
        new_notice(ctx, compliance_by=days(100), runs_until=days(100 + 3 * 366))
    assert not TechnologyNotice.objects.exists()


@pytest.mark.parametrize(
    ("kind", "fields", "expected"),
    [
        (NoticeKind.INFORMATION, {"respond_by": days(14)}, {"INFO-RESPOND": days(14)}),
        (NoticeKind.SKILLED_PERSON, {"respond_by": days(21)}, {"SPR-ASSIST": days(21)}),
        (NoticeKind.PROVISIONAL, {"respond_by": days(30)}, {"PNC-REPRESENTATIONS": days(30)}),
        (
            NoticeKind.TRANSPARENCY,
            {"respond_by": days(45), "publish_by": days(60)},
            {"TR-SUBMIT": days(45), "TR-PUBLISH": days(60)},
        ),
        (
            NoticeKind.PENALTY_PROPOSAL,
            {"respond_by": days(21)},
            {"PENALTY-REPRESENTATIONS": days(21)},
        ),
        (
            NoticeKind.CONFIRMATION,
            {
                "steps_required": "Complete the illegal content risk assessment",
                "steps_by": days(60),
                "requires_caa": True,
                "single_penalty_gbp": Decimal("1000000"),
                "pay_by": days(28),
            },
            # s.135: the CAA is due 3 months after the decision when no date is given.
            {"CD-STEPS": days(60), "CD-CAA": dt.date(2027, 2, 24), "PENALTY-PAY": days(28)},
        ),
        (
            NoticeKind.PENALTY,
            {"single_penalty_gbp": Decimal("50000"), "pay_by": days(28)},
            {"PENALTY-PAY": days(28)},
        ),
    ],
)
def test_each_other_notice_kind_creates_its_obligations(ctx, kind, fields, expected):
    notice = record_notice(
        actor=ctx["user"],
        notice=OfcomNotice(service=ctx["service"], kind=kind, given_on=TODAY, **fields),
        source=ADMIN,
    )
    assert {code: due for code, (_, _, due) in linked(notice).items()} == expected
    with pytest.raises(ValidationError, match="needs a reason"):
        change_notice(
            actor=ctx["user"], notice=notice, changes={"closed_on": days(90)}, source=ADMIN
        )
    change_notice(
        actor=ctx["user"],
        notice=notice,
        changes={"closed_on": days(90), "closed_reason": "Complied; Ofcom closed its file."},
        source=ADMIN,
    )
    ended = {
        o.current_cycle.status_reason for o in notice.obligations.select_related("current_cycle")
    }
    assert {status for _, status, _ in linked(notice).values()} == {"not_applicable"}
    assert all("closed on 22 Feb 2027 (Complied; Ofcom closed its file.)" in r for r in ended)


def test_the_admin_records_a_notice_moves_it_and_hides_it_from_others(client, ctx):
    from django.urls import reverse

    client.force_login(ctx["user"])
    add = reverse("admin:obligations_technologynotice_add")
    data = {
        "service": ctx["service"].pk,
        "ofcom_reference": "OFCOM/TN/7",
        "csea_public": "on",
        "csea_private": "on",
        "requirement": TechnologyRequirement.USE,
        "warning_given_on": str(TODAY),
        "representations_due": str(days(28)),
    }
    refused = client.post(add, {**data, "csea_public": "", "csea_private": ""})
    assert refused.status_code == 200 and "covers terrorism content, CSEA" in refused.text
    assert client.post(add, data).status_code == 302
    notice = TechnologyNotice.objects.get()
    stage = reverse("admin:obligations_technologynotice_stage", args=[notice.pk])
    bad = client.post(stage, {"to": NoticeStage.WARNING, "on": "2026-13-40"}, follow=True)
    assert "Nothing recorded" in bad.text
    shown = client.get(reverse("admin:obligations_technologynotice_change", args=[notice.pk]))
    assert f'name="on" value="{TODAY:%d/%m/%Y}"' in shown.text  # the UK way, as people type it
    page = client.post(stage, {"to": NoticeStage.WARNING, "on": f"{TODAY:%d/%m/%Y}"}, follow=True)
    assert "Now: Warning notice given (s.123)" in page.text
    assert "TN-REPRESENTATIONS" in page.text
    event = NoticeEvent.objects.filter(kind=NoticeEventKind.STAGE).get()
    assert (event.actor, event.source) == (ctx["user"], EventSource.ADMIN)
    # The form changes dates through the service: the obligation moves with them.
    change = reverse("admin:obligations_technologynotice_change", args=[notice.pk])
    form = {**data, "representations_due": str(days(35)), "_save": "1"}
    for prefix in ("obligations", "events"):
        form |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    assert client.post(change, form).status_code == 302
    assert linked(notice)["TN-REPRESENTATIONS"][2] == days(35)
    outsider = member(OrganisationFactory(), username="eve")
    client.force_login(outsider)
    assert client.get(change).status_code == 404
    assert (
        client.post(stage, {"to": NoticeStage.CLOSED, "on": str(TODAY), "reason": "x"}).status_code
        == 404
    )
