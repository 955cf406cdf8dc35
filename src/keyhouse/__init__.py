"""keyhouse: a self-hosted login server that speaks Zulip's authentication API."""

__version__ = "0.1.0"
