"""Exceptions the login path raises past the backends, importable without optional extras."""


class DirectoryUnavailable(Exception):
    """The LDAP server is down or too slow: not the user's fault, so not a "no"."""
