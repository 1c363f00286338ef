from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from store import Store, migrate
from store.migrate import alembic_config, current_revision
from store.models import Base


def test_migrations_reach_head_and_are_idempotent(db_url: sa.URL) -> None:
    migrate(db_url)
    migrate(db_url)  # second run is a no-op
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    engine = sa.create_engine(db_url)
    try:
        assert current_revision(engine) == head
        assert set(Base.metadata.tables) <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_models_and_migrations_agree(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
