"""Alembic environment: uses the connection handed in by ``store.migrate`` or, from the alembic
CLI (``alembic -c store/alembic.ini ...``), the URL in ``VENUE_DB_URL`` or the ini file."""

from __future__ import annotations

import os

from alembic import context

from store.db import create_db_engine
from store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode for ALTERs
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
elif context.is_offline_mode():
    context.configure(
        url=os.environ.get("VENUE_DB_URL") or config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_db_engine(os.environ.get("VENUE_DB_URL") or config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
