"""keyhouse in front of other services: the forward-auth check ``/auth/verify``.

nginx ``auth_request``, Caddy ``forward_auth`` and Traefik ``ForwardAuth`` ask
this endpoint, for every request they guard, whether its credentials are good
(the same API keys and sign-ins as the rest of keyhouse), and pass the answer's
identity headers on to the service behind them (docs/gateway.md).
"""
