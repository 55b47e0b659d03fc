from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from obligations.access import admin_passwords
from obligations.access.admin_otp import two_factor
from obligations.exports.corner import auditors_corner
from obligations.exports.feeds import calendar_feed
from obligations.operations.health import health_view, liveness_view
from obligations.views import (
    assessment_record,
    assessment_record_pdf,
    download_evidence,
    measures_record,
    measures_record_pdf,
)

admin.site.site_header = "Online Safety Act obligations tracker"
admin.site.site_title = "OSA tracker"
admin.site.index_title = "Compliance register"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    # Two-factor enrolment and password reset: before the admin's catch-all.
    path("admin/two-factor/", admin.site.admin_view(two_factor), name="admin_two_factor"),
    path("admin/auditors-corner/", admin.site.admin_view(auditors_corner), name="auditors-corner"),
    path("admin/", include(admin_passwords)),
    path("admin/", admin.site.urls),
    path("api/v1/", include(("obligations.api.urls", "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Split: the page loads its start-up script from /api/docs/?script, so no script is inline.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("evidence/<int:pk>/download/", download_evidence, name="evidence-download"),
    path("records/assessments/<int:pk>/", assessment_record, name="assessment-record"),
    path("records/assessments/<int:pk>/pdf/", assessment_record_pdf, name="assessment-record-pdf"),
    path("records/services/<int:pk>/measures/", measures_record, name="measures-record"),
    path(
        "records/services/<int:pk>/measures/pdf/", measures_record_pdf, name="measures-record-pdf"
    ),
    path("calendar/<str:secret>.ics", calendar_feed, name="calendar-feed"),
    path("dashboard/", include("obligations.dashboard.urls")),
    # No sign-in, nothing but each check's status: for monitoring, and for load balancers.
    path("health/", health_view(), name="health"),
    path("health/live/", liveness_view(), name="health-live"),
]

if settings.OIDC_RP_CLIENT_ID:
    # Single sign-on, when configured (README): the redirect URI is /oidc/callback/.
    urlpatterns.append(path("oidc/", include("mozilla_django_oidc.urls")))

# Under /api/ these answer in the API's JSON error shape; elsewhere with Django's pages.
handler400 = "obligations.api.errors.bad_request"
handler404 = "obligations.api.errors.not_found"
handler500 = "obligations.api.errors.server_error"
