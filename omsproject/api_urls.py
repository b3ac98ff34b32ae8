"""The strategy API: /api/v1/... (versioned), the OpenAPI schema and its documentation.

Anything else under /api/ is a 404 in the API's error shape, never an HTML page.
"""

from django.conf import settings
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from omsproject.api.exceptions import error_body
from omsproject.bench import bare_insert

v1 = [
    path("", include("orders.api.urls")),
    path("", include("positions.api.urls")),
]
if settings.OMS_BENCH_ENDPOINTS:
    v1.append(path("bench/bare-insert/", bare_insert, name="bench-bare-insert"))


@csrf_exempt  # whatever the method, the answer is this 404, never a CSRF page
def not_found(request, unmatched: str = ""):
    return JsonResponse(
        error_body("not_found", f"{request.path}: no such endpoint (paths end with a /)"),
        status=404,
    )


urlpatterns = [
    path("v1/", include((v1, "v1"))),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    re_path(r"^(?P<unmatched>[\s\S]*)$", not_found),  # any path, newlines included
]
