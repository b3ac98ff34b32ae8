"""Endpoints brokers call (namespace ``brokers``): order postbacks, Kite's login redirect."""

from django.urls import path

from orders.views import kite_login, kite_postback

app_name = "brokers"

urlpatterns = [
    path("kite/postback/", kite_postback, name="kite-postback"),
    path("kite/login/", kite_login, name="kite-login"),
]
