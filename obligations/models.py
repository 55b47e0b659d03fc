"""The register's tables, their invariants and indexes.

Writes happen in services.py, reads that list or aggregate in selectors.py.
Nothing here has business logic in save() or signals.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from obligations.dates import EARLIEST, LATEST, add_months, display, validate_plausible_date
from obligations.inputs import DECIMAL_PLACES, MAX_DIGITS, validate_amount, validate_single_line

# --- Vocabularies ---------------------------------------------------------


class Role(models.TextChoices):
    ADMIN = "admin", "Organisation admin"
    COMPLIANCE = "compliance", "Compliance"
    MANAGER = "manager", "Manager"
    AUDITOR = "auditor", "Auditor"


class CycleStatus(models.TextChoices):
    NOT_STARTED = "not_started", "Not started"
    IN_PROGRESS = "in_progress", "In progress"
    READY_FOR_REVIEW = "ready_for_review", "Ready for review"
    SENT_BACK = "sent_back", "Sent back"
    MET = "met", "Met"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


CLOSED_STATUSES = (CycleStatus.MET, CycleStatus.NOT_APPLICABLE)
OPEN_STATUSES = tuple(s for s in CycleStatus.values if s not in CLOSED_STATUSES)
# Open work someone has started (the dashboard's "in progress"): open, less not started.
UNDERWAY_STATUSES = tuple(s for s in OPEN_STATUSES if s != CycleStatus.NOT_STARTED)


def is_overdue(status: str, due: dt.date | None, today: dt.date) -> bool:
    """Open work past its due date; a continuous duty (no due date) never is."""
    return due is not None and due < today and status in OPEN_STATUSES


def overdue(today: dt.date, *, status: str = "status", due: str = "due_date") -> Q:
    """`is_overdue` as a filter, on the `status` and `due` columns (SQL's NULL < today is
    not true, so a continuous duty is left out here too)."""
    return Q(**{f"{due}__lt": today, f"{status}__in": OPEN_STATUSES})


def due_within(today: dt.date, days: int) -> Q:
    """Open work due between `today` and `days` from it, both included: not overdue yet."""
    return Q(due_date__range=(today, today + dt.timedelta(days=days)), status__in=OPEN_STATUSES)


# An obligation in one of these is not counted: no cycle yet, or marked not applicable.
UNCOUNTED_STATUSES = ("", CycleStatus.NOT_APPLICABLE)


def counted(status: str = "status") -> Q:
    """The `status` is not one of UNCOUNTED_STATUSES, written as one inequality each: SQLite
    matches a query to a partial index's condition with bound parameters in equalities, but
    not in an IN list."""
    condition = Q()
    for uncounted in UNCOUNTED_STATUSES:
        condition &= ~Q(**{status: uncounted})
    return condition


class CycleTrigger(models.TextChoices):
    INITIAL = "initial", "First cycle"
    RECURRENCE = "recurrence", "Recurring review"
    SIGNIFICANT_CHANGE = "significant_change", "Before a significant change"
    REAPPLIED = "reapplied", "Applies again after a profile change"
    REGULATORY_CHANGE = "regulatory_change", "Regulatory change"
    NOTICE = "notice", "Set by an Ofcom notice"
    CHARGING_YEAR = "charging_year", "For a fees charging year"
    EVIDENCE_EXPIRED = "evidence_expired", "The evidence it was met on expired"


class EventSource(models.TextChoices):
    ADMIN = "admin", "Admin"
    BULK = "bulk", "Bulk action"
    API = "api", "API"
    TASK = "task", "Task"
    IMPORT = "import", "Import"
    COMMAND = "command", "Command"


class EventKind(models.TextChoices):
    CREATED = "created", "Obligation created"
    STATUS = "status", "Status changed"
    NOT_APPLICABLE = "not_applicable", "No longer applies"
    REAPPLIED = "reapplied", "Applies again"
    CYCLE_OPENED = "cycle_opened", "Cycle opened"
    DUE_CHANGED = "due_changed", "Due date changed"
    OWNER_CHANGED = "owner_changed", "Owner changed"
    EVIDENCE_ADDED = "evidence_added", "Evidence added"
    EVIDENCE_PURGED = "evidence_purged", "Evidence purged"
    ASSESSMENT = "assessment", "Risk assessment"


class RevenueBasis(models.TextChoices):
    AUDITED = "audited", "Audited accounts"
    MANAGEMENT_ESTIMATE = "management_estimate", "Management estimate"
    OFCOM_ESTIMATE = "ofcom_estimate", "Ofcom's estimate"
    OFCOM_DETERMINATION = "ofcom_determination", "Ofcom's determination"


class RevenueKind(models.TextChoices):
    ACCOUNTING = "accounting", "Accounting period (penalty cap, and fees when a calendar year)"
    FEES = "fees", "Fees qualifying period only (s.83), not an accounting period"


class DutyScope(models.TextChoices):
    SERVICE = "service", "Each service"
    PROVIDER = "provider", "The provider, for all its services"


class ChangeStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    MADE = "made", "Made"
    CANCELLED = "cancelled", "Cancelled"


# --- Tenancy --------------------------------------------------------------


def default_lead_days() -> list[int]:
    return [30, 7, 1]


def validate_lead_days(value: object) -> None:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 366 for d in value)
    ):
        raise ValidationError("A list of whole numbers of days from 0 to 366, e.g. [30, 7, 1].")


class Organisation(models.Model):
    """A tenant: one compliance team's register."""

    name = models.CharField(max_length=200, unique=True, validators=[validate_single_line])
    reminder_lead_days = models.JSONField(
        "remind owners this many days before a deadline",
        default=default_lead_days,
        validators=[validate_lead_days],
        help_text="A list, e.g. [30, 7, 1]: one daily digest carries whatever is due.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MembershipQuerySet(models.QuerySet["Membership"]):
    def active(self) -> MembershipQuerySet:
        """The one definition of a membership in force: not ended by anyone, and not past
        its planned end. Every read of who belongs where goes through it."""
        return self.filter(ended_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )


class Membership(models.Model):
    """A user's role in an organisation, from `created_at` until it is ended (`ended_at`, by
    `ended_by`) or its planned end passes (`expires_at`). Never deleted: an ended row stays
    as it was, and adding the person again makes a new row. Every change is a
    MembershipEvent; once made, only `role` (while open) and `ended_at`/`ended_by` (once)
    are ever updated."""

    # PROTECT, not CASCADE: people are deactivated and organisations kept, never deleted,
    # and deleting either must not silently erase who had access to what.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Access ends at this time (e.g. an external auditor).",
        validators=[validate_plausible_date],
    )
    created_at = models.DateTimeField("member since", auto_now_add=True)
    ended_at = models.DateTimeField(
        null=True, blank=True, help_text="When an admin ended the membership."
    )
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            # One open membership per person and organisation; ended ones are kept beside it.
            models.UniqueConstraint(
                fields=["user", "organisation"],
                condition=Q(ended_at__isnull=True),
                name="membership_unique_open",
                violation_error_message="Already a member of this organisation.",
            ),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
            # An ending says who ended it, and comes after the start.
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True, ended_by__isnull=True)
                | Q(ended_at__isnull=False, ended_by__isnull=False, ended_at__gte=F("created_at")),
                name="membership_ended_by_someone",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organisation} ({self.get_role_display()})"


class MembershipChange(models.TextChoices):
    ADDED = "added", "Added"
    ROLE_CHANGED = "role_changed", "Role changed"
    ENDED = "ended", "Ended"


class MembershipEvent(models.Model):
    """Who gave whom which role, changed it or ended it, and when: append-only, so that who
    had which role when stays answerable (a membership row shows only its present)."""

    membership = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="events")
    # The membership's organisation, so that its page lists the changes.
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="membership_events"
    )
    kind = models.CharField(max_length=20, choices=MembershipChange.choices)
    from_role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    to_role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["organisation", "at"], name="membership_event_org_at")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind=MembershipChange.ADDED, from_role="", to_role__in=Role.values)
                | Q(
                    Q(kind=MembershipChange.ROLE_CHANGED)
                    & Q(from_role__in=Role.values, to_role__in=Role.values)
                    & ~Q(from_role=F("to_role"))
                )
                | Q(kind=MembershipChange.ENDED, from_role__in=Role.values, to_role=""),
                name="membership_event_roles_fit_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.membership.user}"


# --- Catalogue (data, loaded from fixtures/) ------------------------------


class CatalogueVersion(models.Model):
    version = models.CharField(max_length=40, unique=True)
    published = models.DateField()
    sha256 = models.CharField(max_length=64)
    loaded_at = models.DateTimeField(auto_now_add=True)
    summary = models.JSONField(default=dict, help_text="What this version added, changed, retired.")
    parameters = models.JSONField(
        default=dict, help_text="The figures the Act's money rules use, with their sources."
    )
    notice_powers = models.JSONField(
        default=list, help_text="Ofcom's notice powers, as rules on a service's profile."
    )

    class Meta:
        ordering = ["-loaded_at"]

    def __str__(self) -> str:
        return self.version


class Feature(models.Model):
    """A service feature from the catalogue's vocabulary (e.g. e2ee_messaging)."""

    code = models.SlugField(max_length=60, unique=True)
    label = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    implies = models.JSONField(default=list, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label


class RegisterCategory(models.Model):
    """A part of Ofcom's register of categorised services (s.95): 1, 2A, 2B."""

    code = models.CharField(max_length=10, unique=True)
    label = models.CharField(max_length=120)
    threshold = models.TextField(help_text="The threshold conditions, in words.")
    likely_if = models.JSONField(help_text="Rule that computes the likely category.")
    supersedes = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=200)
    source_url = models.URLField()

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "register categories"

    def __str__(self) -> str:
        return self.label


class Exemption(models.Model):
    """A Schedule 1 exemption a service can claim."""

    code = models.SlugField(max_length=60, unique=True)
    label = models.CharField(max_length=200)
    paragraph = models.CharField(max_length=40)
    source_url = models.URLField()
    verified = models.BooleanField(default=True)
    unverified_note = models.TextField(blank=True)

    class Meta:
        ordering = ["paragraph"]

    def __str__(self) -> str:
        return f"{self.label} ({self.paragraph})"


class Duty(models.Model):
    """One duty of the Act, as the catalogue states it."""

    code = models.CharField(max_length=60, unique=True)
    title = models.CharField(max_length=200)
    section = models.CharField(max_length=60, help_text="As the Act numbers it, e.g. s.10(9).")
    part = models.CharField(max_length=10, help_text="Part of the Act, e.g. 3.")
    instrument = models.CharField(max_length=200)
    summary = models.TextField()
    # Commencement, as the catalogue cites it (obligations.commencement reads these): whether
    # the duty is in force on a day follows from them, and is never stored.
    in_force_from = models.DateField(
        null=True,
        blank=True,
        help_text="The day the provision came into force; empty: not (known to be).",
    )
    commencement = models.JSONField(
        default=dict, help_text="The instrument that commenced it, its link, and what was read."
    )
    applies_from = models.DateField(
        null=True,
        blank=True,
        help_text="Where the duty bites later than its commencement (s.51), the day it does.",
    )
    applies_note = models.TextField(blank=True)
    effective_from = models.DateField(
        null=True,
        blank=True,
        help_text="The day the duty bites: applies_from, else in_force_from; empty: not yet.",
    )
    scope = models.CharField(max_length=10, choices=DutyScope.choices, default=DutyScope.SERVICE)
    assessment_kind = models.CharField(
        max_length=20,
        blank=True,
        help_text="A risk assessment duty: the kind of assessment its cycles need.",
    )
    applies = models.JSONField(help_text="Declarative applicability rule.")
    deadline = models.JSONField(help_text="Deadline rule.")
    evidence = models.TextField(blank=True, help_text="The evidence a team keeps.")
    source_url = models.URLField()
    verified = models.BooleanField(default=True)
    unverified_note = models.TextField(blank=True)
    catalogue_version = models.ForeignKey(
        CatalogueVersion, on_delete=models.PROTECT, related_name="duties"
    )
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "duties"
        indexes = [models.Index(fields=["section"]), models.Index(fields=["verified"])]

    def __str__(self) -> str:
        return f"{self.code} ({self.section})"


# --- Providers and services -----------------------------------------------


def amount_field(verbose_name: str | None = None, **options: Any) -> models.DecimalField:
    """A sum in pounds: columns as wide as inputs.py's rule, and the rule as the validator."""
    return models.DecimalField(
        verbose_name,
        max_digits=MAX_DIGITS,
        decimal_places=DECIMAL_PLACES,
        validators=[validate_amount],
        **options,
    )


class Provider(models.Model):
    """The legal entity that provides services; its revenue sets the penalty cap."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="providers"
    )
    name = models.CharField(max_length=200, validators=[validate_single_line])
    legal_name = models.CharField(max_length=200, blank=True, validators=[validate_single_line])
    country = models.CharField(max_length=60, blank=True, validators=[validate_single_line])
    no_accounting_period = models.BooleanField(
        default=False,
        help_text="The provider has no accounting period: the penalty cap is the fixed sum "
        "(Sch.13 para 4(2)).",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "name"], name="provider_name_unique_per_org"
            )
        ]

    def __str__(self) -> str:
        return self.name


class RevenuePeriod(models.Model):
    """One period's qualifying worldwide revenue: an accounting period sets the penalty cap
    (Sch.13 para 4); a calendar year is also a fees qualifying period (s.83)."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="revenue_periods")
    kind = models.CharField(
        max_length=20, choices=RevenueKind.choices, default=RevenueKind.ACCOUNTING
    )
    start = models.DateField(validators=[validate_plausible_date])
    end = models.DateField(validators=[validate_plausible_date])
    amount_gbp = amount_field("qualifying worldwide revenue (£)")
    basis = models.CharField(max_length=30, choices=RevenueBasis.choices)
    complete = models.BooleanField(
        default=True, help_text="Unticked while the period is still running (an estimate)."
    )
    uk_referable_gbp = amount_field(
        "UK-referable revenue (£)",
        null=True,
        blank=True,
        help_text="For the fees exemption below £10m (a stated government intention, "
        "unverified as law).",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-end"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="revenue_period_order"),
            models.CheckConstraint(condition=Q(amount_gbp__gte=0), name="revenue_non_negative"),
            models.CheckConstraint(
                condition=Q(uk_referable_gbp__isnull=True) | Q(uk_referable_gbp__gte=0),
                name="revenue_uk_referable_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=RevenueKind.values), name="revenue_kind_valid"
            ),
            models.UniqueConstraint(
                fields=["provider", "kind", "start"], name="revenue_period_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}: {self.start} to {self.end}"


class Service(models.Model):
    """A service's profile: what the applicability engine reads."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="services")
    name = models.CharField(max_length=200, validators=[validate_single_line])
    user_to_user = models.BooleanField("user-to-user", default=False)
    search = models.BooleanField("search", default=False)
    provider_pornography = models.BooleanField(
        "publishes provider pornographic content (Part 5)", default=False
    )
    categories = models.ManyToManyField(
        RegisterCategory,
        blank=True,
        related_name="services",
        verbose_name="register categories",
        help_text="The parts of Ofcom's register the service is in (none if not categorised).",
    )
    uk_monthly_users = models.PositiveBigIntegerField("average monthly active UK users", default=0)
    children_likely_to_access = models.BooleanField(
        null=True,
        blank=True,
        help_text="The conclusion of the latest children's access assessment. "
        "Unknown (no assessment recorded) is treated as likely (s.37(4)-(5)).",
    )
    uk_significant_users = models.BooleanField(
        "a significant number of UK users",
        null=True,
        blank=True,
        help_text="s.4(5)(a). Links with the UK make a service regulated; the number of UK "
        "users alone neither brings it in nor takes it out.",
    )
    uk_target_market = models.BooleanField(
        "UK users are a target market", null=True, blank=True, help_text="s.4(5)(b)."
    )
    uk_material_risk = models.BooleanField(
        "usable in the UK with a material risk of significant harm there",
        null=True,
        blank=True,
        help_text="s.4(6). With no limb recorded, the service is treated as having links.",
    )
    children_access_assessed_on = models.DateField(
        null=True, blank=True, validators=[validate_plausible_date]
    )
    features = models.ManyToManyField(Feature, blank=True, related_name="services")
    launch_date = models.DateField(
        "UK launch",
        null=True,
        blank=True,
        validators=[validate_plausible_date],
        help_text="The first day the service is in scope. Empty: in scope since before the "
        "duties began.",
    )
    exemption = models.ForeignKey(
        Exemption,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="services",
        help_text="A Schedule 1 exemption, if the service is exempt.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(m2m_fields=[categories, features])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "name"], name="service_name_unique"),
            models.CheckConstraint(
                condition=Q(user_to_user=True) | Q(search=True) | Q(provider_pornography=True),
                name="service_has_a_kind",
                violation_error_message="A service is user-to-user, search, or publishes "
                "provider pornographic content (or more than one of these).",
            ),
        ]

    def __str__(self) -> str:
        return self.name


# What a service's profile is made of: the fields the admin's form and the API both edit.
SERVICE_PROFILE_FIELDS = (
    "provider",
    "name",
    "user_to_user",
    "search",
    "provider_pornography",
    "categories",
    "uk_monthly_users",
    "uk_significant_users",
    "uk_target_market",
    "uk_material_risk",
    "children_likely_to_access",
    "children_access_assessed_on",
    "features",
    "launch_date",
    "exemption",
)


class SignificantChange(models.Model):
    """A planned or past significant change to a service's design or operation."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="changes")
    description = models.TextField()
    planned_for = models.DateField(validators=[validate_plausible_date])
    status = models.CharField(max_length=20, choices=ChangeStatus.choices)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-planned_for"]

    def __str__(self) -> str:
        return f"{self.service}: {self.description[:40]} ({self.planned_for})"


# --- Ofcom notices ----------------------------------------------------------


class NoticeStage(models.TextChoices):
    """A Technology Notice's process (ss.122-126); see services.NOTICE_STAGES for the moves."""

    SKILLED_PERSON_REPORT = "report", "Skilled person's report (s.122 with s.104)"
    WARNING = "warning", "Warning notice given (s.123)"
    REPRESENTED = "represented", "Representations submitted"
    CLOSED = "closed", "Closed without a notice"
    GIVEN = "given", "Notice given (s.125)"
    IN_FORCE = "in_force", "In force"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class TechnologyRequirement(models.TextChoices):
    USE = "use", "Use accredited technology"
    DEVELOP = "develop", "Best endeavours to develop or source technology (CSEA only)"
    BOTH = "both", "Both"


class NoticeEventKind(models.TextChoices):
    RECORDED = "recorded", "Recorded"
    STAGE = "stage", "Stage changed"
    DATES = "dates", "Dates or terms changed"
    VARIED = "varied", "Varied (s.125(11))"
    REVIEWED = "reviewed", "Reviewed (s.126)"
    FURTHER_NOTICE = "further", "Further notice (s.126)"
    APPEAL_LODGED = "appeal_lodged", "Appeal lodged (s.168)"
    APPEAL_DECIDED = "appeal_decided", "Appeal decided (s.168)"


MAX_NOTICE_RUN_MONTHS = 36


class TechnologyNotice(models.Model):
    """An Ofcom Technology Notice under s.121, from the skilled person's report to its end.

    Variation, review, a further notice and an appeal are dated events (NoticeEvent) that may
    move the dates; they never replace the stage.
    """

    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, related_name="technology_notices"
    )
    ofcom_reference = models.CharField(
        max_length=100, blank=True, validators=[validate_single_line]
    )
    stage = models.CharField(
        max_length=20, choices=NoticeStage.choices, default=NoticeStage.SKILLED_PERSON_REPORT
    )
    terrorism_public = models.BooleanField("terrorism content communicated publicly", default=False)
    csea_public = models.BooleanField("CSEA content communicated publicly", default=False)
    csea_private = models.BooleanField(
        "CSEA content communicated privately",
        default=False,
        help_text="Private channels, end-to-end encrypted ones included (CSEA only).",
    )
    requirement = models.CharField(
        max_length=10, choices=TechnologyRequirement.choices, default=TechnologyRequirement.USE
    )
    accredited_technology = models.CharField(
        max_length=200, blank=True, validators=[validate_single_line]
    )
    skilled_report_on = models.DateField(
        "skilled person's report dated", null=True, blank=True, validators=[validate_plausible_date]
    )
    warning_given_on = models.DateField(
        "warning notice given on", null=True, blank=True, validators=[validate_plausible_date]
    )
    representations_due = models.DateField(
        "representations due by",
        null=True,
        blank=True,
        help_text="The window the warning notice states (s.123).",
        validators=[validate_plausible_date],
    )
    representations_submitted_on = models.DateField(
        null=True, blank=True, validators=[validate_plausible_date]
    )
    given_on = models.DateField(
        "notice given on", null=True, blank=True, validators=[validate_plausible_date]
    )
    appeal_by = models.DateField(
        "decide on an appeal by",
        null=True,
        blank=True,
        help_text="Unverified: the reference gives no time limit for an s.168 appeal; take the "
        "date from the notice or the Upper Tribunal's rules.",
        validators=[validate_plausible_date],
    )
    compliance_by = models.DateField(
        "end of the compliance period",
        null=True,
        blank=True,
        help_text="s.125(6)(e).",
        validators=[validate_plausible_date],
    )
    runs_until = models.DateField(
        "requirements run until",
        null=True,
        blank=True,
        help_text="At most 36 months from the last day of the compliance period (s.125(7)).",
        validators=[validate_plausible_date],
    )
    report_by = models.DateField(
        "next report to Ofcom by",
        null=True,
        blank=True,
        help_text="As the notice requires (s.125).",
        validators=[validate_plausible_date],
    )
    closed_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(stage__in=NoticeStage.values), name="notice_stage_valid"
            ),
            models.CheckConstraint(
                condition=Q(terrorism_public=True) | Q(csea_public=True) | Q(csea_private=True),
                name="notice_covers_some_content",
                violation_error_message="A Technology Notice covers terrorism content, CSEA "
                "content, or both.",
            ),
            models.CheckConstraint(
                condition=Q(requirement=TechnologyRequirement.USE)
                | Q(csea_public=True)
                | Q(csea_private=True),
                name="notice_develop_is_csea_only",
                violation_error_message="Best endeavours to develop or source technology is a "
                "requirement about CSEA content only (s.121).",
            ),
            models.CheckConstraint(
                condition=Q(runs_until__isnull=True)
                | Q(compliance_by__isnull=True)
                | Q(runs_until__gte=F("compliance_by")),
                name="notice_runs_after_compliance",
                violation_error_message="The requirements cannot end before the compliance "
                "period does.",
            ),
        ]
        indexes = [models.Index(fields=["stage"])]

    def __str__(self) -> str:
        ref = self.ofcom_reference or f"#{self.pk}"
        return f"Technology Notice {ref} ({self.service})"

    def clean(self) -> None:
        # s.125(7): the requirements may run for up to 36 months after the compliance period.
        if self.runs_until and self.compliance_by:
            limit = add_months(self.compliance_by, MAX_NOTICE_RUN_MONTHS)
            if self.runs_until > limit:
                raise ValidationError(
                    {
                        "runs_until": f"The requirements may run for at most "
                        f"{MAX_NOTICE_RUN_MONTHS} months from the last day of the compliance "
                        f"period (s.125(7)): {display(limit)} at the latest."
                    }
                )


class NoticeKind(models.TextChoices):
    INFORMATION = "information", "Information notice (s.100)"
    SKILLED_PERSON = "skilled_person", "Skilled person's report requirement (s.104)"
    TRANSPARENCY = "transparency", "Transparency notice (s.77)"
    PROVISIONAL = "provisional", "Provisional notice of contravention (s.130)"
    CONFIRMATION = "confirmation", "Confirmation decision (s.132)"
    PENALTY_PROPOSAL = "penalty_proposal", "Notice of a proposed penalty (s.139(3), s.140(2))"
    PENALTY = "penalty", "Penalty notice (s.139, s.140(5))"


# Notices in the enforcement chain: while one is open, the provider's penalty exposure is at risk.
ENFORCEMENT_KINDS = (
    NoticeKind.PROVISIONAL,
    NoticeKind.CONFIRMATION,
    NoticeKind.PENALTY_PROPOSAL,
    NoticeKind.PENALTY,
)


class OfcomNotice(models.Model):
    """Every other Ofcom notice that carries a deadline, by kind."""

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="ofcom_notices")
    kind = models.CharField(max_length=20, choices=NoticeKind.choices)
    ofcom_reference = models.CharField(
        max_length=100, blank=True, validators=[validate_single_line]
    )
    given_on = models.DateField(validators=[validate_plausible_date])
    respond_by = models.DateField(
        "respond or make representations by",
        null=True,
        blank=True,
        help_text="The response deadline (s.102), the date to submit a transparency report "
        "(s.77(3)(c)), or the representations period the notice specifies (s.130(8): the Act "
        "sets none).",
        validators=[validate_plausible_date],
    )
    publish_by = models.DateField(
        "publish the transparency report by",
        null=True,
        blank=True,
        help_text="s.77(3)(d).",
        validators=[validate_plausible_date],
    )
    steps_required = models.TextField(blank=True, help_text="Steps required (s.133).")
    steps_by = models.DateField(null=True, blank=True, validators=[validate_plausible_date])
    requires_caa = models.BooleanField(
        "requires a children's access assessment",
        default=False,
        help_text="Due within 3 months of the confirmation decision unless Ofcom extends it "
        "(s.135).",
    )
    caa_by = models.DateField(
        "children's access assessment by",
        null=True,
        blank=True,
        validators=[validate_plausible_date],
    )
    single_penalty_gbp = amount_field(null=True, blank=True)
    daily_penalty_gbp = amount_field(null=True, blank=True)
    pay_by = models.DateField(
        null=True,
        blank=True,
        help_text="At least 28 days after the notice (s.137(6)).",
        validators=[validate_plausible_date],
    )
    closed_on = models.DateField(null=True, blank=True, validators=[validate_plausible_date])
    closed_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-given_on"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=NoticeKind.values), name="ofcom_notice_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(closed_on__isnull=True) | ~Q(closed_reason=""),
                name="ofcom_notice_closed_has_reason",
                violation_error_message="Closing a notice needs a reason.",
            ),
            models.CheckConstraint(
                condition=Q(single_penalty_gbp__isnull=True) | Q(single_penalty_gbp__gte=0),
                name="ofcom_notice_penalty_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(daily_penalty_gbp__isnull=True) | Q(daily_penalty_gbp__gte=0),
                name="ofcom_notice_daily_penalty_non_negative",
            ),
        ]
        indexes = [models.Index(fields=["kind", "closed_on"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.ofcom_reference or self.given_on} ({self.service})"


class NoticeEvent(models.Model):
    """Append-only record of a notice's stages and dated events."""

    technology_notice = models.ForeignKey(
        TechnologyNotice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="events",
    )
    ofcom_notice = models.ForeignKey(
        OfcomNotice, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    kind = models.CharField(max_length=20, choices=NoticeEventKind.choices)
    from_stage = models.CharField(max_length=20, choices=NoticeStage.choices, blank=True)
    to_stage = models.CharField(max_length=20, choices=NoticeStage.choices, blank=True)
    on = models.DateField(
        help_text="The date it happened (or takes effect).", validators=[validate_plausible_date]
    )
    note = models.TextField(blank=True)
    changes = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    source = models.CharField(max_length=20, choices=EventSource.choices)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(technology_notice__isnull=True, ofcom_notice__isnull=False)
                | Q(technology_notice__isnull=False, ofcom_notice__isnull=True),
                name="notice_event_has_one_notice",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.on}"


# --- The register ---------------------------------------------------------


class Obligation(models.Model):
    """A duty as it applies to one service.

    Never deleted: when a duty stops applying the obligation is marked not
    applicable with the reason, and its history stays.
    """

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="obligations")
    # Empty for a provider-wide obligation (a duty with scope "provider", such as fees).
    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, null=True, blank=True, related_name="obligations"
    )
    # What is owed: a catalogue duty. When an Ofcom notice is the source, the duty names the
    # kind of requirement (its section and summary) and the notice sets the dates.
    duty = models.ForeignKey(Duty, on_delete=models.PROTECT, related_name="obligations")
    technology_notice = models.ForeignKey(
        TechnologyNotice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="obligations",
    )
    ofcom_notice = models.ForeignKey(
        OfcomNotice, on_delete=models.PROTECT, null=True, blank=True, related_name="obligations"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_obligations",
    )
    applicable = models.BooleanField(default=True)
    why = models.TextField(help_text="Why the duty applies: the profile facts that trigger it.")
    applies_since = models.DateField(
        null=True,
        blank=True,
        help_text="The day the duty started (or starts) to apply to the service; empty while "
        "it is not in force. No due date is ever before it.",
    )
    applies_since_why = models.CharField(max_length=500, blank=True)
    not_applicable_reason = models.TextField(blank=True)
    notes = models.TextField(blank=True)
    external_ref = models.CharField(
        "external reference",
        max_length=100,
        blank=True,
        help_text="The row's key in the spreadsheet it was imported from; re-imports match on it.",
        validators=[validate_single_line],
    )
    current_cycle = models.OneToOneField(
        "ObligationCycle",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # The current cycle's status and due date, copied here by every service that changes
    # them, in the same transaction: counting the register then reads one table, not a join
    # with every cycle (the dashboard's per-service count at 100k: 121 to 152 ms with the
    # join, 31 to 70 without). Empty status: no cycle yet.
    status = models.CharField(max_length=20, choices=CycleStatus.choices, blank=True, default="")
    due_date = models.DateField(null=True, blank=True, validators=[validate_plausible_date])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Status and due date have their own record: the events.
    history = HistoricalRecords(
        excluded_fields=["current_cycle", "status", "due_date", "updated_at"]
    )

    class Meta:
        ordering = ["provider", "service", "duty__code"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "duty"],
                condition=Q(
                    service__isnull=False,
                    technology_notice__isnull=True,
                    ofcom_notice__isnull=True,
                ),
                name="obligation_unique",
            ),
            models.UniqueConstraint(
                fields=["provider", "duty"],
                condition=Q(service__isnull=True),
                name="obligation_unique_provider_wide",
            ),
            models.CheckConstraint(
                condition=Q(service__isnull=False)
                | Q(technology_notice__isnull=True, ofcom_notice__isnull=True),
                name="obligation_notice_has_service",
            ),
            models.UniqueConstraint(
                fields=["technology_notice", "duty"],
                condition=Q(technology_notice__isnull=False),
                name="obligation_unique_per_technology_notice",
            ),
            models.UniqueConstraint(
                fields=["ofcom_notice", "duty"],
                condition=Q(ofcom_notice__isnull=False),
                name="obligation_unique_per_ofcom_notice",
            ),
            models.CheckConstraint(
                condition=Q(technology_notice__isnull=True) | Q(ofcom_notice__isnull=True),
                name="obligation_at_most_one_notice",
            ),
            models.UniqueConstraint(
                fields=["provider", "external_ref"],
                condition=~Q(external_ref=""),
                name="obligation_external_ref_unique",
            ),
            models.CheckConstraint(
                condition=Q(applicable=True) | ~Q(not_applicable_reason=""),
                name="obligation_na_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(current_cycle__isnull=True, status="", due_date__isnull=True)
                | Q(current_cycle__isnull=False, status__in=CycleStatus.values),
                name="obligation_status_is_its_cycles",
            ),
        ]
        indexes = [
            models.Index(fields=["applicable", "service"]),
            models.Index(fields=["owner", "applicable"]),
            models.Index(fields=["updated_at"]),
            models.Index(fields=["due_date"]),
            # The dashboard's per-service counts, read from the index alone. Its condition is
            # the counted rows' own ("live": applicable, not marked not applicable), so that
            # PostgreSQL has no row to filter out and prefers it to the table.
            models.Index(
                fields=["provider", "service", "status", "due_date"],
                condition=Q(applicable=True) & counted(),
                name="obligation_live_counts",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service or self.provider}: {self.duty.code}"


class ObligationCycle(models.Model):
    """One period of an obligation. A closed cycle is never reopened."""

    # Its index is the unique constraint's, which leads with the obligation.
    obligation = models.ForeignKey(
        Obligation, on_delete=models.PROTECT, related_name="cycles", db_index=False
    )
    period_start = models.DateField()
    due_date = models.DateField(
        null=True,
        blank=True,
        help_text="Empty for continuous duties.",
        validators=[validate_plausible_date],
    )
    status = models.CharField(
        max_length=20, choices=CycleStatus.choices, default=CycleStatus.NOT_STARTED
    )
    trigger = models.CharField(max_length=30, choices=CycleTrigger.choices)
    trigger_note = models.TextField(blank=True)
    status_reason = models.TextField(blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    # When the reminder sweep must next look at this cycle; any change sets it to now, and the
    # sweep works out the real date (healthchecks' next_alert_at). Empty: nothing to watch.
    next_reminder_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["obligation", "-period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["obligation", "period_start"], name="cycle_unique_per_period"
            ),
            models.CheckConstraint(
                condition=Q(status__in=CycleStatus.values), name="cycle_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status=CycleStatus.NOT_APPLICABLE) | ~Q(status_reason=""),
                name="cycle_na_has_reason",
            ),
            # The reminder sweep computes with it: no row can carry a date it cannot add to.
            models.CheckConstraint(
                condition=Q(due_date__isnull=True) | Q(due_date__range=(EARLIEST, LATEST)),
                name="cycle_due_date_plausible",
            ),
        ]
        # Few: the daily sweep rewrites every watched cycle's next_reminder_at, and each
        # index the row is in costs that update a write. Status and due date are searched on
        # the obligation's copy; users (for deletion) only where they are set.
        indexes = [
            models.Index(fields=["next_reminder_at"]),
            models.Index(
                fields=["submitted_by"],
                condition=Q(submitted_by__isnull=False),
                name="cycle_submitted_by",
            ),
            models.Index(
                fields=["reviewer"], condition=Q(reviewer__isnull=False), name="cycle_reviewer"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.obligation} from {self.period_start}"

    @property
    def is_closed(self) -> bool:
        return self.status in CLOSED_STATUSES


class Event(models.Model):
    """Append-only record of every change to an obligation: who, when, why, from where."""

    obligation = models.ForeignKey(Obligation, on_delete=models.PROTECT, related_name="events")
    cycle = models.ForeignKey(
        ObligationCycle, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    from_status = models.CharField(max_length=20, choices=CycleStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=CycleStatus.choices, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    reason = models.TextField(blank=True)
    source = models.CharField(max_length=20, choices=EventSource.choices)
    evidence = models.ForeignKey(
        "Evidence", on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    # The cycle's due date after a cycle opened or its date moved: with to_status, what the
    # register looked like on any past date can be rebuilt from events alone.
    due_date = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["obligation", "at"]),
            models.Index(fields=["at"]),
            models.Index(fields=["cycle", "kind", "at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.actor} at {self.at:%Y-%m-%d %H:%M}"


class EvidenceKind(models.TextChoices):
    FILE = "file", "File"
    LINK = "link", "Link"


def evidence_path(instance: Evidence, filename: str) -> str:
    # The stored name is the content hash: no user-controlled path, and never public.
    return f"evidence/{instance.sha256[:2]}/{instance.sha256}"


class Evidence(models.Model):
    """A file or link that proves a cycle's work. A new version never overwrites the old;
    a purge destroys the file and keeps a tombstone (hash, uploader, purger, date, reason)."""

    cycle = models.ForeignKey(ObligationCycle, on_delete=models.PROTECT, related_name="evidence")
    kind = models.CharField(max_length=10, choices=EvidenceKind.choices)
    title = models.CharField(max_length=200, validators=[validate_single_line])
    file = models.FileField(upload_to=evidence_path, blank=True, max_length=200)
    url = models.URLField(blank=True, max_length=1000)
    original_name = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField()
    expires_on = models.DateField(null=True, blank=True, validators=[validate_plausible_date])
    supersedes = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="superseded_by"
    )
    purged_at = models.DateTimeField(null=True, blank=True)
    purged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    purge_reason = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-uploaded_at"]
        verbose_name_plural = "evidence"
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="file") & ~Q(sha256="") & Q(url=""))
                | (Q(kind="link") & ~Q(url="") & Q(file="")),
                name="evidence_file_or_link",
            ),
            models.CheckConstraint(
                condition=Q(purged_at__isnull=True) | (~Q(purge_reason="") & Q(file="")),
                name="evidence_purge_is_a_tombstone",
            ),
            models.CheckConstraint(
                condition=Q(expires_on__isnull=True) | Q(expires_on__range=(EARLIEST, LATEST)),
                name="evidence_expiry_plausible",
            ),
        ]
        indexes = [
            models.Index(fields=["cycle", "purged_at"]),
            # With the id, the index is in the order the dashboard lists expiring evidence,
            # so PostgreSQL reads the first rows and stops instead of sorting a month's worth.
            models.Index(fields=["expires_on", "id"], name="evidence_expiry"),
        ]

    def __str__(self) -> str:
        return self.title


# --- Reminders ------------------------------------------------------------


class LeadTime(models.Model):
    """An organisation's lead times for one duty, instead of its default."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="lead_times"
    )
    duty = models.ForeignKey(Duty, on_delete=models.CASCADE, related_name="+")
    lead_days = models.JSONField(
        "remind this many days before", default=default_lead_days, validators=[validate_lead_days]
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "duty"], name="lead_time_unique")
        ]

    def __str__(self) -> str:
        return f"{self.duty.code}: {self.lead_days}"


class ReminderKind(models.TextChoices):
    DUE_SOON = "due_soon", "Due soon"
    OVERDUE = "overdue", "Overdue: escalation"
    EVIDENCE_EXPIRING = "evidence_expiring", "Evidence expiring"
    REVIEW_REQUESTED = "review_requested", "Waiting for review"


class ReminderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "E-mailed"
    IN_APP = "in_app", "In the admin only (no e-mail address)"
    CANCELLED = "cancelled", "Not sent: no longer relevant when it came to be sent"


class Reminder(models.Model):
    """The outbox: one row per reminder owed, written pending in the transaction that decides
    it, then marked sent. The unique constraint is what makes a second run, a retry or a
    second worker send nothing twice; the rows are also each user's notifications."""

    # Both foreign keys are indexed as the first column of a wider index below.
    cycle = models.ForeignKey(
        ObligationCycle, on_delete=models.PROTECT, related_name="reminders", db_index=False
    )
    kind = models.CharField(max_length=20, choices=ReminderKind.choices)
    # Which reminder of its kind: the lead in days, the week of escalation, the evidence id,
    # or the submission event's id.
    step = models.PositiveBigIntegerField(default=0)
    deadline = models.DateField(help_text="The date the reminder is about.")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="reminders",
        db_index=False,
    )
    reason = models.TextField()
    status = models.CharField(
        max_length=10, choices=ReminderStatus.choices, default=ReminderStatus.PENDING
    )
    created_at = models.DateTimeField()
    # A delivery run claims pending rows by a conditional update; a run that died leaves its
    # claim to lapse, and the next run takes the rows over.
    claim = models.CharField(max_length=32, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was sent, or settled without an e-mail."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["cycle", "kind", "step", "deadline", "recipient"],
                name="reminder_once",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=ReminderKind.values), name="reminder_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=ReminderStatus.PENDING) | Q(sent_at__isnull=False),
                name="reminder_sent_has_time",
            ),
        ]
        # Delivery searches pending rows alone; once sent, a row leaves both partial
        # indexes, so the sweep's insert and its mark-sent each write fewer index entries.
        indexes = [
            models.Index(fields=["recipient", "created_at"]),
            models.Index(
                fields=["claimed_at"],
                condition=Q(status=ReminderStatus.PENDING),
                name="reminder_pending_claimed",
            ),
            models.Index(
                fields=["claim"],
                condition=Q(status=ReminderStatus.PENDING),
                name="reminder_pending_claim",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.recipient} about {self.deadline}"


# --- Risk assessments and Ofcom's Codes measures ---------------------------


class CatalogueEntry(models.Model):
    """What every catalogue-loaded vocabulary row carries: a code, its source, and whether the
    fact was confirmed; retired, never deleted."""

    code = models.CharField(max_length=60, unique=True)
    source_url = models.URLField(max_length=300)
    verified = models.BooleanField(default=True)
    unverified_note = models.TextField(blank=True)
    catalogue_version = models.ForeignKey(
        CatalogueVersion, on_delete=models.PROTECT, related_name="+"
    )
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["code"]


class HarmKind(CatalogueEntry):
    """A kind of harm a risk assessment rates: priority illegal content (Ofcom's kinds), or
    content harmful to children (s.61 primary priority, s.62 priority, non-designated)."""

    label = models.CharField(max_length=200)
    family = models.CharField(max_length=20, help_text="illegal, children_ppc, children_pc, ...")
    group = models.CharField(
        max_length=60, help_text="Parts of one kind share a group (CSEA is rated in parts)."
    )
    assessments = models.JSONField(help_text="The kinds of assessment that rate it.")
    effective_from = models.DateField()
    effective_until = models.DateField(null=True, blank=True)
    assess_by = models.DateField(
        null=True, blank=True, help_text="When a service must first have assessed it."
    )
    source = models.CharField(max_length=300, blank=True)

    class Meta(CatalogueEntry.Meta):
        pass

    def __str__(self) -> str:
        return self.label


class RiskFactor(CatalogueEntry):
    """A risk factor from Ofcom's Risk Profiles (a service type, user base, functionality or
    business model) that an assessment can record the service as having."""

    label = models.CharField(max_length=200)
    group = models.CharField(max_length=60)
    assessments = models.JSONField()
    brought_in = models.JSONField(
        default=dict,
        blank=True,
        help_text="Features that pre-select it on some harm kinds' rows, and what those rows "
        "must then record (catalogue rule).",
    )

    class Meta(CatalogueEntry.Meta):
        ordering = ["group", "label"]

    def __str__(self) -> str:
        return self.label


class CodeMeasure(CatalogueEntry):
    """A measure of one of Ofcom's Codes of Practice (ICU, ICS, PCU, PCS). Taking the measures
    a Code recommends is the route to being treated as complying (s.49(1))."""

    code_family = models.CharField(max_length=3)
    area = models.CharField(max_length=100)
    summary = models.TextField()
    duties = models.ManyToManyField(Duty, related_name="measures")
    recommended_for = models.JSONField()
    status = models.CharField(max_length=10, help_text="in_force, laid or proposed")
    issued_on = models.DateField(
        null=True, blank=True, help_text="When Ofcom issued the code (or amendment) holding it."
    )
    effective_from = models.DateField(
        null=True,
        blank=True,
        help_text="In force from: 21 days after it was issued (s.43(4)(b)); empty until issued.",
    )
    basis = models.CharField(max_length=1, help_text="O: Ofcom page; S: secondary; U: unconfirmed")
    changed_in = models.ForeignKey(
        CatalogueVersion,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The catalogue version that last changed what it asks or whom it is for.",
    )

    class Meta(CatalogueEntry.Meta):
        indexes = [models.Index(fields=["code_family"])]

    def __str__(self) -> str:
        return f"{self.code}: {self.summary}"


class AssessmentKind(models.TextChoices):
    ILLEGAL_U2U = "illegal_u2u", "Illegal content (user-to-user, s.9)"
    ILLEGAL_SEARCH = "illegal_search", "Illegal content (search, s.26)"
    CHILDREN_U2U = "children_u2u", "Children's (user-to-user, s.11)"
    CHILDREN_SEARCH = "children_search", "Children's (search, s.28)"


class RiskAssessment(models.Model):
    """A risk assessment, as Ofcom's four steps lay it out, for the obligation cycle it
    evidences: a rated row per harm kind (and age group, for children), then four eyes."""

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="assessments")
    kind = models.CharField(max_length=20, choices=AssessmentKind.choices)
    cycle = models.OneToOneField(
        ObligationCycle, on_delete=models.PROTECT, related_name="assessment"
    )
    assessor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who approved the cycle it evidences (never the assessor).",
    )
    started_on = models.DateField()
    approved_at = models.DateTimeField(null=True, blank=True)
    understand_notes = models.TextField(
        "1. understand the kinds of harm",
        blank=True,
        help_text="The harms considered and the evidence drawn on (user reports, moderation "
        "data, Ofcom's Register of Risks and Risk Profiles).",
    )
    review_notes = models.TextField(
        "4. report, review and update",
        blank=True,
        help_text="Who the findings were reported to, and when and why it will be reviewed.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["-started_on", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=AssessmentKind.values), name="assessment_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(approver__isnull=True) | ~Q(approver=F("assessor")),
                name="assessment_four_eyes",
                violation_error_message="The approver cannot be the assessor.",
            ),
        ]
        indexes = [models.Index(fields=["service", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} risk assessment of {self.service} ({self.started_on})"


class AssessmentEntry(models.Model):
    """One harm kind (for one age group, for children): how likely and how severe on this
    service, the resulting level and why, the risk factors it has, and the evidence."""

    assessment = models.ForeignKey(RiskAssessment, on_delete=models.PROTECT, related_name="entries")
    harm_kind = models.ForeignKey(HarmKind, on_delete=models.PROTECT, related_name="+")
    age_group = models.CharField(max_length=10, blank=True)
    likelihood = models.CharField(max_length=10, blank=True)
    impact = models.CharField(max_length=10, blank=True)
    level = models.CharField(max_length=10, blank=True, help_text="From likelihood and impact.")
    rationale = models.TextField(blank=True)
    private_channels = models.TextField(
        "private and encrypted channels",
        blank=True,
        help_text="How the risk in private and end-to-end encrypted channels was assessed, "
        "where a risk factor's catalogue rule requires it (e.g. CSEA on an end-to-end "
        "encrypted service).",
    )
    risk_factors = models.ManyToManyField(RiskFactor, blank=True, related_name="+")
    evidence = models.ManyToManyField(Evidence, blank=True, related_name="assessment_entries")
    evidence_notes = models.TextField(blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    updated_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(m2m_fields=[risk_factors])

    class Meta:
        ordering = ["assessment", "harm_kind__family", "harm_kind__label", "age_group"]
        verbose_name_plural = "assessment entries"
        constraints = [
            models.UniqueConstraint(
                fields=["assessment", "harm_kind", "age_group"], name="assessment_entry_unique"
            ),
            models.CheckConstraint(
                condition=Q(level="") | (~Q(likelihood="") & ~Q(impact="")),
                name="assessment_level_from_likelihood_and_impact",
            ),
        ]

    def __str__(self) -> str:
        age = f", {self.age_group}" if self.age_group else ""
        return f"{self.harm_kind}{age}: {self.level or 'not rated'}"

    @property
    def complete(self) -> bool:
        return bool(self.level and self.rationale.strip())


class MeasureDecisionKind(models.TextChoices):
    ADOPTED = "adopted", "Adopted"
    ALTERNATIVE = "alternative", "Alternative measure"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class MeasureDecision(models.Model):
    """The team's decision on one Codes measure for one service: adopted (with evidence), an
    alternative measure (how it meets the duty, recorded as s.23(4) and s.34(4) require), or
    not applicable (why). A change is a new version in the history, never an overwrite."""

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="measure_decisions")
    measure = models.ForeignKey(CodeMeasure, on_delete=models.PROTECT, related_name="decisions")
    decision = models.CharField(max_length=20, choices=MeasureDecisionKind.choices)
    detail = models.TextField(
        help_text="How it is done (adopted), how the alternative meets the duty, or why the "
        "measure does not apply."
    )
    evidence = models.ManyToManyField(Evidence, blank=True, related_name="measure_decisions")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField()
    # The version of the measure it decided: when the measure changes, it must be decided again.
    decided_against = models.ForeignKey(
        CatalogueVersion, on_delete=models.PROTECT, related_name="+"
    )
    history = HistoricalRecords(m2m_fields=[evidence])

    class Meta:
        ordering = ["service", "measure__code"]
        constraints = [
            models.UniqueConstraint(fields=["service", "measure"], name="measure_decision_unique"),
            models.CheckConstraint(
                condition=Q(decision__in=MeasureDecisionKind.values),
                name="measure_decision_valid",
            ),
            models.CheckConstraint(
                condition=~Q(detail=""), name="measure_decision_says_how_or_why"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.measure.code} for {self.service}: {self.get_decision_display()}"


# --- API tokens and calendar feeds -----------------------------------------


class ApiToken(models.Model):
    """A key for scripts. Only its SHA-256 is stored: the key is shown once, when made."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(
        max_length=100,
        help_text="What it is for, e.g. 'nightly export'.",
        validators=[validate_single_line],
    )
    prefix = models.CharField(
        max_length=8, help_text="The key's first characters, to tell it apart."
    )
    key_hash = models.CharField(max_length=64, unique=True)
    read_only = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, validators=[validate_plausible_date])
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class CalendarFeed(models.Model):
    """A secret iCalendar address for one user's deadlines or one service's. Only the secret's
    hash is stored; revoking it ends the address for good."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feeds"
    )
    service = models.ForeignKey(
        Service,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="calendar_feeds",
        help_text="Empty: the user's own deadlines.",
    )
    secret_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Deadlines of {self.service or self.user}"


# --- Dashboard counts ---------------------------------------------------------


class ComplianceCount(models.Model):
    """How many applicable obligations of one service (or one provider's provider-wide ones)
    were met at the end of a past day, read from the events. Events are append-only and
    dated when written, so a past day's count never changes: the dashboard's 12-month trend
    reads these rows instead of replaying the whole record on every load (Zulip's analytics
    keeps RealmCount the same way)."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="+")
    service = models.ForeignKey(
        Service, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    day = models.DateField()
    met = models.PositiveIntegerField()
    applicable = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service", "day"],
                condition=Q(service__isnull=False),
                name="compliance_count_unique_per_service",
            ),
            models.UniqueConstraint(
                fields=["provider", "day"],
                condition=Q(service__isnull=True),
                name="compliance_count_unique_provider_wide",
            ),
            models.CheckConstraint(
                condition=Q(met__lte=F("applicable")), name="compliance_count_met_within"
            ),
        ]
        indexes = [models.Index(fields=["day", "provider"])]

    def __str__(self) -> str:
        return f"{self.service or self.provider} on {self.day}: {self.met}/{self.applicable} met"


class ComplianceFill(models.Model):
    """A day for which every ComplianceCount has been written (so no rows means zero)."""

    day = models.DateField(unique=True)
    filled_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Counts for {self.day}"


# --- Access log -------------------------------------------------------------------


class AccessAction(models.TextChoices):
    SIGN_IN = "sign_in", "Signed in"
    SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
    SIGN_IN_THROTTLED = "sign_in_throttled", "Sign-in refused: too many failures"
    TOKEN_FAILED = "token_failed", "API token refused"
    EXPORT = "export", "Register exported"
    AUDIT_PACK = "audit_pack", "Audit pack downloaded"
    EVIDENCE_DOWNLOAD = "evidence_download", "Evidence downloaded"


class AccessLog(models.Model):
    """Append-only record of sign-ins and of data leaving the tracker (exports, audit packs,
    evidence files). Written only by `services.record_access`; never changed or deleted (on
    PostgreSQL a trigger refuses it)."""

    at = models.DateTimeField()
    action = models.CharField(max_length=20, choices=AccessAction.choices)
    # PROTECT: a user or organisation with a record of access is deactivated, not deleted.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # The name as typed, so that failures for unknown names are on record too.
    username = models.CharField(max_length=150, blank=True)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    description = models.CharField(max_length=500, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "access log entry"
        verbose_name_plural = "access log"
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=AccessAction.values), name="access_log_action_valid"
            )
        ]
        indexes = [
            models.Index(fields=["organisation", "at"]),
            models.Index(fields=["user", "at"]),
            # The sign-in throttle counts recent failures from one address.
            models.Index(fields=["action", "ip_address", "at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.username or '-'} at {self.at:%Y-%m-%d %H:%M}"
