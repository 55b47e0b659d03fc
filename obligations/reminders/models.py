"""Reminder lead times and the outbox of reminders owed."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from obligations.access.models import default_lead_days, validate_lead_days
from obligations.dates import display
from obligations.inputs import validate_single_line


class LeadTime(models.Model):
    """An organisation's lead times for one duty, instead of its default."""

    organisation = models.ForeignKey(
        "obligations.Organisation", on_delete=models.CASCADE, related_name="lead_times"
    )
    duty = models.ForeignKey("obligations.Duty", on_delete=models.CASCADE, related_name="+")
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
        "obligations.ObligationCycle",
        on_delete=models.PROTECT,
        related_name="reminders",
        db_index=False,
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
        return f"{self.get_kind_display()} to {self.recipient} about {display(self.deadline)}"


class WebhookKind(models.TextChoices):
    SLACK = "slack", "Slack"
    TEAMS = "teams", "Microsoft Teams"
    SIGNED = "signed", "Signed JSON webhook"


class WebhookEndpoint(models.Model):
    """A team channel an organisation's reminders are also posted to. Its address is stored
    encrypted (obligations/reminders/sealed.py) and never shown again; so is a signed
    webhook's signing secret, shown once when made."""

    organisation = models.ForeignKey(
        "obligations.Organisation", on_delete=models.PROTECT, related_name="webhooks"
    )
    kind = models.CharField(max_length=10, choices=WebhookKind.choices)
    name = models.CharField(
        max_length=100,
        help_text="Which channel, e.g. 'Trust & Safety in Slack'.",
        validators=[validate_single_line],
    )
    digests = models.BooleanField(
        "deadlines coming up", default=True, help_text="Due soon, and evidence expiring."
    )
    escalations = models.BooleanField(
        "escalations", default=True, help_text="Overdue work, weekly until it is met."
    )
    notice_deadlines = models.BooleanField(
        "Ofcom notice deadlines",
        default=True,
        help_text="Deadlines set by an Ofcom notice, coming up.",
    )
    active = models.BooleanField(default=True)
    url_sealed = models.TextField(editable=False)
    url_hint = models.CharField("address", max_length=300, editable=False)
    secret_sealed = models.TextField(editable=False, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        editable=False,
    )
    changed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["organisation", "name"]
        verbose_name = "team chat webhook"
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=WebhookKind.values), name="webhook_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class WebhookStatus(models.TextChoices):
    # The same value as a pending reminder's: one claim (outbox.Claim) serves both.
    PENDING = ReminderStatus.PENDING.value, "Pending"
    SENT = "sent", "Delivered"
    FAILED = "failed", "Failed: given up"
    CANCELLED = "cancelled", "Not sent: no longer relevant, or the webhook was switched off"


TEST_MESSAGE = "test"


class WebhookDelivery(models.Model):
    """The outbox's second channel: one row per reminder owed to a team channel, keyed as a
    reminder is (less its recipient) plus the endpoint, so a second sweep or worker posts
    nothing twice; claimed, renewed and settled as reminders are. A test message has no
    cycle (NULLs are distinct: each is its own row)."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries", db_index=False
    )
    cycle = models.ForeignKey(
        "obligations.ObligationCycle",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    kind = models.CharField(
        max_length=20, choices=[*ReminderKind.choices, (TEST_MESSAGE, "Test message")]
    )
    step = models.PositiveBigIntegerField(default=0)
    deadline = models.DateField()
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        help_text="Who asked for a test message.",
    )
    status = models.CharField(
        max_length=10, choices=WebhookStatus.choices, default=WebhookStatus.PENDING
    )
    created_at = models.DateTimeField()
    claim = models.CharField(max_length=32, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    retry_at = models.DateTimeField(
        null=True, blank=True, help_text="Not tried again before this (backoff, Retry-After)."
    )
    last_error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "cycle", "kind", "step", "deadline"], name="webhook_once"
            ),
            models.CheckConstraint(
                condition=Q(status__in=WebhookStatus.values), name="webhook_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=WebhookStatus.PENDING) | Q(sent_at__isnull=False),
                name="webhook_settled_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["claimed_at"],
                condition=Q(status=WebhookStatus.PENDING),
                name="webhook_pending_claimed",
            ),
            models.Index(
                fields=["claim"],
                condition=Q(status=WebhookStatus.PENDING),
                name="webhook_pending_claim",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.endpoint.name} about {display(self.deadline)}"
