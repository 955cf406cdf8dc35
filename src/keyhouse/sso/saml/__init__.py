"""SAML 2.0 service provider on python3-saml (docs/sso.md, "SAML").

``config`` turns Zulip's ``SOCIAL_AUTH_SAML_*`` settings into python3-saml's;
``store`` remembers the AuthnRequests and LogoutRequests we sent; ``sp`` builds
requests and verifies responses and logout messages into an ``Identity`` (or a
logout order) or an ``SSORefused``. The web views (web/saml.py) only route and finish.
"""
