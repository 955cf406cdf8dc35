from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "keyhouse.web"
    label = "web"

    def ready(self) -> None:
        from keyhouse.web import checks  # noqa: F401  (registers the deploy check)
