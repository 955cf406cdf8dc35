from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "keyhouse.web"
    label = "web"
