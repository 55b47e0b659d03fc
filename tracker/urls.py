from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from obligations import views

admin.site.site_header = "Online Safety Act obligations tracker"
admin.site.site_title = "OSA tracker"
admin.site.index_title = "Compliance register"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("evidence/<int:pk>/download/", views.download_evidence, name="evidence-download"),
    path("records/assessments/<int:pk>/", views.assessment_record, name="assessment-record"),
    path("records/services/<int:pk>/measures/", views.measures_record, name="measures-record"),
]
