from django.apps import AppConfig


class QuickstartConfig(AppConfig):
    name = "apps.quickstart"
    label = "quickstart"
    verbose_name = "Quickstart demo"
