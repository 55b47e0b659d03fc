"""Daily counts the dashboard's trend reads, filled by the nightly task."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q


class ComplianceCount(models.Model):
    """How many applicable obligations of one service (or one provider's provider-wide ones)
    were met at the end of a past day, read from the events. Events are append-only and
    dated when written, so a past day's count never changes: the dashboard's 12-month trend
    reads these rows instead of replaying the whole record on every load (Zulip's analytics
    keeps RealmCount the same way)."""

    provider = models.ForeignKey("obligations.Provider", on_delete=models.CASCADE, related_name="+")
    service = models.ForeignKey(
        "obligations.Service", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
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
