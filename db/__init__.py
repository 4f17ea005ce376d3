"""The only Python that talks to PostgreSQL."""

from psycopg.types.json import Jsonb

from db import embedded, migrations
from db.engine import (
    Database,
    DatabaseError,
    NotConnected,
    Principal,
    Row,
    SessionNotLive,
    Transaction,
    Unavailable,
    sqlstate,
    system_transaction,
)
from db.queries import Query, queries

__all__ = [
    "Database",
    "DatabaseError",
    "Jsonb",
    "NotConnected",
    "Principal",
    "Query",
    "Row",
    "SessionNotLive",
    "Transaction",
    "Unavailable",
    "embedded",
    "migrations",
    "queries",
    "sqlstate",
    "system_transaction",
]
