"""Single sign-on on python-social-auth: the methods a realm can offer besides passwords.

``registry`` lists the external methods (what server_settings and the login page
show); each method module (``oidc``; social logins plug in the same way)
registers itself and turns an IdP's answer into an ``ExternalIdentity``. What
happens to that identity (the sign-in pipeline, the web/mobile/desktop finish) is
web/sso.py's job, the same for every method. SAML (``sso/saml/``) verifies its
assertions with python3-saml directly and has its own views (web/saml.py).
"""
