from django.urls import include, path
from rest_framework.routers import DefaultRouter

from obligations.api import views

router = DefaultRouter()
router.register("organisations", views.OrganisationViewSet, basename="organisation")
router.register("providers", views.ProviderViewSet, basename="provider")
router.register("services", views.ServiceViewSet, basename="service")
router.register("duties", views.DutyViewSet, basename="duty")
router.register("obligations", views.ObligationViewSet, basename="obligation")
router.register("events", views.EventViewSet, basename="event")
router.register("evidence", views.EvidenceViewSet, basename="evidence")
router.register("technology-notices", views.TechnologyNoticeViewSet, basename="technology-notice")
router.register("ofcom-notices", views.OfcomNoticeViewSet, basename="ofcom-notice")
router.register("reminders", views.ReminderViewSet, basename="reminder")
router.register("risk-assessments", views.RiskAssessmentViewSet, basename="risk-assessment")
router.register("measure-decisions", views.MeasureDecisionViewSet, basename="measure-decision")

urlpatterns = [
    path("applicability/", views.ApplicabilityView.as_view(), name="applicability"),
    path("dashboard/", views.DashboardView.as_view(), name="dashboard"),
    path("audit-packs/", views.AuditPackView.as_view(), name="audit-pack"),
    path("audit-packs/public-key/", views.PublicKeyView.as_view(), name="audit-pack-key"),
    path("", include(router.urls)),
]
