"""The only Python that talks to PostgreSQL."""

from db import embedded, migrations
from db.engine import (
    Database,
    NotConnected,
    Principal,
    Row,
    SessionNotLive,
    Transaction,
    anonymous,
    anonymous_statement,
    connect,
    current,
    disconnect,
    system,
    tenant,
)
from db.queries import Query, queries

__all__ = [
    "Database",
    "NotConnected",
    "Principal",
    "Query",
    "Row",
    "SessionNotLive",
    "Transaction",
    "anonymous",
    "anonymous_statement",
    "connect",
    "current",
    "disconnect",
    "embedded",
    "migrations",
    "queries",
    "system",
    "tenant",
]
