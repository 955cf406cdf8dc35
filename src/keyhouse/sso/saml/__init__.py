"""SAML 2.0 service provider on python3-saml (docs/sso.md, "SAML").

``config`` turns Zulip's ``SOCIAL_AUTH_SAML_*`` settings into python3-saml's;
``store`` remembers the AuthnRequests we sent; ``sp`` builds requests and
verifies responses and logout requests into an ``Identity`` or an
``SSORefused``. The web views (web/saml.py) only route and finish.
"""
