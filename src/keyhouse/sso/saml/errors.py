"""The operator's mistakes in the SAML configuration (not the user's, not the IdP's)."""


class SAMLConfigError(Exception):
    """``SOCIAL_AUTH_SAML_*`` cannot be used; ``str()`` is one line to act on."""
