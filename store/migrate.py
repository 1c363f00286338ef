"""Run the committed Alembic migrations programmatically (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError

from store.db import DEFAULT_URL, create_db_engine, translate_errors
from store.errors import MigrationError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema behind ``engine`` to ``revision`` (idempotent)."""
    cfg = alembic_config()
    try:
        with translate_errors("migrate"), engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except CommandError as exc:
        raise MigrationError(f"alembic upgrade to {revision} failed: {exc}") from exc


def migrate(url: str | sa.URL = DEFAULT_URL) -> None:
    """``alembic upgrade head`` for the database at ``url``."""
    engine = create_db_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with translate_errors("read schema revision"), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
