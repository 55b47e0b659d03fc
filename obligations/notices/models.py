"""Technology Notices under s.121 and Ofcom's other notices, with their event history."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from obligations.dates import add_months, display, validate_plausible_date
from obligations.inputs import amount_field, validate_single_line
from obligations.register.states import EventSource


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
        "obligations.Service", on_delete=models.PROTECT, related_name="technology_notices"
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

    service = models.ForeignKey(
        "obligations.Service", on_delete=models.PROTECT, related_name="ofcom_notices"
    )
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
