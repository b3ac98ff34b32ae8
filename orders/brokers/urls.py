"""Endpoints brokers call: order postbacks."""

from django.urls import path

from orders.brokers.postback import kite_postback

app_name = "brokers"

urlpatterns = [
    path("kite/postback/", kite_postback, name="kite-postback"),
]
