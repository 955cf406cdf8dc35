"""keyhouse's PostgreSQL backend (``ENGINE = "keyhouse.db.postgresql"``): see ``base``."""
