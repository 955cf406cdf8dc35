"""ORM queries compiled once per connection, then only run: the hot lookups skip the compiler.

Turning a QuerySet into SQL (resolving lookups, joins and select_related columns,
finding converters) costs several times the CPU that SQLite needs to answer the
indexed lookups keyhouse makes on every request: the API-key user lookup, the login
user lookup, the realm by subdomain. A PreparedQuery lets the ORM compile its
query once per database connection, with sentinel values whose places in the
parameters it remembers; each run then binds the new values, executes that SQL
and builds the instances as QuerySet iteration does (``from_db``, select_related
populators, the backend's converters). Django has no public API for this (its
compiler always recompiles), so this uses the same compiler parts as Django's own
ModelIterable, and refuses at compile time any query it could not rebuild exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, models, router
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]

M = TypeVar("M", bound=models.Model)
_ATTR = "_keyhouse_prepared_queries"
_QMARK = re.compile(r"(?<!%)%s")  # django.db.backends.sqlite3.base.FORMAT_QMARK_REGEX


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # On SQLite, the statement in sqlite3's own placeholder style: it runs on the sqlite3
    # cursor itself, as the rate-limit store's do (Django's cursor wrapper would rewrite
    # the placeholders of this long SELECT with a regular expression on every run).
    qmark_sql: str | None
    params: tuple[Any, ...]
    # For each parameter, the index of the argument it binds, or None for a constant.
    slots: tuple[int | None, ...]
    compiler: Any
    converters: dict[int, Any]
    init_list: list[str]
    model_slice: slice
    populators: list[Any]


class PreparedQuery(Generic[M]):
    """``build(*args)`` returns the QuerySet; every argument must reach the SQL as a parameter."""

    def __init__(self, model: type[M], build: Callable[..., models.QuerySet[M]], *kinds: type):
        self.model = model
        self._build = build
        self._kinds = kinds  # str or int, one per argument

    def _sentinels(self) -> list[Any]:
        return [
            f"\x01keyhouse-prepared-{i}\x01" if kind is str else -(7_000_000_000 + i)
            for i, kind in enumerate(self._kinds)
        ]

    def _compile(self, db: str) -> _Compiled:
        sentinels = self._sentinels()
        queryset = self._build(*sentinels)
        compiler = queryset.query.get_compiler(using=db)
        sql, params = compiler.as_sql()
        slots = tuple(
            next((i for i, s in enumerate(sentinels) if type(p) is type(s) and p == s), None)
            for p in params
        )
        if set(slots) - {None} != set(range(len(sentinels))):
            raise ValueError(f"{self.model.__name__}: an argument is not a query parameter")
        fields = [s[0] for s in compiler.select[0 : compiler.col_count]]
        info = compiler.klass_info
        if (
            compiler.annotation_col_map
            or queryset._known_related_objects  # type: ignore[attr-defined]
            or compiler.has_composite_fields(fields)
            or info is None
            or info["model"] is not self.model
        ):
            raise ValueError(f"{self.model.__name__}: query shape not supported")
        first, last = info["select_fields"][0], info["select_fields"][-1] + 1
        vendor = connections[db].vendor
        return _Compiled(
            sql=sql,
            # Django's own conversion (SQLiteCursorWrapper.convert_query), done once.
            qmark_sql=_QMARK.sub("?", sql).replace("%%", "%") if vendor == "sqlite" else None,
            params=tuple(params),
            slots=slots,
            compiler=compiler,
            converters=compiler.get_converters(fields),
            init_list=[f[0].target.attname for f in compiler.select[first:last]],
            model_slice=slice(first, last),
            populators=get_related_populators(info, compiler.select, db),
        )

    def _compiled_for(self, db: str) -> _Compiled:
        # Connections are per thread, so this cache is too (no lock needed to read it).
        per_connection: dict[PreparedQuery[Any], _Compiled] = connections[db].__dict__.setdefault(
            _ATTR, {}
        )
        compiled = per_connection.get(self)
        if compiled is None:
            compiled = per_connection[self] = self._compile(db)
        return compiled

    def all(self, *args: Any) -> list[M]:
        """The instances the QuerySet would give for ``args``, in its order."""
        db = router.db_for_read(self.model)
        c = self._compiled_for(db)
        bound = zip(c.slots, c.params, strict=True)
        params = [p if slot is None else args[slot] for slot, p in bound]
        wrapper = connections[db]
        if c.qmark_sql is not None:
            wrapper.ensure_connection()
            with closing(wrapper.connection.cursor()) as raw:
                raw.execute(c.qmark_sql, params)
                rows = raw.fetchall()
            note_query(wrapper, c.sql, params)
        else:
            with wrapper.cursor() as cursor:  # PostgreSQL: through the watchdog's wrapper
                cursor.execute(c.sql, params)
                rows = cursor.fetchall()
        if c.converters:
            rows = list(c.compiler.apply_converters(rows, c.converters))
        found = []
        for row in rows:
            obj = self.model.from_db(db, c.init_list, row[c.model_slice])
            for populator in c.populators:
                populator.populate(row, obj)
            found.append(obj)
        return found

    def first(self, *args: Any) -> M | None:
        found = self.all(*args)
        return found[0] if found else None


def note_query(wrapper: Any, sql: str, params: Any) -> None:
    """Log a statement run on the driver's own cursor where Django would log its own.

    Only when Django logs queries at all (``DEBUG``, or a test capturing them with
    ``CaptureQueriesContext``), so that query counts in tests and the debug log still
    see what went past Django's cursor wrapper.
    """
    if wrapper.queries_logged:
        wrapper.queries_log.append({"sql": f"{sql} /* params {params!r} */", "time": "0.000"})
