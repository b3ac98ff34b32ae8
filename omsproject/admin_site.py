"""The OMS admin site: the desk's dashboard as its index, and the kill switch on every page.

Every page an authorised person sees carries the kill switch board (one query) so that a
banner says, before anything else, when trading is HALTED or REDUCING anywhere. ModelAdmins
may add pages at the site's level (``get_site_urls``): the kill switch page lives at
``/admin/risk/killswitch/`` this way.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from orders.enums import OrderStatus
from risk.charts import pnl_chart, session_window
from risk.health import CRITICAL, broker_account_checks, system_health
from risk.selectors import desk_today, kill_switch_board
from risk.usage import limits_in_use


class OmsAdminSite(admin.AdminSite):
    site_header = "OMS back office"
    site_title = "OMS"
    index_title = "Today"
    # The lists need the width; the header's links and the home page replace the side menu.
    enable_nav_sidebar = False

    def each_context(self, request):
        context = super().each_context(request)
        if self.has_permission(request):
            # The dashboard has read the board already, with the desk's figures.
            desk = getattr(request, "oms_desk", None)
            context["kill_switch_board"] = desk.kill_switch if desk else kill_switch_board()
            # LIVE strategies whose Kite account has no session today: refused until a login.
            # The dashboard has read them already, with the rest of the health.
            health = getattr(request, "oms_health", None)
            checks = health.named("kite") if health else broker_account_checks()
            context["broker_alerts"] = [check for check in checks if check.state == CRITICAL]
        return context

    def index(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        if request.user.has_perm("orders.view_order"):
            desk = request.oms_desk = desk_today()
            moments = [at for _, points in desk.pnl_series for at, _ in points]
            start, end = session_window(timezone.now(), moments)
            extra_context["desk"] = desk
            extra_context["limits_usage"] = limits_in_use(desk=desk)
            extra_context["health"] = request.oms_health = system_health()
            extra_context["active_statuses"] = ",".join(sorted(OrderStatus.active()))
            extra_context["pnl_chart"] = pnl_chart(
                [
                    (strategy.name if strategy else "All strategies", points)
                    for strategy, points in desk.pnl_series
                ],
                start=start,
                end=end,
            )
        return super().index(request, extra_context)

    def get_urls(self):
        extra = []
        for model_admin in self._registry.values():
            get_site_urls = getattr(model_admin, "get_site_urls", None)
            if get_site_urls is not None:
                extra += get_site_urls()
        # Before Django's own patterns, whose catch-all would otherwise answer them.
        return extra + super().get_urls()
