"""Single sign-on: identity providers that vouch for a user (docs/sso.md).

Each protocol verifies the IdP's answer and hands ``auth.pipeline.sign_in`` a
verified identity; the pipeline does the rest, as for passwords.
"""
