from rest_framework.routers import SimpleRouter

from positions.api.views import PositionViewSet

router = SimpleRouter()
router.register("positions", PositionViewSet, basename="position")

urlpatterns = router.urls
