"""The strategy API: /api/v1/... (versioned), the OpenAPI schema and its documentation."""

urlpatterns: list = []
