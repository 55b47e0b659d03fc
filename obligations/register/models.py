"""The register: obligations, their cycles, events and evidence."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from obligations.dates import (
    EARLIEST,
    LATEST,
    display,
    display_moment,
    validate_plausible_date,
)
from obligations.inputs import validate_single_line
from obligations.register.states import (
    CLOSED_STATUSES,
    CycleStatus,
    CycleTrigger,
    EventKind,
    EventSource,
    counted,
)


class Obligation(models.Model):
    """A duty as it applies to one service.

    Never deleted: when a duty stops applying the obligation is marked not
    applicable with the reason, and its history stays.
    """

    provider = models.ForeignKey(
        "obligations.Provider", on_delete=models.PROTECT, related_name="obligations"
    )
    # Empty for a provider-wide obligation (a duty with scope "provider", such as fees).
    service = models.ForeignKey(
        "obligations.Service",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="obligations",
    )
    # What is owed: a catalogue duty. When an Ofcom notice is the source, the duty names the
    # kind of requirement (its section and summary) and the notice sets the dates.
    duty = models.ForeignKey(
        "obligations.Duty", on_delete=models.PROTECT, related_name="obligations"
    )
    technology_notice = models.ForeignKey(
        "obligations.TechnologyNotice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="obligations",
    )
    ofcom_notice = models.ForeignKey(
        "obligations.OfcomNotice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="obligations",
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
    applies_since_why = models.TextField(blank=True)
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
            # The dashboard's count of live obligations whose duty is not in force yet: it
            # reads the few such duties' entries, where it scanned the table (216 ms at 1M).
            models.Index(
                fields=["duty", "provider"],
                condition=Q(applicable=True) & counted(),
                name="obligation_live_duties",
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
        return f"{self.obligation} from {display(self.period_start)}"

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
        return f"{self.get_kind_display()} by {self.actor} at {display_moment(self.at)}"


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
