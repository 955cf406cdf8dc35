from django.apps import AppConfig


class AuthConfig(AppConfig):
    name = "keyhouse.auth"
    label = "keyhouse_auth"

    def ready(self) -> None:
        from keyhouse.auth import login_limits  # noqa: F401 - connects signal receivers
        from keyhouse.auth.ip_blocks import ipv6_prefix

        ipv6_prefix()  # a bad RATE_LIMIT_IPV6_PREFIX stops the start, not every IPv6 login
