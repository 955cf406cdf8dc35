"""The database layer's outage handling: timeouts, a statement watchdog, a breaker.

``keyhouse.db.postgresql`` is the Django database backend keyhouse uses for
PostgreSQL (docs/deploy.md, "When PostgreSQL is down, hung or restarting").
"""
