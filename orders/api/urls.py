from django.urls import path
from rest_framework.routers import SimpleRouter

from orders.api.baskets import BasketViewSet
from orders.api.events import EventFeedView
from orders.api.parents import ParentViewSet
from orders.api.views import HealthView, OrderViewSet, PricesView, StrategyView, TradeViewSet

router = SimpleRouter()
router.register("orders", OrderViewSet, basename="order")
router.register("trades", TradeViewSet, basename="trade")
router.register("baskets", BasketViewSet, basename="basket")
router.register("parents", ParentViewSet, basename="parent")

urlpatterns = [
    *router.urls,
    path("strategy/", StrategyView.as_view(), name="strategy"),
    path("events/", EventFeedView.as_view(), name="events"),
    path("prices/", PricesView.as_view(), name="prices"),
    path("health/", HealthView.as_view(), name="health"),
]
