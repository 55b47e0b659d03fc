from django.urls import path

from obligations.dashboard.views import organisation_dashboard, service_dashboard
from obligations.exports.board import board_report

app_name = "dashboard"

urlpatterns = [
    path("", organisation_dashboard, name="organisation"),
    path("services/<int:pk>/", service_dashboard, name="service"),
    path("board-report.pdf", board_report, name="board-report"),
]
