"""Who may see and do what: memberships, roles, the tenancy scope of every query.

Every read of tenant data goes through `scope`, a join or subquery on the user's active
memberships, never a Python list of ids."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, Q, QuerySet

from obligations.access.models import (
    ApiToken,
    Membership,
    MembershipEvent,
    Organisation,
    Role,
    SsoGroupRole,
)
from obligations.assessments.models import AssessmentEntry, MeasureDecision, RiskAssessment
from obligations.dashboard.models import ComplianceCount
from obligations.notices.models import OfcomNotice, TechnologyNotice
from obligations.providers.models import Provider, RevenuePeriod, Service, SignificantChange
from obligations.register.models import Event, Evidence, Obligation, ObligationCycle
from obligations.register.states import CycleStatus
from obligations.reminders.models import LeadTime, Reminder, WebhookDelivery, WebhookEndpoint

ModelT = TypeVar("ModelT", bound=Model)


# How each tenant-owned model reaches its organisation.
ORGANISATION_PATHS: dict[type[Model], str] = {
    Organisation: "pk",
    Membership: "organisation",
    MembershipEvent: "organisation",
    SsoGroupRole: "organisation",
    Provider: "organisation",
    RevenuePeriod: "provider__organisation",
    Service: "provider__organisation",
    SignificantChange: "service__provider__organisation",
    Obligation: "provider__organisation",
    ObligationCycle: "obligation__provider__organisation",
    Event: "obligation__provider__organisation",
    Evidence: "cycle__obligation__provider__organisation",
    TechnologyNotice: "service__provider__organisation",
    OfcomNotice: "service__provider__organisation",
    LeadTime: "organisation",
    RiskAssessment: "service__provider__organisation",
    AssessmentEntry: "assessment__service__provider__organisation",
    MeasureDecision: "service__provider__organisation",
    Reminder: "cycle__obligation__provider__organisation",
    WebhookEndpoint: "organisation",
    WebhookDelivery: "endpoint__organisation",
    ComplianceCount: "provider__organisation",
}


AnyUser = AbstractBaseUser | AnonymousUser


# Who may approve an obligation's cycle (four eyes still applies to each of them). Managers
# review without editing: they approve or send back, and change nothing else.
REVIEWER_ROLES = (Role.ADMIN, Role.COMPLIANCE, Role.MANAGER)


REVIEW_TARGETS = (CycleStatus.MET, CycleStatus.SENT_BACK)


def active_memberships(user: AnyUser, roles: tuple[str, ...] | None = None) -> QuerySet[Membership]:
    if not user.is_authenticated:
        return Membership.objects.none()
    qs = Membership.objects.active().filter(user_id=user.pk)
    if roles is not None:
        qs = qs.filter(role__in=roles)
    return qs


def active_memberships_of(organisation_id: int) -> QuerySet[Membership]:
    """The organisation's memberships in force."""
    return Membership.objects.active().filter(organisation_id=organisation_id)


def scope(
    qs: QuerySet[ModelT], user: AnyUser, roles: tuple[str, ...] | None = None
) -> QuerySet[ModelT]:
    """Rows of `qs` that belong to organisations where `user` holds one of `roles`.

    Superusers (the installation's operators) see every organisation.
    """
    path = ORGANISATION_PATHS[qs.model]
    if getattr(user, "is_superuser", False) and user.is_active:
        return qs
    return qs.filter(**{f"{path}__in": held_organisations(user, roles, using=qs.db)})


def held_organisations(
    user: AnyUser, roles: tuple[str, ...] | None = None, using: str = DEFAULT_DB_ALIAS
) -> list[int] | QuerySet[Membership, Any]:
    """The organisations where `user` holds one of `roles` (any role if None), to filter by:
    in the form the database `using` plans best.

    PostgreSQL gets them as values, read once per user object with the user's roles
    (`roles_by_organisation`; a user holds a handful, so the list stays short however large
    the register grows). Only for values does it estimate a tenant's share of a table from
    the column's statistics. Given a subquery on the memberships, it took every tenant to be
    of average size and walked a large tenant's 100,000 obligations to find a small tenant's
    35: 85 ms for an API page that now takes 15, 178 ms for a dashboard that takes 44. With
    the values, the large tenant's pages are a tenth to a fifth faster too.

    SQLite keeps the subquery. It has no statistics per value (Python's sqlite3 is built
    without STAT4), so it plans any one tenant as an average one; given a value, it drove
    even a lone organisation's API page from its providers and sorted the whole register
    (10 ms became 44 ms at 100,000).
    """
    if connections[using].vendor != "postgresql":
        return active_memberships(user, roles).values("organisation_id")
    held = roles_by_organisation(user)
    return sorted(o for o, role in held.items() if roles is None or role in roles)


def visible_organisations(
    user: AnyUser, roles: tuple[str, ...] | None = None
) -> QuerySet[Organisation]:
    return scope(Organisation.objects.all(), user, roles)


def notifications_for(user: AnyUser) -> QuerySet[Reminder]:
    """A user's own notifications, plus every reminder of the organisations they oversee."""
    visible = scope(Reminder.objects.all(), user)
    if getattr(user, "is_superuser", False):
        return visible
    overseen = held_organisations(user, (Role.ADMIN, Role.MANAGER), using=visible.db)
    return visible.filter(
        Q(recipient_id=user.pk) | Q(cycle__obligation__provider__organisation__in=overseen)
    )


def roles_by_organisation(user: AnyUser) -> dict[int, str]:
    """The user's active role in each organisation, read once per user object.

    The admin asks permission questions dozens of times per page; `request.user` lives for one
    request, so caching on it keeps a page's query count small without going stale.
    """
    if not user.is_authenticated:
        return {}
    cached: dict[int, str] | None = getattr(user, "_tracker_roles", None)
    if cached is None:
        cached = dict(active_memberships(user).values_list("organisation_id", "role"))
        user._tracker_roles = cached  # type: ignore[union-attr,attr-defined]
    return cached


def forget_roles(user: AnyUser) -> None:
    """Read the user's roles again at the next question (their memberships just changed)."""
    user.__dict__.pop("_tracker_roles", None)


def has_role(
    user: AnyUser, roles: tuple[str, ...] | None = None, organisation_id: int | None = None
) -> bool:
    """Whether the user holds one of `roles` (any role if None), in one organisation or any."""
    held = roles_by_organisation(user)
    if organisation_id is not None:
        held = {organisation_id: held[organisation_id]} if organisation_id in held else {}
    return any(roles is None or role in roles for role in held.values())


def can_edit(user: AnyUser, organisation_id: int | None = None) -> bool:
    """Whether the user may change register data (of one organisation, or of any)."""
    if getattr(user, "is_superuser", False):
        return True
    return has_role(user, (Role.ADMIN, Role.COMPLIANCE), organisation_id)


def can_review(user: AnyUser, organisation_id: int | None = None) -> bool:
    """Whether the user may decide a cycle that is ready for review (approve or send back)."""
    if getattr(user, "is_superuser", False):
        return True
    return has_role(user, REVIEWER_ROLES, organisation_id)


def may_transition(user: AnyUser, organisation_id: int, to: str) -> bool:
    """Editors make any transition the workflow allows; reviewers who are not editors (the
    managers) only the review's two."""
    return can_edit(user, organisation_id) or (
        to in REVIEW_TARGETS and can_review(user, organisation_id)
    )


def organisation_of(obj: Model) -> int:
    """The organisation id a tenant-owned object belongs to."""
    path = ORGANISATION_PATHS[type(obj)]
    if path == "pk":
        return int(obj.pk)
    *hops, last = path.split("__")
    value: object = obj
    for part in hops:
        value = getattr(value, part)
    # The last hop's id column, so that the organisation row itself is never fetched.
    return int(getattr(value, f"{last}_id"))


def search_related(
    qs: QuerySet[ModelT], fields: Iterable[str], terms: Iterable[str]
) -> QuerySet[ModelT]:
    """Rows of `qs` with every term in one of `fields`, each a column of a related table
    ("duty__title"), as the admin's search over those fields would find them.

    Each term is looked for in the related tables (duties, services and providers: small),
    and the rows are then chosen by those ids: not a LIKE per field on every joined row,
    which took 145 ms for a page of the register and as long again for its count at 100,000.
    """
    related: dict[str, tuple[Any, list[str]]] = {}
    for path in fields:
        relation, _, column = path.partition("__")
        model = qs.model._meta.get_field(relation).related_model
        related.setdefault(relation, (model, []))[1].append(column)
    for term in terms:
        found = Q()
        for relation, (model, columns) in related.items():
            matching = Q.create([(f"{c}__icontains", term) for c in columns], connector=Q.OR)
            found |= Q(**{f"{relation}__in": model._default_manager.filter(matching).values("pk")})
        qs = qs.filter(found)
    return qs


def overseen_token_holders(user: AnyUser) -> QuerySet[Any]:
    """Users whose API tokens `user` may list and revoke (never make, nor see a key of:
    services.create_api_token): themselves, and the members of organisations they
    administer; operators, everyone."""
    users = get_user_model().objects.filter(is_active=True)
    if getattr(user, "is_superuser", False):
        return users
    administered = active_memberships(user, (Role.ADMIN,)).values("organisation_id")
    members = Membership.objects.active().filter(organisation__in=administered)
    return users.filter(Q(pk=user.pk) | Q(pk__in=members.values("user_id")))


def api_tokens_for(user: AnyUser) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user__in=overseen_token_holders(user).values("pk"))


def webhooks_for(user: AnyUser) -> QuerySet[WebhookEndpoint]:
    """The team chat webhooks a user manages: their organisations' as its admin (webhook
    addresses are secrets: other roles see none)."""
    return scope(WebhookEndpoint.objects.all(), user, (Role.ADMIN,))
