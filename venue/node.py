"""The crash-test node (``journal.node``) that also projects orders and trades into a database.

    python -m venue.node --dir DIR --store-url URL [--snapshot-every N] [--engine module:Class]

``scripts/crash_test.py --store-url`` runs this one and checks the store against the journal.
"""

from __future__ import annotations

import asyncio
from typing import Any

from engine import Command, Result
from journal import EngineFactory, Journal
from journal.node import build_parser, run
from store import Store, StoreWriter, sync_from_journal


class StoreProjection:
    """``journal.node.Projection`` onto the SQL store through the asynchronous ``StoreWriter``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: Store | None = None
        self._writer: StoreWriter | None = None

    async def start(self, journal: Journal, factory: EngineFactory[Any]) -> None:
        self._store = await asyncio.to_thread(Store.open, self.url)
        # the store may lag the journal after a crash
        await asyncio.to_thread(sync_from_journal, journal, self._store, factory=factory)
        self._writer = StoreWriter(self._store)
        await self._writer.start()

    def enqueue(self, seq: int, cmd: Command, result: Result) -> None:
        assert self._writer is not None, "enqueue before start"
        self._writer.enqueue(seq, cmd, result)

    async def stop(self) -> None:
        if self._writer is not None:
            await self._writer.stop()
        if self._store is not None:
            self._store.close()


def main(argv: list[str] | None = None) -> None:
    parser = build_parser(__doc__)
    parser.add_argument("--store-url", required=True, help="project orders/trades into this database")
    args = parser.parse_args(argv)
    run(args, StoreProjection(args.store_url))


if __name__ == "__main__":
    main()
