"""The strategy API (Django REST framework): /api/v1/orders/, trades, strategy, prices, health."""
