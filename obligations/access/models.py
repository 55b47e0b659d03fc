"""Organisations, their members and roles, API tokens, calendar feeds and the access log."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from obligations.dates import validate_plausible_date
from obligations.inputs import validate_single_line


class Role(models.TextChoices):
    ADMIN = "admin", "Organisation admin"
    COMPLIANCE = "compliance", "Compliance"
    MANAGER = "manager", "Manager"
    AUDITOR = "auditor", "Auditor"


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
    # Set once, when made: single sign-on keeps the memberships it gave in step with the
    # identity provider's groups (access/sso.py) and never touches ones an admin gave.
    via_sso = models.BooleanField(
        "from single sign-on",
        default=False,
        editable=False,
        help_text="Given by the identity provider's groups; single sign-on changes and ends it.",
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
    # Why, where the actor alone does not say (single sign-on acts as the system user).
    description = models.CharField(max_length=300, blank=True)

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


class SsoGroupRole(models.Model):
    """Which role in an organisation a group of the identity provider gives its members when
    they sign in through single sign-on (access/sso.py)."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="sso_group_roles"
    )
    group = models.CharField(
        max_length=200,
        validators=[validate_single_line],
        help_text="The group's name exactly as the identity provider sends it.",
    )
    role = models.CharField(max_length=20, choices=Role.choices)

    class Meta:
        ordering = ["organisation", "group"]
        verbose_name = "single sign-on group"
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "group"],
                name="sso_group_role_unique",
                violation_error_message="This group already gives a role here.",
            ),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="sso_group_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.group} → {self.get_role_display()} in {self.organisation}"


class SsoIdentity(models.Model):
    """The identity provider's account (its issuer and the `sub` it gives) a user signs in as.
    Never an e-mail address: an account there may change its address to someone else's."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sso_identities"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "single sign-on identity"
        verbose_name_plural = "single sign-on identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_unique")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


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
        "obligations.Service",
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


class AccessAction(models.TextChoices):
    SIGN_IN = "sign_in", "Signed in"
    SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
    SIGN_IN_THROTTLED = "sign_in_throttled", "Sign-in refused: too many failures"
    TOKEN_FAILED = "token_failed", "API token refused"
    EXPORT = "export", "Register exported"
    AUDIT_PACK = "audit_pack", "Audit pack downloaded"
    EVIDENCE_DOWNLOAD = "evidence_download", "Evidence downloaded"
    # `user` lifted it; `username` and `ip_address` say for which name and address
    # (signin.lift_lockout): the throttle counts only failures after it.
    LOCKOUT_LIFTED = "lockout_lifted", "Sign-in lockout lifted"
    # `username` is the address typed, whether or not an account has it (passwords.py).
    PASSWORD_RESET_ASKED = "password_reset_asked", "Password reset asked for"
    PASSWORD_CHANGED = "password_changed", "Password set through a reset link"
    TWO_FACTOR_ENROLLED = "two_factor_enrolled", "Two-factor device enrolled"
    # `user` removed it (an operator: a lost phone); `username` is whose it was.
    TWO_FACTOR_REMOVED = "two_factor_removed", "Two-factor device removed"
    ACCESS_LOG_PURGED = "access_log_purged", "Old access log rows removed"


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
