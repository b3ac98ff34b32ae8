"""The project as an app (its commands and admin templates), and the admin's configuration."""

from axes import apps as axes_apps
from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class OmsConfig(AppConfig):
    default = True
    name = "omsproject"
    verbose_name = "OMS"


class OmsAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` serving the OMS site (omsproject.admin_site.OmsAdminSite)."""

    default = False
    default_site = "omsproject.admin_site.OmsAdminSite"


class LoginAttemptsConfig(axes_apps.AppConfig):
    """django-axes, named for what a risk officer looks for in the admin's list of apps."""

    default = False
    verbose_name = "Login attempts"
