"""Endpoints brokers call: order postbacks."""

urlpatterns: list = []
