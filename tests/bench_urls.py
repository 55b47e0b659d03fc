"""The bench's URLconf (`make bench` only, never production): the tracker's URLs plus two
trivial views, the floor of what any request costs through the same middleware stack.

`trivial` reads request.user (a session and a user lookup, as every signed-in page does);
`trivial-api` is a DRF view with the API's own authentication and permission classes (a
token lookup, as every API call does). Neither touches the register.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracker.urls import urlpatterns as tracker_urlpatterns


def trivial(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"ok {request.user.is_authenticated}", content_type="text/plain")


class TrivialApi(APIView):
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [
    path("bench/trivial/", trivial),
    path("bench/trivial-api/", TrivialApi.as_view()),
    *tracker_urlpatterns,
]
