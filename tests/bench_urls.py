"""The bench's URLconf (`make bench` only, never production): the tracker's URLs plus two
trivial views, the floor of what any request costs through the same middleware stack.

`trivial` reads request.user (a session and a user lookup, as every signed-in page does);
`trivial-api` is a DRF view with the API's own authentication and permission classes (a
token lookup, as every API call does). Neither touches the register.

`stock-admin` is Django's admin as it comes, listing the same obligations: a reference for
the tracker's changelist (what the framework's own page costs), not a floor.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from obligations.register.models import Obligation
from tracker.urls import urlpatterns as tracker_urlpatterns


def trivial(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"ok {request.user.is_authenticated}", content_type="text/plain")


class TrivialApi(APIView):
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class StockObligationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Django's changelist with nothing added: 100 obligations to a page, one column (the
    id), no filters, search or custom columns."""

    list_display = ("id",)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True  # behind the admin site's own staff check; the bench's user is a manager


# Named "admin" and mounted after the tracker's URLs, so that the templates' links to the
# tracker's admin pages still reverse (to the first "admin", the tracker's).
stock_admin = admin.AdminSite(name="admin")
stock_admin.register(Obligation, StockObligationAdmin)

urlpatterns = [
    path("bench/trivial/", trivial),
    path("bench/trivial-api/", TrivialApi.as_view()),
    *tracker_urlpatterns,
    path("bench/stock-admin/", stock_admin.urls),
]
