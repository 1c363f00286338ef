"""A whole venue per test: embedded (SQLite + in-process EVM) and production-like (PostgreSQL + anvil)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from settlement import Chain, start_anvil
from venue.config import VenueConfig
from venue.demo import start_demo_market
from venue.runtime import Venue

PG_ADMIN_URL = os.environ.get("VENUE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def node() -> Iterator[Chain]:
    """A fresh anvil node of its own, used as if it were a real chain (deploy, run, walk-throughs)."""
    chain = start_anvil()
    try:
        yield chain
    finally:
        chain.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"venue_e2e_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(PG_ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class RunningVenue:
    venue: Venue
    keys: dict[str, dict[str, str]]

    @property
    def url(self) -> str:
        return self.venue.base_url


@pytest.fixture(params=["embedded", pytest.param("production", marks=[pytest.mark.postgres, pytest.mark.anvil])])
async def running(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningVenue]:
    if request.param == "embedded":
        config = VenueConfig(data_dir=tmp_path / "var", port=free_port(), resume_call_s=1.0)
    else:
        config = VenueConfig(data_dir=tmp_path / "var", port=free_port(), chain="anvil", resume_call_s=1.0,
                             anvil_block_time=0.2, db_url=request.getfixturevalue("pg_url"))
    async with serve_demo(config) as running_venue:
        yield running_venue


@contextlib.asynccontextmanager
async def serve_demo(config: VenueConfig) -> AsyncIterator[RunningVenue]:
    """A started venue with the demo market (two investors), serving on ``config.port``."""
    venue = Venue(config, fresh_chain=True)
    await venue.start()
    server: asyncio.Task[None] | None = None
    try:
        keys = await start_demo_market(venue, investors=2)
        ready = asyncio.Event()
        server = asyncio.create_task(venue.serve(on_ready=ready.set))
        await asyncio.wait_for(ready.wait(), 20)
        yield RunningVenue(venue=venue, keys=keys)
    finally:
        await venue.stop()
        if server is not None:
            await server
