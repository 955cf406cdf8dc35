"""The ``keyhouse`` command: serve, and manage realms and users from the shell.

One module per command group (``serve``, ``realm``, ``user``, ``admin``, ``audit``,
``ldap``) on ``base.py``; ``runner.py`` sets up Django, loads them and runs one.
``keyhouse.cli:main`` is the console script (pyproject.toml).
"""

from keyhouse.cli.runner import main

__all__ = ["main"]
