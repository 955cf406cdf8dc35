"""Who may reach which host and path through the gateway (``GATEWAY_RULES``, docs/gateway.md).

An operator lists rules in ``KEYHOUSE_CONFIG``, e.g.::

    [[GATEWAY_RULES]]            # only a realm's administrators under /admin/
    path = "/admin/"
    roles = ["owner", "admin"]

    [[GATEWAY_RULES]]            # bots, whatever their role, under /api/
    path = "/api/"
    bots = true

The first rule whose ``host``, ``path`` and ``methods`` match the request
decides: the user passes if their realm, role and bot flag fit it, else the
answer is 403. No rule matching: every authenticated user passes. Pure (no
Django), so config_keys.py checks the table at start-up, before anything is
served, and a rule that could never work stops the server with one line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

# Zulip's role names as keyhouse spells them (users/models.py's Role labels; a test
# keeps the two in step: this module may import no app).
ROLE_NAMES = ("owner", "admin", "moderator", "member", "guest")
_FIELDS = ("host", "path", "methods", "realms", "roles", "bots", "allow")
_HOST_RE = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?")
_METHOD_RE = re.compile(r"[A-Z]+")
_SUBDOMAIN_RE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)?")


class GatewayRulesError(ValueError):
    """One line an operator can act on (config_keys.py turns it into ConfigError)."""


@dataclass(frozen=True)
class Rule:
    """One ``[[GATEWAY_RULES]]`` table; ``None`` fields place no condition."""

    index: int  # its place in the list, for logs and errors
    path: str = "/"
    host: str | None = None
    methods: frozenset[str] | None = None
    realms: frozenset[str] | None = None
    roles: frozenset[str] | None = None
    # True: bots pass whatever their role; False: no bot passes; None: judged as anyone.
    bots: bool | None = None
    allow: bool = True

    def matches(self, host: str, path: str, method: str) -> bool:
        """Whether this rule speaks for a request to ``host`` (no port) and ``path``."""
        if self.host is not None and not _host_matches(self.host, host):
            return False
        if self.methods is not None and method not in self.methods:
            return False
        return _path_matches(self.path, path)

    def admits(self, realm: str, role: str, is_bot: bool) -> bool:
        """Whether a user of ``realm`` (subdomain) with ``role`` (a ROLE_NAMES) may pass."""
        if not self.allow:
            return False
        if self.realms is not None and realm not in self.realms:
            return False
        if is_bot and self.bots is not None:
            return self.bots
        return self.roles is None or role in self.roles


def _host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def _path_matches(prefix: str, path: str) -> bool:
    """``/admin/`` covers ``/admin/…`` and ``/admin`` itself (which many apps serve alike)."""
    return path.startswith(prefix) or (prefix.endswith("/") and path == prefix[:-1])


def normalized_path(uri: str) -> str:
    """The path an application would serve for ``uri``, as the rules compare it.

    The query is dropped, percent-escapes decoded, backslashes read as slashes,
    repeated slashes collapsed and ``.``/``..`` resolved: ``/%61dmin/``,
    ``//admin/`` and ``/x/../admin/`` must meet the ``/admin/`` rule the way the
    upstream will see them. Decoding once more than the upstream might is the
    safe side for a prefix rule: it can only make a path look more like itself.
    Hand-written: posixpath.normpath drops the trailing slash the rules rely on.
    """
    path = unquote(uri.split("?", 1)[0].split("#", 1)[0]).replace("\\", "/")
    stack: list[str] = []
    segments = path.split("/")
    for segment in segments:
        if segment in ("", "."):
            continue
        if segment == "..":
            if stack:
                stack.pop()
            continue
        stack.append(segment)
    trailing = bool(segments) and segments[-1] in ("", ".", "..") and bool(stack)
    return "/" + "/".join(stack) + ("/" if trailing else "")


def first_match(rules: Iterable[Rule], host: str, path: str, method: str) -> Rule | None:
    """The rule that decides a request (host without port, normalized path), if any."""
    for rule in rules:
        if rule.matches(host, path, method):
            return rule
    return None


def _strings(where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GatewayRulesError(f"{where} must be an array of strings")
    return value


def _rule(index: int, table: Any) -> Rule:
    where = f"GATEWAY_RULES[{index}]"
    if not isinstance(table, dict):
        raise GatewayRulesError(f"{where} must be a table ([[GATEWAY_RULES]])")
    unknown = sorted(set(table) - set(_FIELDS))
    if unknown:
        raise GatewayRulesError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(_FIELDS)}"
        )
    path = table.get("path", "/")
    if not isinstance(path, str) or not path.startswith("/"):
        raise GatewayRulesError(f'{where}.path must be a string starting with "/"')
    if normalized_path(path) != path:
        raise GatewayRulesError(f"{where}.path must be a plain path (no %, //, . or ..)")
    host = table.get("host")
    if host is not None:
        if not isinstance(host, str) or not _HOST_RE.fullmatch(host.lower()):
            raise GatewayRulesError(f'{where}.host must be a host name or "*.domain", no port')
        host = host.lower()
    methods = None
    if "methods" in table:
        methods = frozenset(m.upper() for m in _strings(f"{where}.methods", table["methods"]))
        if not methods or not all(_METHOD_RE.fullmatch(m) for m in methods):
            raise GatewayRulesError(f"{where}.methods must name HTTP methods")
    realms = None
    if "realms" in table:
        realms = frozenset(s.lower() for s in _strings(f"{where}.realms", table["realms"]))
        if not all(_SUBDOMAIN_RE.fullmatch(s) for s in realms):
            raise GatewayRulesError(f'{where}.realms must be subdomains ("" for the root realm)')
    roles = None
    if "roles" in table:
        roles = frozenset(_strings(f"{where}.roles", table["roles"]))
        wrong = sorted(roles - set(ROLE_NAMES))
        if wrong:
            raise GatewayRulesError(
                f"{where}.roles: unknown role(s) {', '.join(wrong)}; "
                f"roles are {', '.join(ROLE_NAMES)}"
            )
    for flag in ("bots", "allow"):
        if flag in table and not isinstance(table[flag], bool):
            raise GatewayRulesError(f"{where}.{flag} must be true or false")
    return Rule(
        index=index,
        path=path,
        host=host,
        methods=methods,
        realms=realms,
        roles=roles,
        bots=table.get("bots"),
        allow=table.get("allow", True),
    )


def parse(value: Sequence[Any]) -> tuple[Rule, ...]:
    """The rules of a ``GATEWAY_RULES`` value, or ``GatewayRulesError`` for the first bad one."""
    return tuple(_rule(i, table) for i, table in enumerate(value))


_compiled: tuple[Sequence[Any] | None, tuple[Rule, ...]] = (None, ())


def compiled(value: Sequence[Any]) -> tuple[Rule, ...]:
    """``parse(value)``, once per settings value (the verify asks on every request)."""
    global _compiled
    source, rules = _compiled
    if source is not value:
        rules = parse(value)
        _compiled = (value, rules)
    return rules
