"""What the API shows and accepts. Reads are plain; writes only validate input, and the
domain writes (each domain's `actions`) do the work, exactly as for the admin."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.urls import reverse
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers

from obligations.access.models import Organisation
from obligations.access.selectors import active_memberships_of, scope
from obligations.assessments.models import AssessmentEntry, MeasureDecision, RiskAssessment
from obligations.catalogue.commencement import InForce, in_force
from obligations.catalogue.models import Duty, Exemption, Feature, RegisterCategory
from obligations.catalogue.selectors import duty_entry
from obligations.dates import london_today, validate_plausible_date
from obligations.exports.tables import REGISTER_VALUES, register_row
from obligations.inputs import validate_single_line
from obligations.notices.models import OfcomNotice, TechnologyNotice
from obligations.providers.models import SERVICE_PROFILE_FIELDS, Provider, RevenuePeriod, Service
from obligations.providers.selectors import REVENUE_HISTORY, exposure_reasons, provider_penalty_cap
from obligations.register.models import Event, Evidence, EvidenceKind, ObligationCycle
from obligations.register.states import CycleStatus
from obligations.reminders.models import Reminder


class CycleStatusField(serializers.ChoiceField):
    """A cycle's status (blank where an event changed none)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=CycleStatus.choices, **kwargs)


class CycleStatusScheme(OpenApiSerializerFieldExtension):
    """One `CycleStatusEnum` in the schema wherever a status appears, not one per field name."""

    target_class = CycleStatusField

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        enum = {
            "type": "string",
            "enum": list(CycleStatus.values),
            "description": "\n".join(f"* `{v}` - {label}" for v, label in CycleStatus.choices),
        }
        component = ResolvedComponent(
            name="CycleStatusEnum", type=ResolvedComponent.SCHEMA, object="CycleStatus", schema=enum
        )
        auto_schema.registry.register_on_missing(component)
        if self.target.allow_blank:
            return {"oneOf": [component.ref, {"type": "string", "enum": [""]}]}
        return dict(component.ref)


class OrganisationSerializer(serializers.ModelSerializer[Organisation]):
    class Meta:
        model = Organisation
        fields = ["id", "name", "reminder_lead_days", "created_at"]


class RevenuePeriodSerializer(serializers.ModelSerializer[RevenuePeriod]):
    class Meta:
        model = RevenuePeriod
        exclude = ["provider"]


class ProviderSerializer(serializers.ModelSerializer[Provider]):
    penalty_cap = serializers.SerializerMethodField(
        help_text="Sch.13 para 4: the greater of £18m and 10% of qualifying worldwide revenue."
    )
    exposure = serializers.SerializerMethodField()
    # The viewset's queryset (selectors.providers_with_exposure) prefetches them there.
    revenue_periods = RevenuePeriodSerializer(source=REVENUE_HISTORY, many=True, read_only=True)

    class Meta:
        model = Provider
        fields = [
            "id",
            "organisation",
            "name",
            "no_accounting_period",
            "revenue_periods",
            "penalty_cap",
            "exposure",
        ]

    def get_penalty_cap(self, provider: Provider) -> dict[str, Any]:
        cap = provider_penalty_cap(provider, self.context["parameters"])
        return {
            "amount_gbp": str(cap.amount) if cap.amount is not None else None,
            "rule": cap.rule,
            "explanation": cap.explanation,
            "missing": cap.missing,
        }

    def get_exposure(self, provider: Provider) -> dict[str, Any]:
        reasons = exposure_reasons(provider)
        return {"at_risk": bool(reasons), "reasons": reasons}


class IdRelatedField(serializers.PrimaryKeyRelatedField):
    """A related row by id; JSON's 1e400 (infinity once parsed) is not one, not an overflow."""

    def to_internal_value(self, data: Any) -> Any:
        try:
            return super().to_internal_value(data)
        except OverflowError:
            self.fail("incorrect_type", data_type=type(data).__name__)


class ServiceSerializer(serializers.ModelSerializer[Service]):
    serializer_related_field = IdRelatedField
    categories = serializers.SlugRelatedField(
        slug_field="code", many=True, queryset=RegisterCategory.objects.all(), required=False
    )
    features = serializers.SlugRelatedField(
        slug_field="code", many=True, queryset=Feature.objects.all(), required=False
    )
    exemption = serializers.SlugRelatedField(
        slug_field="code", queryset=Exemption.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Service
        fields = ["id", *SERVICE_PROFILE_FIELDS, "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and "provider" in self.fields:
            # Only the caller's own providers can be chosen (another organisation's is invalid).
            field = self.fields["provider"]
            field.queryset = scope(Provider.objects.all(), request.user)  # type: ignore[attr-defined]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        merged = {
            name: attrs.get(name, getattr(self.instance, name, False))
            for name in ("user_to_user", "search", "provider_pornography")
        }
        if not any(merged.values()):
            raise serializers.ValidationError(
                "A service is user-to-user, search, or publishes provider pornographic content "
                "(or more than one of these)."
            )
        return attrs


class DutySerializer(serializers.ModelSerializer[Duty]):
    in_force = serializers.SerializerMethodField(
        help_text="In force today: true, false, or null when it is not known to be commenced."
    )
    in_force_text = serializers.SerializerMethodField(
        help_text="In words: since when and by which instrument, or why not."
    )

    class Meta:
        model = Duty
        exclude = ["catalogue_version"]

    def _state(self, duty: Duty) -> InForce:
        return in_force(duty_entry(duty), london_today())

    def get_in_force(self, duty: Duty) -> bool | None:
        return self._state(duty).value

    def get_in_force_text(self, duty: Duty) -> str:
        return self._state(duty).text


# Ids a script needs to follow links, besides the register's columns.
API_EXTRA_VALUES = {
    "provider_id": "provider_id",
    "service_id": "service_id",
    "duty_id": "duty_id",
    "owner_id": "r_owner_id",
    "cycle_id": "r_cycle",
}
API_REGISTER_VALUES = (*REGISTER_VALUES, *API_EXTRA_VALUES.values())


class RegisterSerializer(serializers.Serializer[Any]):
    """One obligation as a row of the register (the same columns as the exports)."""

    # Declared for the schema; the row itself comes from `exports.register_row`.
    id = serializers.IntegerField(read_only=True)
    organisation = serializers.CharField(read_only=True)
    provider = serializers.CharField(read_only=True)
    service = serializers.CharField(read_only=True, help_text="Empty for provider-wide duties.")
    duty_code = serializers.CharField(read_only=True)
    section = serializers.CharField(read_only=True)
    title = serializers.CharField(read_only=True)
    applicable = serializers.BooleanField(read_only=True)
    in_force = serializers.BooleanField(
        read_only=True,
        allow_null=True,
        help_text="The duty is in force today; if not, it has no due date. Null: not known "
        "(an unverified duty with no in-force day).",
    )
    in_force_from = serializers.DateField(
        read_only=True, allow_null=True, help_text="The day it is (or will be) in force."
    )
    status = serializers.ChoiceField(choices=CycleStatus.choices, allow_blank=True, read_only=True)
    owner = serializers.CharField(read_only=True, help_text="Username; empty when unowned.")
    due = serializers.DateField(read_only=True, allow_null=True)
    overdue = serializers.BooleanField(read_only=True)
    evidence_count = serializers.IntegerField(read_only=True)
    last_change = serializers.DateTimeField(read_only=True, allow_null=True)
    provider_id = serializers.IntegerField(read_only=True)
    service_id = serializers.IntegerField(read_only=True, allow_null=True)
    duty_id = serializers.IntegerField(read_only=True)
    owner_id = serializers.IntegerField(read_only=True, allow_null=True)
    cycle_id = serializers.IntegerField(read_only=True, allow_null=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        # `instance` is a dict from `.values(*API_REGISTER_VALUES)`: one query for a page.
        row = register_row(instance, self.context["today"])
        row.update({key: instance[name] for key, name in API_EXTRA_VALUES.items()})
        return row


class CycleSerializer(serializers.ModelSerializer[ObligationCycle]):
    class Meta:
        model = ObligationCycle
        fields = [
            "id",
            "period_start",
            "due_date",
            "status",
            "trigger",
            "trigger_note",
            "status_reason",
            "submitted_by",
            "reviewer",
            "closed_at",
        ]


class ChangeSerializer(serializers.Serializer[Any]):
    field = serializers.CharField()
    old = serializers.JSONField()
    new = serializers.JSONField()


class HistorySerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField()
    by = serializers.CharField(allow_null=True)
    type = serializers.CharField()
    reason = serializers.CharField()
    changes = ChangeSerializer(many=True)


class EventSerializer(serializers.ModelSerializer[Event]):
    actor = serializers.CharField(source="actor.get_username", read_only=True)
    from_status = CycleStatusField(allow_blank=True, read_only=True)
    to_status = CycleStatusField(allow_blank=True, read_only=True)

    class Meta:
        model = Event
        fields = [
            "id",
            "obligation",
            "cycle",
            "kind",
            "from_status",
            "to_status",
            "due_date",
            "actor",
            "at",
            "reason",
            "source",
            "evidence",
        ]


class EvidenceSerializer(serializers.ModelSerializer[Evidence]):
    uploaded_by = serializers.CharField(source="uploaded_by.get_username", read_only=True)
    obligation = serializers.IntegerField(source="cycle.obligation_id", read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Evidence
        fields = [
            "id",
            "obligation",
            "cycle",
            "kind",
            "title",
            "url",
            "original_name",
            "content_type",
            "size",
            "sha256",
            "uploaded_by",
            "uploaded_at",
            "expires_on",
            "supersedes",
            "purged_at",
            "purge_reason",
            "download_url",
        ]

    def get_download_url(self, evidence: Evidence) -> str | None:
        if evidence.kind != EvidenceKind.FILE or evidence.purged_at:
            return None
        request = self.context["request"]
        return request.build_absolute_uri(reverse("api:evidence-download", args=[evidence.pk]))


class EvidenceUploadSerializer(serializers.Serializer[Any]):
    """A file (multipart) or a link; refusals of the file itself come from the intake."""

    file = serializers.FileField(required=False, use_url=False)
    url = serializers.URLField(required=False, max_length=1000)
    title = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        default="",
        validators=[validate_single_line],
    )
    expires_on = serializers.DateField(
        required=False, allow_null=True, default=None, validators=[validate_plausible_date]
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("file")) == bool(attrs.get("url")):
            raise serializers.ValidationError(
                "Send either a file or a url, not both and not neither."
            )
        return attrs


class TransitionSerializer(serializers.Serializer[Any]):
    to = CycleStatusField(help_text="The target status.")
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class OwnerSerializer(serializers.Serializer[Any]):
    """The new owner: an active member of the obligation's organisation (the context's
    `organisation`). An unknown id gets the same answer as another organisation's user, so
    that the answer says nothing about which user ids exist."""

    owner = IdRelatedField(
        queryset=get_user_model().objects.none(),
        allow_null=True,
        error_messages={"does_not_exist": "Not a member of this obligation's organisation."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "organisation" in self.context:
            members = active_memberships_of(self.context["organisation"])
            field = self.fields["owner"]
            field.queryset = get_user_model().objects.filter(  # type: ignore[attr-defined]
                is_active=True, pk__in=members.values("user_id")
            )


class DueDateSerializer(serializers.Serializer[Any]):
    due_date = serializers.DateField(allow_null=True, validators=[validate_plausible_date])
    reason = serializers.CharField(min_length=3)


class TechnologyNoticeSerializer(serializers.ModelSerializer[TechnologyNotice]):
    class Meta:
        model = TechnologyNotice
        fields = "__all__"


class OfcomNoticeSerializer(serializers.ModelSerializer[OfcomNotice]):
    class Meta:
        model = OfcomNotice
        fields = "__all__"


class ReminderSerializer(serializers.ModelSerializer[Reminder]):
    recipient = serializers.CharField(source="recipient.get_username", read_only=True)
    obligation = serializers.IntegerField(source="cycle.obligation_id", read_only=True)

    class Meta:
        model = Reminder
        exclude = ["claim", "claimed_at"]


class AssessmentEntrySerializer(serializers.ModelSerializer[AssessmentEntry]):
    harm_kind = serializers.CharField(source="harm_kind.code", read_only=True)

    class Meta:
        model = AssessmentEntry
        exclude = ["assessment"]


class RiskAssessmentSerializer(serializers.ModelSerializer[RiskAssessment]):
    entries = AssessmentEntrySerializer(many=True, read_only=True)
    assessor = serializers.CharField(source="assessor.get_username", read_only=True)
    approver = serializers.CharField(
        source="approver.get_username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = RiskAssessment
        fields = "__all__"


class MeasureDecisionSerializer(serializers.ModelSerializer[MeasureDecision]):
    measure = serializers.CharField(source="measure.code", read_only=True)
    decided_by = serializers.CharField(source="decided_by.get_username", read_only=True)

    class Meta:
        model = MeasureDecision
        fields = "__all__"


class PublicKeySerializer(serializers.Serializer[Any]):
    algorithm = serializers.CharField()
    public_key_pem = serializers.CharField()
