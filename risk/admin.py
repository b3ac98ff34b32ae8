from django.contrib import admin

from risk.models import KillSwitchEvent


@admin.register(KillSwitchEvent)
class KillSwitchEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "state", "scope", "strategy", "actor", "actor_type", "reason")
    list_filter = ("state", "scope", "actor_type")
    list_select_related = ("strategy",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
