from django.apps import AppConfig


class SAMLConfig(AppConfig):
    name = "keyhouse.sso.saml"
    label = "keyhouse_saml"
    default_auto_field = "django.db.models.BigAutoField"
