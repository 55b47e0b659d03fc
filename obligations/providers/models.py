"""Providers, their revenue periods, their services and significant changes."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from obligations.dates import validate_plausible_date
from obligations.inputs import amount_field, validate_single_line


class RevenueBasis(models.TextChoices):
    AUDITED = "audited", "Audited accounts"
    MANAGEMENT_ESTIMATE = "management_estimate", "Management estimate"
    OFCOM_ESTIMATE = "ofcom_estimate", "Ofcom's estimate"
    OFCOM_DETERMINATION = "ofcom_determination", "Ofcom's determination"


class RevenueKind(models.TextChoices):
    ACCOUNTING = "accounting", "Accounting period (penalty cap, and fees when a calendar year)"
    FEES = "fees", "Fees qualifying period only (s.83), not an accounting period"


class ChangeStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    MADE = "made", "Made"
    CANCELLED = "cancelled", "Cancelled"


class Provider(models.Model):
    """The legal entity that provides services; its revenue sets the penalty cap."""

    organisation = models.ForeignKey(
        "obligations.Organisation", on_delete=models.PROTECT, related_name="providers"
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
        "obligations.RegisterCategory",
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
    features = models.ManyToManyField("obligations.Feature", blank=True, related_name="services")
    launch_date = models.DateField(
        "UK launch",
        null=True,
        blank=True,
        validators=[validate_plausible_date],
        help_text="The first day the service is in scope. Empty: in scope since before the "
        "duties began.",
    )
    exemption = models.ForeignKey(
        "obligations.Exemption",
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
