import datetime as dt
import zoneinfo

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from obligations.access.actions import add_member
from obligations.access.models import Organisation, Role
from obligations.access.users import get_system_user
from obligations.catalogue.models import Feature, RegisterCategory
from obligations.notices.actions import move_technology_notice, record_notice
from obligations.notices.models import NoticeStage, TechnologyNotice, TechnologyRequirement
from obligations.providers.models import Provider, Service
from obligations.register.actions import set_due_date
from obligations.register.apply import apply_catalogue
from obligations.register.evidence import add_evidence_link
from obligations.register.models import Obligation, ObligationCycle
from obligations.register.states import EventSource
from obligations.register.workflow import (
    do_approve,
    do_mark_not_applicable,
    do_start,
    do_submit_for_review,
)
from obligations.reminders.models import Reminder, ReminderKind


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    is_staff = True
    password = factory.django.Password("pw-for-tests-only")


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"Organisation {n}")


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Provider

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Provider {n}")


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service
        skip_postgeneration_save = True

    provider = factory.SubFactory(ProviderFactory)
    name = factory.Sequence(lambda n: f"Service {n}")
    user_to_user = True
    uk_monthly_users = 100_000
    children_likely_to_access = False

    @factory.post_generation
    def categories(self, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if create and extracted:
            self.categories.set(RegisterCategory.objects.filter(code__in=extracted))

    @factory.post_generation
    def features(self, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if create and extracted:
            self.features.set(Feature.objects.filter(code__in=extracted))


def member(organisation: Organisation, role: str = Role.COMPLIANCE, **kwargs):  # type: ignore[no-untyped-def]
    user = UserFactory(**kwargs)
    add_member(actor=get_system_user(), organisation=organisation, user=user, role=role)
    return user


def applied_service(**kwargs):  # type: ignore[no-untyped-def]
    """A service with the catalogue applied, as the admin leaves it after saving."""
    service = ServiceFactory(**kwargs)
    apply_catalogue(actor=get_system_user(), service=service, source=EventSource.ADMIN)
    return service


# --- Small scenarios the dashboard and register tests build from -----------------

SOURCE = EventSource.ADMIN
LONDON = zoneinfo.ZoneInfo("Europe/London")
# Duties with no risk assessment or Codes measure in the way of being met.
UNGATED = ("U2U-RECORDS", "U2U-FOE-PRIVACY", "TOS-RIGHT-TO-SUE", "U2U-REPORTING", "U2U-COMPLAINTS")


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    """A moment on `day` in London, for moving the clock."""
    return dt.datetime(
        day.year, day.month, day.day, hour, tzinfo=zoneinfo.ZoneInfo("Europe/London")
    )


def keep_only(obligations, codes, actor):  # type: ignore[no-untyped-def]
    """Close every other obligation as not applicable; return the kept ones, in `codes` order."""
    kept = {}
    for ob in obligations.select_related("duty", "current_cycle"):
        if ob.duty.code in codes:
            kept[ob.duty.code] = ob
        else:
            do_mark_not_applicable(
                actor=actor, cycle=ob.current_cycle, source=SOURCE, reason="Out of scope."
            )
    return [kept[code] for code in codes]


def due_in(ob, days, actor, today):  # type: ignore[no-untyped-def]
    set_due_date(
        actor=actor,
        cycle=ob.current_cycle,
        due=today + dt.timedelta(days=days),
        reason="Planned.",
        source=SOURCE,
    )


def meet(ob, doer, reviewer):  # type: ignore[no-untyped-def]
    """Work the obligation's cycle to met the only way the workflow allows: started, a link
    as evidence, submitted, and approved by someone else."""
    cycle = do_start(actor=doer, cycle=ob.current_cycle, source=SOURCE)
    add_evidence_link(
        actor=doer, cycle=cycle, url="https://wiki.test/records", title="Records", source=SOURCE
    )
    cycle = do_submit_for_review(actor=doer, cycle=cycle, source=SOURCE)
    return do_approve(actor=reviewer, cycle=cycle, source=SOURCE)


def due_soon_reminder(
    cycle: ObligationCycle, recipient: object, today: dt.date, reason: str = "Due in a week."
) -> Reminder:
    """A reminder row as the sweep records one, a week before the cycle's deadline."""
    return Reminder.objects.create(
        cycle=cycle,
        kind=ReminderKind.DUE_SOON,
        step=7,
        deadline=today + dt.timedelta(days=7),
        recipient=recipient,
        reason=reason,
        created_at=timezone.now(),
    )


def put_in(cycle, status, **changes):  # type: ignore[no-untyped-def]
    """Test set-up: place the cycle in a state directly, skipping the services (which are
    not what the test is about), with the copy on its obligation kept in step as they would."""
    ObligationCycle.objects.filter(pk=cycle.pk).update(status=status, **changes)
    Obligation.objects.filter(current_cycle=cycle.pk).update(status=status)
    cycle.refresh_from_db()
    return cycle


def notice_in_representations(service, actor, reference, today):  # type: ignore[no-untyped-def]
    """A Technology Notice whose warning was given ten days ago: in its representations
    window, representations due in 18 days."""
    notice = record_notice(
        actor=actor,
        notice=TechnologyNotice(
            service=service,
            ofcom_reference=reference,
            csea_public=True,
            requirement=TechnologyRequirement.USE,
            accredited_technology="hash matching",
            skilled_report_on=today - dt.timedelta(days=40),
            warning_given_on=today - dt.timedelta(days=10),
            representations_due=today + dt.timedelta(days=18),
        ),
        source=SOURCE,
    )
    move_technology_notice(
        actor=actor, notice=notice, to=NoticeStage.WARNING, on=today - dt.timedelta(days=10),
        source=SOURCE,
    )  # fmt: skip
    return notice


def moderation_log(cycle, actor, url="https://example.org/log"):  # type: ignore[no-untyped-def]
    """A link to evidence: a moderation log, on the cycle."""
    return add_evidence_link(
        actor=actor, cycle=cycle, url=url, title="Moderation log", source=SOURCE
    )
