"""The strategy API's positions endpoint: /api/v1/positions/."""
