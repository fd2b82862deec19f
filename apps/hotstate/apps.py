from django.apps import AppConfig


class HotstateConfig(AppConfig):
    name = "apps.hotstate"
    label = "hotstate"
    verbose_name = "Redis hot state"
