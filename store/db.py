"""Database engines and error translation at the DBAPI boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from store.errors import DuplicateError, InvalidRecordError, StoreUnavailableError

DEFAULT_URL = "sqlite:///var/venue.sqlite"


def create_db_engine(url: str | sa.URL = DEFAULT_URL) -> sa.Engine:
    """A SQLAlchemy engine for ``url``; SQLite files get their directory, WAL and foreign keys."""
    try:
        parsed = sa.make_url(url)
    except sa_exc.ArgumentError as exc:
        raise StoreUnavailableError(f"bad database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # the journal, not the store, is the durable record
    cur.close()


def _sqlstate(exc: sa_exc.DBAPIError) -> str | None:
    state = getattr(exc.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Map SQLAlchemy/DBAPI errors to the store's exception tree, naming the operation."""
    try:
        yield
    except sa_exc.IntegrityError as exc:
        text = str(exc.orig).lower()
        if _sqlstate(exc) == "23505" or "unique" in text or "duplicate" in text:
            raise DuplicateError(f"{what}: already exists") from exc
        raise InvalidRecordError(f"{what}: violates a constraint: {exc.orig}") from exc
    except sa_exc.SQLAlchemyError as exc:
        raise StoreUnavailableError(f"{what}: database error: {exc}") from exc
