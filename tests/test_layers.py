"""No module imports upward: `realms → users → auth → api → web → cli/ops` (shared/design.md).

Every module under src/keyhouse is read with ast; every keyhouse import in it,
module-level or inside a function, must point to its own group or one further
left. The layers are this one table; docs/decisions.md ("Layers") says why
they are what they are. A new top-level module must be placed in the table.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Lower rank = further left; a module may import from its own rank or lower.
BASE = 0  # below every app: what any app may use, importing no app itself
LAYERS: dict[str, int] = {
    **dict.fromkeys(
        [
            "__init__", "apps", "backend_choice", "cache_backend", "config_keys", "data_dir", "db",
            "gateway_rules", "hashing_budget", "hashing_slots", "hashing_threads", "jwt_config",
            "ldap_settings", "mail", "outages", "sso_config", "prepared", "redact", "redis_client",
            "request_notes", "secret_files", "social_providers", "test_hooks",
        ],
        BASE,
    ),
    "realms": 1,
    "users": 2,
    "auth": 3,
    # Single sign-on verifies an IdP's answer beside auth's backends, raising auth's
    # refusals; server_settings (api) lists its methods, web's views hand its identity
    # to auth.pipeline. It uses only realms, users and auth.
    "sso": 3,
    "api": 4,
    # web answers in Zulip's wire format through api/errors.py (design.md: one
    # hierarchy, mapped in one place), so it sits just right of api; api never imports web.
    "web": 5,
    # The gateway's forward-auth check answers with api's authentication and errors
    # (the very function users/me runs) and names web's login page only by URL name.
    "gateway": 5,
    # Entry points and composition: they wire the apps together and may use each other.
    **dict.fromkeys(["cli", "ops", "settings", "urls", "wsgi"], 6),
}  # fmt: skip

# (importer, imported) pairs allowed against the table, each with its reason in
# docs/decisions.md. Keep it empty.
EXCEPTIONS: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_in(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every keyhouse module ``source`` imports, wherever in the file the import is."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(source)
    # Imports under ``if TYPE_CHECKING:`` only name types for the checker; they run
    # nothing, so they are no dependency at run time (docs/decisions.md, "Layers").
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:  # relative: resolve against this package
                base = package.rsplit(".", node.level - 1)[0]
                name = f"{base}.{name}" if name else base
            found.add(name)
            if name == "keyhouse":  # from keyhouse import config_keys
                found.update(f"keyhouse.{alias.name}" for alias in node.names)
    return {m for m in found if m.startswith("keyhouse.")}


def imports(path: Path) -> set[str]:
    return imports_in(path.read_text(), module_name(path), path.name == "__init__.py")


def modules() -> list[Path]:
    return sorted((SRC / "keyhouse").rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    unplaced = sorted({group(module_name(p)) for p in modules()} - set(LAYERS))
    assert unplaced == [], "add these to LAYERS (and say why in docs/decisions.md)"


def test_no_upward_import() -> None:
    upward = []
    for path in modules():
        importer = module_name(path)
        for imported in sorted(imports(path)):
            if group(imported) not in LAYERS:
                continue  # reported by the test above
            if LAYERS[group(imported)] > LAYERS[group(importer)]:
                if (importer, imported) not in EXCEPTIONS:
                    upward.append(f"{importer} -> {imported}")
    assert upward == []


def test_type_checking_imports_are_not_dependencies() -> None:
    source = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from keyhouse.auth import x\n"
    )
    assert imports_in(source, "keyhouse.request_notes") == set()
    assert imports_in("from keyhouse.auth import x\n", "keyhouse.request_notes") == {
        "keyhouse.auth"
    }


def test_the_check_sees_function_local_and_relative_imports() -> None:
    """The walker itself: an import inside a function counts as much as one at the top."""
    source = (
        "import os\nfrom keyhouse import config_keys\n"
        "def f():\n    from keyhouse.auth import backends\n"
        "    from ..api import errors\n    from . import models\n"
        "    import keyhouse.web.login\n"
    )
    assert imports_in(source, "keyhouse.users.probe") == {
        "keyhouse.config_keys",
        "keyhouse.auth",
        "keyhouse.api",  # from ..api import errors
        "keyhouse.users",
        "keyhouse.web.login",
    }
