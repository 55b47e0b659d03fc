"""Risk assessments (one entry per kind of harm) and decisions on Ofcom's Codes measures."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from obligations.dates import display


class AssessmentKind(models.TextChoices):
    ILLEGAL_U2U = "illegal_u2u", "Illegal content (user-to-user, s.9)"
    ILLEGAL_SEARCH = "illegal_search", "Illegal content (search, s.26)"
    CHILDREN_U2U = "children_u2u", "Children's (user-to-user, s.11)"
    CHILDREN_SEARCH = "children_search", "Children's (search, s.28)"


class RiskAssessment(models.Model):
    """A risk assessment, as Ofcom's four steps lay it out, for the obligation cycle it
    evidences: a rated row per harm kind (and age group, for children), then four eyes."""

    service = models.ForeignKey(
        "obligations.Service", on_delete=models.PROTECT, related_name="assessments"
    )
    kind = models.CharField(max_length=20, choices=AssessmentKind.choices)
    cycle = models.OneToOneField(
        "obligations.ObligationCycle", on_delete=models.PROTECT, related_name="assessment"
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
        return (
            f"{self.get_kind_display()} risk assessment of {self.service} "
            f"(started {display(self.started_on)})"
        )


class AssessmentEntry(models.Model):
    """One harm kind (for one age group, for children): how likely and how severe on this
    service, the resulting level and why, the risk factors it has, and the evidence."""

    assessment = models.ForeignKey(RiskAssessment, on_delete=models.PROTECT, related_name="entries")
    harm_kind = models.ForeignKey(
        "obligations.HarmKind", on_delete=models.PROTECT, related_name="+"
    )
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
    risk_factors = models.ManyToManyField("obligations.RiskFactor", blank=True, related_name="+")
    evidence = models.ManyToManyField(
        "obligations.Evidence", blank=True, related_name="assessment_entries"
    )
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

    service = models.ForeignKey(
        "obligations.Service", on_delete=models.PROTECT, related_name="measure_decisions"
    )
    measure = models.ForeignKey(
        "obligations.CodeMeasure", on_delete=models.PROTECT, related_name="decisions"
    )
    decision = models.CharField(max_length=20, choices=MeasureDecisionKind.choices)
    detail = models.TextField(
        help_text="How it is done (adopted), how the alternative meets the duty, or why the "
        "measure does not apply."
    )
    evidence = models.ManyToManyField(
        "obligations.Evidence", blank=True, related_name="measure_decisions"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField()
    # The version of the measure it decided: when the measure changes, it must be decided again.
    decided_against = models.ForeignKey(
        "obligations.CatalogueVersion", on_delete=models.PROTECT, related_name="+"
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
