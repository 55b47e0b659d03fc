"""The law as of the day: a duty is due only once it is in force, never before it started to
apply to the service, and by the period Schedule 3 gives from that day. Every date below is
worked out by hand from the Act; the clock is 24 Nov 2026 (tests/conftest.py).

Sch.3 paras 2-5: "within the period of three months beginning with" a day: the day counts, so
the period ends the day before the same date three months on, or on that month's last day
where it has no such date (31 Aug -> 30 Nov).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.contrib import admin as django_admin
from django.core.exceptions import ValidationError

from obligations.access.actions import add_member
from obligations.access.models import Role
from obligations.access.users import get_system_user
from obligations.catalogue.admin import InForceFilter
from obligations.catalogue.commencement import EXPECTED, IN_FORCE, in_force, start_day, start_reason
from obligations.catalogue.loading import load_catalogue
from obligations.catalogue.models import Duty, RegisterCategory
from obligations.catalogue.rules import describe_deadline, read_catalogue
from obligations.catalogue.selectors import duty_entry
from obligations.dates import period_end
from obligations.providers.actions import save_service
from obligations.providers.models import Service
from obligations.register import apply as apply_module
from obligations.register.actions import set_due_date
from obligations.register.apply import CommencementsIncomplete, apply_catalogue, apply_commencements
from obligations.register.models import Obligation
from obligations.register.states import EventKind, EventSource, overdue
from tests.conftest import LONDON, TODAY
from tests.factories import ProviderFactory, UserFactory, applied_service
from tests.helpers import client_for

SYSTEM = EventSource.ADMIN


def obligation(service: Service, code: str) -> Obligation:
    return service.obligations.select_related("current_cycle", "duty").get(duty__code=code)


def due(service: Service, code: str) -> dt.date | None:
    return obligation(service, code).current_cycle.due_date


def test_a_service_already_in_scope_owes_the_dates_ofcom_set(catalogue):
    service = applied_service(children_likely_to_access=True)
    # In scope since before the duties began: Ofcom's first dates stand.
    assert due(service, "U2U-ILLEGAL-RA") == dt.date(2025, 3, 16)
    assert due(service, "CAA") == dt.date(2025, 4, 16)
    assert due(service, "U2U-CHILD-RA") == dt.date(2025, 7, 24)
    # The safety duties bite from the first code relating to them (s.51): 17 Mar 2025.
    ra = obligation(service, "U2U-ILLEGAL-SAFETY")
    assert ra.applies_since == dt.date(2025, 3, 17)
    assert "s.51(1), (3)(a)" in ra.applies_since_why


def test_a_profile_change_today_makes_the_new_duties_due_from_today_not_in_2025(catalogue):
    service = applied_service(children_likely_to_access=False)
    assert not service.obligations.filter(duty__code="U2U-CHILD-RA").exists()
    service.children_likely_to_access = True
    save_service(actor=UserFactory(), service=service, source=SYSTEM)
    child_ra = obligation(service, "U2U-CHILD-RA")
    # Sch.3 para 5(2): the three months beginning with 24 Nov 2026 end on 23 Feb 2027.
    assert child_ra.applies_since == TODAY
    assert child_ra.current_cycle.due_date == dt.date(2027, 2, 23)
    assert "the service's profile changed that day" in child_ra.applies_since_why
    # The children's safety duties apply from the day of the change itself.
    assert due(service, "U2U-CHILD-SAFETY") == TODAY
    # Nothing the change brought in is overdue on the day it began to apply.
    assert not service.obligations.filter(overdue(TODAY), applies_since=TODAY).exists()


def test_a_service_launching_next_year_owes_nothing_before_it_launches(catalogue):
    launch = dt.date(2027, 3, 1)
    service = applied_service(launch_date=launch, children_likely_to_access=True)
    dates = {
        code: due(service, code)
        for code in ("U2U-ILLEGAL-RA", "CAA", "U2U-CHILD-RA", "U2U-ILLEGAL-SAFETY", "U2U-RECORDS")
    }
    assert dates == {
        # Sch.3 para 3: three months beginning with 1 Mar 2027 end on 31 May 2027.
        "U2U-ILLEGAL-RA": dt.date(2027, 5, 31),
        "CAA": dt.date(2027, 5, 31),
        "U2U-CHILD-RA": dt.date(2027, 5, 31),
        # The safety duties and the records apply from the first day, never in 2025.
        "U2U-ILLEGAL-SAFETY": launch,
        "U2U-RECORDS": launch,
    }
    assert not service.obligations.filter(due_date__lt=TODAY).exists()
    assert set(service.obligations.values_list("applies_since", flat=True)) <= {launch, None}


def test_a_launch_on_31_august_counts_to_the_last_day_of_november(catalogue):
    """Three months beginning with 31 Aug: there is no 31 Nov, so the period ends on the last
    day of November, 30 Nov (not 29 Nov, one day short)."""
    service = applied_service(launch_date=dt.date(2027, 8, 31))
    assert due(service, "U2U-ILLEGAL-RA") == dt.date(2027, 11, 30)
    leap = applied_service(launch_date=dt.date(2027, 11, 30))
    # There is no 30 Feb 2028: the three months end on February's last day, 29 Feb 2028.
    assert due(leap, "U2U-ILLEGAL-RA") == dt.date(2028, 2, 29)
    rule = describe_deadline(duty_entry(Duty.objects.get(code="U2U-ILLEGAL-RA"))["deadline"])
    assert (
        "within the 3 months beginning with that day: by the day before the same date 3 "
        "months on, or that month's last day where it has no such date" in rule
    )


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (dt.date(2025, 1, 1), 3, dt.date(2025, 3, 31)),  # the day before 1 Apr
        (dt.date(2024, 12, 16), 3, dt.date(2025, 3, 15)),  # Sch.3 para 1(2), read strictly
        (dt.date(2025, 8, 31), 3, dt.date(2025, 11, 30)),  # no 31 Nov: November's last day
        (dt.date(2027, 11, 30), 3, dt.date(2028, 2, 29)),  # no 30 Feb 2028: leap day
        (dt.date(2026, 11, 29), 3, dt.date(2027, 2, 28)),  # no 29 Feb 2027
        (dt.date(2027, 11, 29), 3, dt.date(2028, 2, 28)),  # 29 Feb 2028 exists: the day before
        (dt.date(2025, 10, 31), 3, dt.date(2026, 1, 30)),  # across the year: 31 Jan less a day
        (dt.date(2025, 1, 31), 1, dt.date(2025, 2, 28)),
    ],
)
def test_a_period_beginning_with_a_day_ends_as_statutes_count_it(start, months, end):
    assert period_end(start, months) == end


def test_a_duty_not_in_force_is_listed_with_no_due_date_and_never_overdue(catalogue):
    service = applied_service(categories=["1"], uk_monthly_users=40_000_000)
    for code in ("U2U-NEWS", "USER-ID-VERIFY", "FRAUD-ADS-C1", "U2U-DEMOCRATIC"):
        ob = obligation(service, code)
        assert ob.applicable and ob.applies_since is None, code
        assert ob.current_cycle.due_date is None, code
    assert not service.obligations.filter(overdue(TODAY), applies_since=None).exists()
    news = duty_entry(Duty.objects.get(code="U2U-NEWS"))
    assert in_force(news, TODAY).value is None  # not found commenced; not shown as in force
    fraud = duty_entry(Duty.objects.get(code="FRAUD-ADS-C1"))
    assert in_force(fraud, TODAY).value is False


def test_when_a_duty_comes_into_force_the_nightly_step_dates_it_from_that_day(db, tmp_path):
    """A duty expected to commence later: listed, undated; on the night it is in force, it
    starts to apply and is due by its rule from that day."""
    data = json.loads(Path(settings.CATALOGUE_PATH).read_text(encoding="utf-8"))
    later = next(d for d in data["duties"] if d["code"] == "U2U-ILLEGAL-RA")
    later.update(applies_from="2027-01-04", applies_note="Commences 4 Jan 2027 (a test case).")
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(data))
    system = get_system_user()
    load_catalogue(actor=system, catalogue=read_catalogue(path))
    service = applied_service()
    ra = obligation(service, "U2U-ILLEGAL-RA")
    assert (ra.applies_since, ra.current_cycle.due_date) == (None, None)
    duty = duty_entry(ra.duty)
    assert in_force(duty, TODAY).state == EXPECTED
    assert apply_commencements(actor=system) == []
    with time_machine.travel(dt.datetime(2027, 1, 4, 1, 30, tzinfo=LONDON), tick=False):
        started = apply_commencements(actor=system)
        assert in_force(duty, dt.date(2027, 1, 4)).state == IN_FORCE
        # Run again: nothing more to do.
        assert apply_commencements(actor=system) == []
    assert started == [service.name]
    ra.refresh_from_db()
    ra.current_cycle.refresh_from_db()
    # 4 Jan 2027 + 3 months - 1 day (Sch.3 para 4), later than Ofcom's 16 Mar 2025.
    assert (ra.applies_since, ra.current_cycle.due_date) == (
        dt.date(2027, 1, 4),
        dt.date(2027, 4, 3),
    )
    assert ra.events.filter(kind=EventKind.DUE_CHANGED, actor=system).exists()


def test_no_due_date_before_the_duty_applied_from_the_api_or_the_writes(catalogue):
    launch = dt.date(2027, 3, 1)
    service = applied_service(launch_date=launch)
    casey = UserFactory(username="casey")
    add_member(
        actor=get_system_user(), organisation=service.provider.organisation,
        user=casey, role=Role.COMPLIANCE,
    )  # fmt: skip
    ra = obligation(service, "U2U-ILLEGAL-RA")
    response = client_for(casey).post(
        f"/api/v1/obligations/{ra.pk}/due-date/",
        {"due_date": "2026-12-01", "reason": "Earlier"},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["due_date"]
    assert "before the duty started to apply to it, on 1 Mar 2027" in response.json()["error"]
    with pytest.raises(ValidationError):
        set_due_date(
            actor=casey, cycle=ra.current_cycle, due=dt.date(2027, 2, 1), reason="x", source=SYSTEM
        )
    set_due_date(actor=casey, cycle=ra.current_cycle, due=launch, reason="x", source=SYSTEM)


def test_links_with_the_uk_not_users_decide_whether_a_service_is_regulated(catalogue):
    provider = ProviderFactory()
    no_links = applied_service(
        provider=provider,
        uk_monthly_users=2_000_000,
        uk_significant_users=False,
        uk_target_market=False,
        uk_material_risk=False,
    )
    assert not no_links.obligations.filter(applicable=True).exists()
    target = applied_service(provider=provider, uk_monthly_users=0, uk_target_market=True)
    ra = obligation(target, "U2U-ILLEGAL-RA")
    assert ra.applicable
    assert "UK users are a target market (s.4(5)(b))" in ra.why
    # A later finding that it has no links closes its duties, saying so.
    target.uk_target_market = False
    target.uk_significant_users = target.uk_material_risk = False
    save_service(actor=UserFactory(), service=target, source=SYSTEM)
    ra.refresh_from_db()
    assert not ra.applicable
    assert "no links with the UK (s.4(5)-(6))" in ra.not_applicable_reason


@pytest.mark.parametrize(
    ("launch", "changed", "start"),
    [
        (None, None, dt.date(2024, 1, 10)),  # in scope since before: the commencement
        (dt.date(2024, 1, 9), None, dt.date(2024, 1, 10)),  # launched the day before
        (dt.date(2024, 1, 10), None, dt.date(2024, 1, 10)),  # on the day itself
        (dt.date(2024, 1, 11), None, dt.date(2024, 1, 11)),  # the day after
        (dt.date(2027, 3, 1), TODAY, dt.date(2027, 3, 1)),  # changed before launch
        (dt.date(2025, 3, 1), TODAY, TODAY),  # changed after launch
    ],
)
def test_a_duty_starts_on_the_latest_of_commencement_launch_and_change(launch, changed, start):
    duty = {"in_force_from": "2024-01-10", "commencement": {"instrument": "SI 2023/1420"}}
    assert start_day(duty, TODAY, launch=launch, changed_on=changed) == start


def test_a_duty_expected_later_has_no_start_yet():
    duty = {"in_force_from": "2024-01-10", "applies_from": "2027-01-04", "applies_note": "x"}
    assert start_day(duty, TODAY, launch=None) is None
    assert start_day(duty, dt.date(2027, 1, 3), launch=None) is None
    assert start_day(duty, dt.date(2027, 1, 4), launch=None) == dt.date(2027, 1, 4)


def test_the_dashboard_and_the_export_say_which_duties_are_not_yet_in_force(catalogue, client):
    service = applied_service(categories=["1"], uk_monthly_users=40_000_000)
    manager = UserFactory(username="mo")
    add_member(
        actor=get_system_user(), organisation=service.provider.organisation,
        user=manager, role=Role.MANAGER,
    )  # fmt: skip
    client.force_login(manager)
    waiting = service.obligations.filter(applicable=True, applies_since=None)
    body = client.get("/dashboard/").content.decode()
    assert f"Of these, {waiting.count()} are not yet in force" in body
    export = client_for(manager).get("/api/v1/obligations/export/json/")
    rows = json.loads(b"".join(export.streaming_content))["obligations"]
    news = next(r for r in rows if r["duty_code"] == "U2U-NEWS")
    ra = next(r for r in rows if r["duty_code"] == "U2U-ILLEGAL-RA")
    # U2U-NEWS is unverified with no in-force day: whether it is in force is not known.
    assert (news["in_force"], news["in_force_from"], news["due"]) == (None, None, None)
    assert (ra["in_force"], ra["in_force_from"]) == (True, "2024-01-10")
    # A verified duty not yet commenced is known not to be in force.
    democratic = next(r for r in rows if r["duty_code"] == "U2U-DEMOCRATIC")
    assert democratic["in_force"] is False
    csv_rows = list(
        csv.DictReader(
            io.StringIO(
                b"".join(
                    client_for(manager).get("/api/v1/obligations/export/csv/").streaming_content
                ).decode("utf-8-sig")
            )
        )
    )
    by_code = {r["Duty code"]: r for r in csv_rows}
    assert by_code["U2U-NEWS"]["In force"] == ""
    assert by_code["U2U-ILLEGAL-RA"]["In force"] == "yes"


def test_one_service_that_cannot_start_never_stops_the_others(catalogue, monkeypatch, caplog):
    first, second = applied_service(name="First"), applied_service(name="Second")
    Obligation.objects.filter(service__in=[first, second]).update(applies_since=None)
    real = apply_catalogue

    def fail_for_first(**kwargs):  # type: ignore[no-untyped-def]
        if kwargs["service"].pk == first.pk:
            raise RuntimeError("a corrupt profile")
        return real(**kwargs)

    monkeypatch.setattr(apply_module, "apply_catalogue", fail_for_first)
    system = get_system_user()
    with pytest.raises(CommencementsIncomplete, match=r"1 service\(s\) skipped"):
        apply_commencements(actor=system)
    assert f"service {first.pk} skipped" in caplog.text
    assert (
        not second.obligations.filter(applicable=True, applies_since=None)
        .exclude(duty__effective_from=None)
        .exists()
    )


def test_a_duty_not_yet_in_force_cannot_be_given_a_due_date(catalogue):
    """Otherwise a past date would make it overdue before the law applies."""
    service = applied_service(categories=["1"], uk_monthly_users=40_000_000)
    news = obligation(service, "U2U-NEWS")
    with pytest.raises(ValidationError) as refused:
        set_due_date(
            actor=UserFactory(), cycle=news.current_cycle, due=TODAY, reason="x", source=SYSTEM
        )
    assert refused.value.message_dict == {
        "due_date": ["The duty is not yet in force: it has no due date until it is."]
    }


SAFETY = {
    "code": "U2U-ILLEGAL-SAFETY",
    "in_force_from": "2024-01-10",
    "commencement": {"instrument": "SI 2023/1420 reg 2(c)"},
    "applies_from": "2025-03-17",
    "applies_note": "s.51(1), (3)(a): from the first code relating to the duty",
    "verified": True,
}


def test_a_duty_that_bites_after_its_section_cites_both_days_and_why():
    """s.51: the section commenced on 10 Jan 2024 (SI 2023/1420), the duty bites from the first
    code, 17 Mar 2025. The text (admin, API, report, register) names both, not one day with
    the other day's instrument."""
    state = in_force(SAFETY, TODAY)
    assert state.state == IN_FORCE and state.since == dt.date(2025, 3, 17)
    assert state.text == (
        "In force since 10 Jan 2024 (SI 2023/1420 reg 2(c)); applies from 17 Mar 2025: "
        "s.51(1), (3)(a): from the first code relating to the duty."
    )
    before = in_force(SAFETY, dt.date(2025, 1, 1))
    assert before.state == EXPECTED
    assert before.text == (
        "Not yet in force: applies from 17 Mar 2025: s.51(1), (3)(a): from the first code "
        "relating to the duty. Its provision has been in force since 10 Jan 2024 "
        "(SI 2023/1420 reg 2(c))."
    )
    awaiting = in_force({**SAFETY, "applies_from": None, "applies_note": "s.51(3)(c)."}, TODAY)
    assert awaiting.text == (
        "Not yet in force: s.51(3)(c). Its provision has been in force since 10 Jan 2024 "
        "(SI 2023/1420 reg 2(c))."
    )
    why = start_reason(SAFETY, dt.date(2025, 3, 17), launch=None)
    assert why == (
        "Applies from 17 Mar 2025: s.51(1), (3)(a): from the first code relating to the duty. "
        "Its provision has been in force since 10 Jan 2024 (SI 2023/1420 reg 2(c))."
    )
    # A duty that bites the day its section commenced cites the one day and instrument.
    same = {k: v for k, v in SAFETY.items() if k not in ("applies_from", "applies_note")}
    assert in_force(same, TODAY).text == "In force since 10 Jan 2024 (SI 2023/1420 reg 2(c))."


def test_the_register_and_the_api_say_both_days_for_a_duty_that_bites_later(catalogue):
    service = applied_service()
    safety = obligation(service, "U2U-ILLEGAL-SAFETY")
    assert "Its provision has been in force since 10 Jan 2024 (SI 2023/1420 reg 2(c))" in (
        safety.applies_since_why
    )
    text = in_force(duty_entry(safety.duty), TODAY).text
    assert text.startswith(
        "In force since 10 Jan 2024 (SI 2023/1420 reg 2(c)); applies from 17 Mar 2025: "
        "s.51(1), (3)(a)"
    )


def test_the_user_empowerment_assessment_is_due_on_categorisation_the_duties_await_a_code(
    catalogue,
):
    """s.14 (commenced 10 Jan 2024, SI 2023/1420 reg 2(e)) is not among the duties s.51(3)
    defers, so the assessment is owed from the day the service is Category 1: within the three
    months beginning with it (Sch.3 para 6(2)). The s.15 duties wait for the first code
    relating to them (s.51(1), (3)(c)): listed, undated."""
    service = applied_service(uk_monthly_users=40_000_000)
    assert not service.obligations.filter(duty__code__startswith="U2U-UE").exists()
    category_1 = RegisterCategory.objects.filter(code="1")
    save_service(actor=UserFactory(), service=service, source=SYSTEM, categories=category_1)
    assessment = obligation(service, "U2U-UE-ASSESS")
    assert assessment.duty.section == "s.14"
    assert assessment.applies_since == TODAY  # 24 Nov 2026: the three months end 23 Feb 2027
    assert assessment.current_cycle.due_date == dt.date(2027, 2, 23)
    duties = obligation(service, "U2U-UE")
    assert duties.duty.section == "s.15"
    assert (duties.applies_since, duties.current_cycle.due_date) == (None, None)
    assert "s.51(1), (3)(c)" in in_force(duty_entry(duties.duty), TODAY).text


def test_the_terms_of_service_summaries_bite_with_their_sections_first_codes(catalogue):
    """s.10(9) and s.12(14) are duties set out in ss.10 and 12: s.51(3)(a) and (b) date them from
    the first illegal content code (17 Mar 2025) and children's code (25 Jul 2025)."""
    entries = {d.code: duty_entry(d) for d in Duty.objects.filter(code__endswith="-SUMMARY")}
    assert in_force(entries["U2U-ILLEGAL-RA-SUMMARY"], TODAY).since == dt.date(2025, 3, 17)
    assert in_force(entries["U2U-CHILD-RA-SUMMARY"], TODAY).since == dt.date(2025, 7, 25)
    assert in_force(entries["U2U-ILLEGAL-RA-SUMMARY"], dt.date(2025, 3, 1)).state == EXPECTED
    search = Duty.objects.get(code="SEARCH-CHILD-SAFETY")
    assert not search.verified  # the search children's code's day is assumed, not read
    # The CAA's first date (16 Apr 2025) is Ofcom's; its yearly repeat is the Act's (s.36(3)).
    caa = Duty.objects.get(code="CAA").deadline
    assert (caa["basis"], caa["recurrence"]["basis"]) == ("ofcom", "act")


def test_in_force_is_one_rule_for_the_admin_the_api_and_the_dashboard(catalogue, rf):
    """The catalogue admin's filter and the API's agree with `in_force_on`, duty by duty,
    including the duties with no effective day (not in force)."""
    from obligations.catalogue.commencement import in_force_on, in_force_q

    duties = list(Duty.objects.filter(retired_at__isnull=True))
    live = {d.code for d in duties if in_force_on(d.effective_from, TODAY)}
    assert live and live != {d.code for d in duties}  # both kinds are there
    assert set(Duty.objects.filter(in_force_q(TODAY)).values_list("code", flat=True)) == live
    duty_admin = django_admin.site._registry[Duty]
    for value, expected in (("yes", live), ("no", {d.code for d in duties} - live)):
        params = {"in_force": [value]}
        chosen = InForceFilter(rf.get("/"), params, Duty, duty_admin)  # type: ignore[arg-type]
        listed = chosen.queryset(rf.get("/"), Duty.objects.filter(retired_at__isnull=True))
        assert set(listed.values_list("code", flat=True)) == expected
    user = UserFactory()
    api = client_for(user)
    shown = {
        flag: {
            r["code"]
            for r in api.get(f"/api/v1/duties/?in_force={flag}&page_size=500").json()["results"]
        }
        for flag in ("true", "false")
    }
    assert shown == {"true": live, "false": {d.code for d in duties} - live}


def test_the_childrens_duties_start_the_day_the_access_assessment_found_children_likely(
    catalogue,
):
    # s.37(3): from the day the children's access assessment concluded it.
    assessed = dt.date(2026, 9, 1)
    service = applied_service(children_likely_to_access=True, children_access_assessed_on=assessed)
    child_ra = obligation(service, "U2U-CHILD-RA")
    assert child_ra.applies_since == assessed
    assert "s.37(3)" in child_ra.applies_since_why
    # Sch.3 para 5(2): the three months beginning with 1 Sep 2026 end on 30 Nov 2026.
    assert child_ra.current_cycle.due_date == dt.date(2026, 11, 30)
    created = child_ra.events.get(kind=EventKind.CREATED)
    assert "s.37(3)" in created.reason
    # The duties for every service are not moved by it.
    assert obligation(service, "U2U-ILLEGAL-RA").applies_since == dt.date(2024, 1, 10)


def test_without_an_access_assessment_the_childrens_duties_start_when_it_was_due(catalogue):
    # s.37(4)-(5): no assessment by its due date (three months from launch, Sch.3 para 3):
    # treated as likely to be accessed by children from that date.
    launch = dt.date(2026, 6, 10)
    service = applied_service(launch_date=launch, children_likely_to_access=None)
    assert due(service, "CAA") == dt.date(2026, 9, 9)
    child_ra = obligation(service, "U2U-CHILD-RA")
    assert child_ra.applies_since == dt.date(2026, 9, 9)
    assert "s.37(4)-(5)" in child_ra.applies_since_why
    # Sch.3 para 5(2): three months beginning with 9 Sep 2026 end on 8 Dec 2026.
    assert child_ra.current_cycle.due_date == dt.date(2026, 12, 8)
    assert obligation(service, "U2U-CHILD-SAFETY").applies_since == dt.date(2026, 9, 9)


def test_children_likely_with_no_assessment_date_starts_as_before(catalogue):
    service = applied_service(children_likely_to_access=True)
    assert obligation(service, "U2U-CHILD-RA").applies_since == dt.date(2024, 1, 10)
