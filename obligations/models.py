"""The app's models module, as Django looks for it: every domain's models, imported here so
the one app label `obligations` holds them all. Code imports models from their domain; the
names migrations refer to (`default_lead_days`, `validate_lead_days`, `evidence_path`) stay
importable here."""

from obligations.access.models import (
    AccessLog,
    ApiToken,
    CalendarFeed,
    Membership,
    MembershipEvent,
    Organisation,
    SsoGroupRole,
    SsoIdentity,
    default_lead_days,
    validate_lead_days,
)
from obligations.assessments.models import (
    AssessmentEntry,
    MeasureDecision,
    RiskAssessment,
)
from obligations.catalogue.models import (
    CatalogueEntry,
    CatalogueVersion,
    CodeMeasure,
    Duty,
    Exemption,
    Feature,
    HarmKind,
    RegisterCategory,
    RiskFactor,
)
from obligations.dashboard.models import (
    ComplianceCount,
    ComplianceFill,
)
from obligations.notices.models import (
    NoticeEvent,
    OfcomNotice,
    TechnologyNotice,
)
from obligations.operations.models import Heartbeat
from obligations.providers.models import (
    Provider,
    RevenuePeriod,
    Service,
    SignificantChange,
)
from obligations.register.models import (
    Event,
    Evidence,
    Obligation,
    ObligationCycle,
    evidence_path,
)
from obligations.reminders.models import (
    LeadTime,
    Reminder,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "AccessLog",
    "ApiToken",
    "AssessmentEntry",
    "CalendarFeed",
    "CatalogueEntry",
    "CatalogueVersion",
    "CodeMeasure",
    "ComplianceCount",
    "ComplianceFill",
    "Duty",
    "Event",
    "Evidence",
    "Exemption",
    "Feature",
    "HarmKind",
    "Heartbeat",
    "LeadTime",
    "MeasureDecision",
    "Membership",
    "MembershipEvent",
    "NoticeEvent",
    "Obligation",
    "ObligationCycle",
    "OfcomNotice",
    "Organisation",
    "Provider",
    "RegisterCategory",
    "Reminder",
    "RevenuePeriod",
    "RiskAssessment",
    "RiskFactor",
    "Service",
    "SignificantChange",
    "SsoGroupRole",
    "SsoIdentity",
    "TechnologyNotice",
    "WebhookDelivery",
    "WebhookEndpoint",
    "default_lead_days",
    "evidence_path",
    "validate_lead_days",
]
