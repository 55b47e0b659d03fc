"""Members as an organisation admin manages them on the organisation's page: listed, added,
their role changed, their membership ended (never deleted), every change on record with who
made it; and an ended membership counts nowhere."""

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import ProtectedError
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from obligations.access.actions import add_member, change_role, end_membership
from obligations.access.admin_signin import access_log_for
from obligations.access.models import (
    AccessAction,
    Membership,
    MembershipChange,
    MembershipEvent,
    Organisation,
    Role,
)
from obligations.access.selectors import (
    active_memberships,
    active_memberships_of,
    roles_by_organisation,
)
from obligations.access.signin import record_access
from obligations.access.tokens import create_api_token, revoke_api_token
from obligations.register.importer import ImportContext
from obligations.register.models import Obligation, ObligationCycle
from obligations.register.workflow import reviewers_for
from obligations.reminders.sweep import CYCLE_FIELDS, CycleRow, SweepContext
from tests.conftest import NOW
from tests.factories import (
    OrganisationFactory,
    ProviderFactory,
    UserFactory,
    applied_service,
    member,
)
from tests.helpers import admin_form_data, assert_constant_queries

ADDED, ROLE_CHANGED, ENDED = "added", "role_changed", "ended"


@pytest.fixture
def org(catalogue):  # type: ignore[no-untyped-def]
    ours, theirs = OrganisationFactory(name="Ours"), OrganisationFactory(name="Theirs")
    applied_service(provider=ProviderFactory(organisation=ours), name="Chat")
    ada = member(ours, role=Role.ADMIN, username="ada")
    add_member(  # an external auditor, until a planned end
        actor=ada,
        organisation=ours,
        user=UserFactory(username="xavier"),
        role=Role.AUDITOR,
        expires_at=NOW + dt.timedelta(days=30),
    )
    return {
        "ours": ours,
        "theirs": theirs,
        "ada": ada,
        "casey": member(ours, username="casey"),
        "audrey": member(ours, role=Role.AUDITOR, username="audrey"),
        "tess": member(theirs, role=Role.ADMIN, username="tess-theirs"),
        "eve": member(theirs, username="eve-theirs"),
    }


def page(org: dict[str, Any]) -> str:
    return reverse("admin:obligations_organisation_change", args=[org["ours"].pk])


def signed_in(client: Client, user: Any, org: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    client.force_login(user)
    response = client.get(page(org))
    assert response.status_code == 200
    return response, admin_form_data(response)


def rows(response: Any) -> dict[str, str]:
    """The membership inline's rows as shown: username -> the row's form prefix."""
    formset = next(
        inline.formset
        for inline in response.context["inline_admin_formsets"]
        if inline.formset.model is Membership
    )
    return {form.instance.user.username: form.prefix for form in formset.initial_forms}


def membership(user: Any, org: Organisation) -> Membership:
    return Membership.objects.get(user=user, organisation=org, ended_at__isnull=True)


def changes() -> list[tuple[str, str, str, str, str]]:
    return list(
        MembershipEvent.objects.order_by("pk").values_list(
            "membership__user__username", "kind", "from_role", "to_role", "actor__username"
        )
    )


def test_an_org_admin_sees_their_members_on_the_organisation_page(client, org):
    response, _ = signed_in(client, org["ada"], org)
    assert sorted(rows(response)) == ["ada", "audrey", "casey", "xavier"]
    assert "24 Dec 2026" in response.content.decode()  # xavier's planned end, as text
    # Nobody can delete one: a membership is ended instead.
    assert "DELETE" not in "".join(admin_form_data(response))
    assert "End membership" in response.content.decode()


def test_submitting_the_page_unchanged_changes_nothing(client, org):
    before = (changes(), list(Membership.objects.values()))
    _, data = signed_in(client, org["ada"], org)
    response = client.post(page(org), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert (changes(), list(Membership.objects.values())) == before


def test_changing_a_role_on_the_page_records_who_did_it(client, org):
    response, data = signed_in(client, org["ada"], org)
    data[f"{rows(response)['casey']}-role"] = Role.MANAGER
    assert client.post(page(org), data).status_code == 302
    assert membership(org["casey"], org["ours"]).role == Role.MANAGER
    assert changes()[-1] == ("casey", ROLE_CHANGED, "compliance", "manager", "ada")
    shown = client.get(page(org)).content.decode()
    assert "Role changed" in shown  # the page's membership history


def test_ending_a_membership_records_when_and_who_and_takes_access_away(client, org):
    casey = org["casey"]
    obligations = reverse("admin:obligations_obligation_changelist")
    client.force_login(casey)
    assert client.get(obligations).status_code == 200
    response, data = signed_in(client, org["ada"], org)
    data[f"{rows(response)['casey']}-end"] = "on"
    assert client.post(page(org), data).status_code == 302
    ended = Membership.objects.get(user=casey)  # kept, not deleted
    assert (ended.ended_at, ended.ended_by) == (NOW, org["ada"])
    assert changes()[-1] == ("casey", ENDED, "compliance", "", "ada")
    assert "casey" not in rows(client.get(page(org)))
    # casey no longer sees the organisation's obligations, in the admin or the API.
    client.force_login(casey)
    assert client.get(obligations).status_code == 403
    _, key = create_api_token(actor=casey, name="after")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/obligations/").json()["results"] == []


def test_adding_a_member_on_the_page_goes_through_the_service(client, org):
    newcomer = UserFactory(username="newcomer", is_staff=False)
    response, data = signed_in(client, org["ada"], org)
    assert "newcomer" in response.content.decode()  # offered: belongs to no organisation
    prefix = "memberships"
    count = int(data[f"{prefix}-TOTAL_FORMS"])
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": str(count + 1),
            f"{prefix}-{count}-user": newcomer.pk,
            f"{prefix}-{count}-role": Role.AUDITOR,
        }
    )
    assert client.post(page(org), data).status_code == 302
    assert membership(newcomer, org["ours"]).role == Role.AUDITOR
    newcomer.refresh_from_db()
    assert newcomer.is_staff  # add_member's rule: members use the admin
    assert changes()[-1] == ("newcomer", ADDED, "", "auditor", "ada")


def test_adding_someone_who_is_already_a_member_is_refused_beside_the_row(client, org):
    _, data = signed_in(client, org["ada"], org)
    count = int(data["memberships-TOTAL_FORMS"])
    data.update(
        {
            "memberships-TOTAL_FORMS": str(count + 1),
            f"memberships-{count}-user": org["audrey"].pk,
            f"memberships-{count}-role": Role.ADMIN,
        }
    )
    before = changes()
    refused = client.post(page(org), data)
    assert refused.status_code == 200
    assert "audrey already has a membership of Ours" in refused.content.decode()
    assert changes() == before


def test_the_last_admin_cannot_end_or_give_up_their_own_admin_role(client, org):
    ada = org["ada"]
    response, data = signed_in(client, ada, org)
    for field, value in (("end", "on"), ("role", Role.COMPLIANCE)):
        attempt = {**data, f"{rows(response)['ada']}-{field}": value}
        refused = client.post(page(org), attempt)
        assert refused.status_code == 200
        assert "ada is the last admin of Ours" in refused.content.decode()
    assert membership(ada, org["ours"]).role == Role.ADMIN
    with pytest.raises(ValidationError):
        end_membership(actor=ada, membership=membership(ada, org["ours"]))
    # With another admin, ada may step down.
    change_role(actor=ada, membership=membership(org["casey"], org["ours"]), role="admin")
    response, data = signed_in(client, ada, org)
    data[f"{rows(response)['ada']}-end"] = "on"
    assert client.post(page(org), data).status_code == 302
    assert not active_memberships(ada).exists()


def test_two_admins_cannot_both_be_ended_in_one_submission(client, org):
    """Each row alone keeps an admin; together they would leave none: refused as a whole."""
    change_role(actor=org["ada"], membership=membership(org["casey"], org["ours"]), role="admin")
    response, data = signed_in(client, org["ada"], org)
    shown = rows(response)
    data.update({f"{shown['ada']}-end": "on", f"{shown['casey']}-role": Role.COMPLIANCE})
    refused = client.post(page(org), data)
    assert refused.status_code == 200 and "is the last admin of Ours" in refused.content.decode()
    admins = Membership.objects.active().filter(organisation=org["ours"], role=Role.ADMIN)
    assert set(admins.values_list("user__username", flat=True)) == {"ada", "casey"}


def test_one_submission_can_hand_the_admin_role_over(client, org):
    response, data = signed_in(client, org["ada"], org)
    shown = rows(response)
    data.update({f"{shown['ada']}-end": "on", f"{shown['casey']}-role": Role.ADMIN})
    assert client.post(page(org), data).status_code == 302
    assert membership(org["casey"], org["ours"]).role == Role.ADMIN
    assert not Membership.objects.active().filter(user=org["ada"]).exists()


def test_an_operator_adds_an_organisation_with_its_first_admin(client, org):
    root = UserFactory(username="root", is_superuser=True)
    client.force_login(root)
    url = reverse("admin:obligations_organisation_add")
    data = admin_form_data(client.get(url))
    data.update(
        {
            "name": "Newco",
            "memberships-TOTAL_FORMS": "1",
            "memberships-0-user": UserFactory(username="nia").pk,
            "memberships-0-role": Role.ADMIN,
        }
    )
    assert client.post(url, data).status_code == 302
    newco = Organisation.objects.get(name="Newco")
    assert changes()[-1] == ("nia", MembershipChange.ADDED, "", "admin", "root")
    assert membership(Membership.objects.get(organisation=newco).user, newco).role == "admin"


def test_an_org_admin_cannot_change_another_organisations_members(client, org):
    ada, theirs = org["ada"], org["theirs"]
    eve = membership(org["eve"], theirs)
    with pytest.raises(PermissionDenied):
        add_member(actor=ada, organisation=theirs, user=org["casey"], role="admin")
    with pytest.raises(PermissionDenied):
        change_role(actor=ada, membership=eve, role=Role.ADMIN)
    with pytest.raises(PermissionDenied):
        end_membership(actor=ada, membership=eve)
    # Nor may a member who is not an admin change their own organisation's.
    with pytest.raises(PermissionDenied):
        change_role(
            actor=org["casey"], membership=membership(org["casey"], org["ours"]), role="admin"
        )
    client.force_login(ada)
    other_page = reverse("admin:obligations_organisation_change", args=[theirs.pk])
    assert client.get(other_page).status_code == 404
    # Another organisation's people are not offered on ada's own page either.
    assert "eve-theirs" not in client.get(page(org)).content.decode()


def test_a_former_member_is_added_again_as_a_new_membership(client, org):
    ada, casey = org["ada"], org["casey"]
    end_membership(actor=ada, membership=membership(casey, org["ours"]))
    _, data = signed_in(client, ada, org)
    count = int(data["memberships-TOTAL_FORMS"])
    data.update(
        {
            "memberships-TOTAL_FORMS": str(count + 1),
            f"memberships-{count}-user": casey.pk,
            f"memberships-{count}-role": Role.AUDITOR,
        }
    )
    assert client.post(page(org), data).status_code == 302
    past, present = Membership.objects.filter(user=casey).order_by("pk")
    assert (past.role, past.ended_by, present.role, present.ended_at) == (
        "compliance",
        ada,
        "auditor",
        None,
    )
    assert roles_by_organisation(casey) == {org["ours"].pk: Role.AUDITOR}


def test_no_one_deletes_a_membership_or_a_member(client, org):
    operator = UserFactory(username="root", is_superuser=True)
    response, data = signed_in(client, operator, org)
    prefix = rows(response)["casey"]
    client.post(page(org), {**data, f"{prefix}-DELETE": "on"})
    assert org["casey"].memberships.get().ended_at is None  # still there, still in force
    # Deleting the person would erase who had access: refused, they are deactivated instead.
    with pytest.raises(ProtectedError):
        org["casey"].delete()


def test_an_ended_membership_counts_nowhere(org):
    """Every reader of memberships uses the one definition (Membership.objects.active)."""
    ours, casey, audrey = org["ours"], org["casey"], org["audrey"]
    obligation = Obligation.objects.filter(provider__organisation=ours).first()
    change_role(actor=org["ada"], membership=membership(casey, ours), role="manager")
    assert casey.pk in reviewers_for(obligation, submitted_by=audrey)
    end_membership(actor=org["ada"], membership=membership(casey, ours))
    assert casey.pk not in reviewers_for(obligation, submitted_by=audrey)
    assert not active_memberships_of(ours).filter(user=casey).exists()
    assert "casey@example.test" not in ImportContext.load(ours).members
    cycle = ObligationCycle.objects.filter(pk=obligation.current_cycle_id)
    row = CycleRow(*cycle.values_list(*CYCLE_FIELDS).get())
    staff = SweepContext.load([row], NOW.date(), {}).staff[ours.pk]  # who is reminded
    assert casey.pk not in staff.get(Role.MANAGER, [])
    # Their admin no longer oversees their tokens: casey left.
    token, _ = create_api_token(actor=casey, name="mine")
    with pytest.raises(PermissionDenied):
        revoke_api_token(actor=org["ada"], token=token)


def test_the_organisation_page_costs_the_same_queries_however_many_members(client, org):
    client.force_login(org["ada"])

    def grow(size: int) -> None:
        while Membership.objects.filter(organisation=org["ours"]).count() < size:
            member(org["ours"])

    assert_constant_queries(grow, lambda: client.get(page(org)), (5, 12))


def test_an_admin_still_sees_a_former_members_sign_ins_from_while_they_were_a_member(org, clock):
    casey = org["casey"]
    record_access(user=casey, action=AccessAction.SIGN_IN, request=None)
    clock.shift(dt.timedelta(hours=1))
    end_membership(actor=org["ada"], membership=membership(casey, org["ours"]))
    clock.shift(dt.timedelta(hours=1))
    record_access(user=casey, action=AccessAction.SIGN_IN, request=None)
    seen = access_log_for(org["ada"]).filter(user=casey).values_list("at", flat=True)
    assert list(seen) == [NOW]
    assert not access_log_for(org["tess"]).filter(user=casey).exists()
