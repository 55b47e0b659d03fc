from django.urls import path

from obligations.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.organisation_dashboard, name="organisation"),
    path("services/<int:pk>/", views.service_dashboard, name="service"),
]
