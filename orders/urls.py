"""Endpoints brokers call (namespace ``brokers``): order postbacks."""

from django.urls import path

from orders.views import kite_postback

app_name = "brokers"

urlpatterns = [
    path("kite/postback/", kite_postback, name="kite-postback"),
]
