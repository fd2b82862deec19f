from django.apps import AppConfig


class DemoUpstreamConfig(AppConfig):
    name = "apps.demo_upstream"
    label = "demo_upstream"
