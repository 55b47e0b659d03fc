from django.urls import include, path
from rest_framework.routers import DefaultRouter

from obligations.api.reports import ApplicabilityView, AuditPackView, DashboardView, PublicKeyView
from obligations.api.root import TrackerRoot
from obligations.api.views import (
    DutyViewSet,
    EventViewSet,
    EvidenceViewSet,
    MeasureDecisionViewSet,
    ObligationViewSet,
    OfcomNoticeViewSet,
    OrganisationViewSet,
    ProviderViewSet,
    ReminderViewSet,
    RiskAssessmentViewSet,
    ServiceViewSet,
    TechnologyNoticeViewSet,
)

router = DefaultRouter()
router.APIRootView = TrackerRoot
router.register("organisations", OrganisationViewSet, basename="organisation")
router.register("providers", ProviderViewSet, basename="provider")
router.register("services", ServiceViewSet, basename="service")
router.register("duties", DutyViewSet, basename="duty")
router.register("obligations", ObligationViewSet, basename="obligation")
router.register("events", EventViewSet, basename="event")
router.register("evidence", EvidenceViewSet, basename="evidence")
router.register("technology-notices", TechnologyNoticeViewSet, basename="technology-notice")
router.register("ofcom-notices", OfcomNoticeViewSet, basename="ofcom-notice")
router.register("reminders", ReminderViewSet, basename="reminder")
router.register("risk-assessments", RiskAssessmentViewSet, basename="risk-assessment")
router.register("measure-decisions", MeasureDecisionViewSet, basename="measure-decision")

urlpatterns = [
    path("applicability/", ApplicabilityView.as_view(), name="applicability"),
    path("dashboard/", DashboardView.as_view(), name="dashboard"),
    path("audit-packs/", AuditPackView.as_view(), name="audit-pack"),
    path("audit-packs/public-key/", PublicKeyView.as_view(), name="audit-pack-key"),
    path("", include(router.urls)),
]
