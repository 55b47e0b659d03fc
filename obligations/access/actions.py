"""Writes to an organisation's membership: add, change role, end. Only its admins (and
operators, and the system user) act; an organisation always keeps an admin; every change is a
MembershipEvent naming who made it, in the same transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from obligations.access.models import (
    Membership,
    MembershipChange,
    MembershipEvent,
    Organisation,
    Role,
)
from obligations.access.selectors import active_memberships
from obligations.access.users import is_system_user
from obligations.dates import check_plausible_dates


def _check_manages_members(actor: User, organisation_id: int) -> None:
    if actor.is_superuser or is_system_user(actor):
        return
    if (
        not active_memberships(actor, (Role.ADMIN,))
        .filter(organisation_id=organisation_id)
        .exists()
    ):
        raise PermissionDenied("Only the organisation's admins can change its members.")


def _lock_members(organisation_id: int) -> None:
    """One membership change of an organisation at a time: two admins ending each other's
    memberships at once must not leave it with none (PostgreSQL; SQLite writes one at a
    time anyway)."""
    list(Organisation.objects.select_for_update().filter(pk=organisation_id).values("pk"))


def check_new_member(
    *, organisation: Organisation, user: User, role: str, expires_at: dt.datetime | None
) -> None:
    """Refuse, under each field's name, what would make a wrong membership."""
    check_plausible_dates(expires_at=expires_at)
    _check_role(role)
    errors: dict[str, list[str]] = {}
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = ["Give a time in the future: access ends then."]
    if not user.is_active:
        errors["user"] = [f"{user} is deactivated."]
    elif (
        organisation.pk is not None  # a new organisation has no members yet
        and Membership.objects.filter(
            user=user, organisation=organisation, ended_at__isnull=True
        ).exists()
    ):
        errors["user"] = [
            f"{user} already has a membership of {organisation}: change its role, or end it "
            "(an expired one too) before adding them again."
        ]
    if errors:
        raise ValidationError(errors)


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationError({"role": [f"Choose one of: {', '.join(Role.labels)}."]})


def check_keeps_an_admin(*, membership: Membership, also: Iterable[int] = ()) -> None:
    """Refuse to end or demote the organisation's last admin in force: nobody could manage
    its members any more (an operator would have to). `also`: the other memberships the same
    change ends or demotes (one form submitted with several rows)."""
    admins = set(
        Membership.objects.active()
        .filter(organisation_id=membership.organisation_id, role=Role.ADMIN)
        .values_list("pk", flat=True)
    )
    if admins and admins <= {membership.pk, *also}:
        raise ValidationError(
            f"{membership.user} is the last admin of {membership.organisation}: make someone "
            "else an admin first, or nobody could manage its members."
        )


def _open_role(membership: Membership) -> str:
    """The membership's role as the database has it now; refused once it has ended."""
    role = (
        Membership.objects.filter(pk=membership.pk, ended_at__isnull=True)
        .values_list("role", flat=True)
        .first()
    )
    if role is None:
        raise ValidationError(f"{membership.user}'s membership has already ended.")
    return role


def _membership_event(
    *,
    actor: User,
    membership: Membership,
    kind: str,
    from_role: str = "",
    to_role: str = "",
    at: dt.datetime | None = None,
    description: str = "",
) -> None:
    MembershipEvent.objects.create(
        membership=membership,
        organisation_id=membership.organisation_id,
        kind=kind,
        from_role=from_role,
        to_role=to_role,
        actor=actor,
        at=at or timezone.now(),
        description=description,
    )


@transaction.atomic
def add_member(
    *,
    actor: User,
    organisation: Organisation,
    user: User,
    role: str,
    expires_at: dt.datetime | None = None,
    description: str = "",
    via_sso: bool = False,
) -> Membership:
    """Give a user a role in an organisation: a new membership (an ended one of theirs stays
    on record as it was). Members use the admin, so they are staff. `via_sso`: single sign-on
    gives it, and will change and end it (access/sso.py)."""
    _lock_members(organisation.pk)
    _check_manages_members(actor, organisation.pk)
    check_new_member(organisation=organisation, user=user, role=role, expires_at=expires_at)
    membership = Membership.objects.create(
        user=user, organisation=organisation, role=role, expires_at=expires_at, via_sso=via_sso
    )
    _membership_event(
        actor=actor,
        membership=membership,
        kind=MembershipChange.ADDED,
        to_role=role,
        description=description,
    )
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return membership


@transaction.atomic
def change_role(
    *, actor: User, membership: Membership, role: str, description: str = ""
) -> Membership:
    """Give a member another role in the same organisation; the event keeps the old one."""
    _lock_members(membership.organisation_id)
    _check_manages_members(actor, membership.organisation_id)
    _check_role(role)
    current = _open_role(membership)
    if current == role:
        return membership
    if current == Role.ADMIN:
        check_keeps_an_admin(membership=membership)
    Membership.objects.filter(pk=membership.pk, ended_at__isnull=True, role=current).update(
        role=role
    )
    _membership_event(
        actor=actor,
        membership=membership,
        kind=MembershipChange.ROLE_CHANGED,
        from_role=current,
        to_role=role,
        description=description,
    )
    membership.role = role
    return membership


@transaction.atomic
def end_membership(*, actor: User, membership: Membership, description: str = "") -> Membership:
    """End a membership now: the person loses the organisation at once. The row is kept,
    with when and by whom; to come back, they are added again (a new membership)."""
    _lock_members(membership.organisation_id)
    _check_manages_members(actor, membership.organisation_id)
    role = _open_role(membership)
    if role == Role.ADMIN:
        check_keeps_an_admin(membership=membership)
    now = timezone.now()
    Membership.objects.filter(pk=membership.pk, ended_at__isnull=True).update(
        ended_at=now, ended_by=actor
    )
    _membership_event(
        actor=actor,
        membership=membership,
        kind=MembershipChange.ENDED,
        from_role=role,
        at=now,
        description=description,
    )
    membership.ended_at, membership.ended_by = now, actor
    return membership
