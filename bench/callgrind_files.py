"""Reading callgrind's profile parts: a part's instructions, and those spent inside given libraries.

Hand-written: ``callgrind_annotate`` prints per-function tables for a person
and takes a second or so per file, and a run makes hundreds of parts; all this
needs from each is its total and the inclusive cost of the calls that enter a
library (SQLite, Argon2) from outside it, which one pass over the file gives.

The format (valgrind.org/docs/manual/cl-format.html): ``ob=``/``cob=`` name
the caller's and the callee's object (``(id) name`` the first time, ``(id)``
after), ``calls=`` announces a call whose inclusive cost is the next cost
line, and ``totals:`` is the part's sum. A call that enters a library from
outside it is counted; calls within the library are not (they are inside the
first one's inclusive cost already).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# What each library key matches in an object's path.
LIBRARIES: dict[str, str] = {
    "sqlite": "/libsqlite3.so",  # SQLite's C library (Python's _sqlite3 module is the caller)
    "argon2": "/_argon2_cffi_bindings/",  # argon2-cffi-bindings' compiled Argon2
}

# What each function key's name starts with: Python's cyclic garbage collector,
# which runs inside whatever allocation crosses its threshold (so in any phase).
FUNCTIONS: dict[str, str] = {"gc": "gc_collect_main"}

_NAME = re.compile(r"callgrind\.out\.(\d+)\.(\d+)(?:-(\d+))?$")


@dataclass(frozen=True)
class Part:
    """One dump: part and thread, its instructions, and those inside each library or function."""

    part: int
    thread: int | None
    total: int
    inside: dict[str, int] = field(default_factory=dict)


def part_files(directory: Path, pid: int) -> dict[int, tuple[int | None, Path]]:
    """Part number -> (thread, file) for one process's numbered dumps (the final one has none)."""
    found: dict[int, tuple[int | None, Path]] = {}
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match and int(match.group(1)) == pid:
            thread = int(match.group(3)) if match.group(3) else None
            found[int(match.group(2))] = (thread, path)
    return found


def _library_of(name: str) -> str | None:
    for key, needle in LIBRARIES.items():
        if needle in name:
            return key
    return None


def read_part(path: Path) -> Part:
    """The part's figures and, per library or function, the inclusive cost of calls entering it."""
    objects: dict[str, str | None] = {}  # compressed id -> library key (None: another object)
    functions: dict[str, str | None] = {}  # compressed id -> function key
    inside = dict.fromkeys([*LIBRARIES, *FUNCTIONS], 0)
    part = total = 0
    thread: int | None = None
    caller: str | None = None  # the library key of the current ob=
    callee: str | None = None  # the library key of the next call's target
    caller_fn: str | None = None  # the function key of the current fn=
    callee_fn: str | None = None  # the function key of the next call's target
    into: tuple[str | None, str | None] = (None, None)  # the announced call's keys
    calling = False
    with path.open() as lines:
        for line in lines:
            if calling:
                calling = False
                cost = 0
                lib, fn = into
                if lib is not None and lib != caller:
                    cost = int(line.split()[1])
                    inside[lib] += cost
                if fn is not None and fn != caller_fn:
                    inside[fn] += cost or int(line.split()[1])
                continue
            if line.startswith("calls="):
                calling, into, callee = True, (callee, callee_fn), caller
            elif line.startswith("cfn="):
                callee_fn = _name(line[4:], functions, _function_of)
            elif line.startswith("fn="):
                caller_fn = _name(line[3:], functions, _function_of)
            elif line.startswith("ob="):
                caller = callee = _name(line[3:], objects, _library_of)
            elif line.startswith("cob="):
                callee = _name(line[4:], objects, _library_of)
            elif line.startswith("totals:"):
                total = int(line.split()[1])
            elif line.startswith("part:"):
                part = int(line.split()[1])
            elif line.startswith("thread:"):
                thread = int(line.split()[1])
    return Part(part=part, thread=thread, total=total, inside=inside)


def _function_of(name: str) -> str | None:
    for key, prefix in FUNCTIONS.items():
        if name.startswith(prefix):
            return key
    return None


def _name(
    spec: str, names: dict[str, str | None], classify: Callable[[str], str | None]
) -> str | None:
    """The key of an ``ob=``/``fn=``-style value, learning ``(id) name`` definitions."""
    spec = spec.strip()
    if spec.startswith("("):
        ident, _, name = spec.partition(")")
        if name:
            names[ident] = classify(name.strip())
        return names.get(ident)
    return classify(spec)
