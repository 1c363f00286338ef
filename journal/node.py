"""A minimal venue node: sequencer + engine + journal behind a line protocol on stdin/stdout.

    python -m journal.node --dir DIR [--snapshot-every N] [--engine module:Class]

(``python -m venue.node`` is the same node that also projects into a database, ``--store-url``.)

Used by ``scripts/crash_test.py`` (SIGKILL at random points, restart, verify). On start it
recovers (latest snapshot + journal replay) and prints ``{"ready": true, "recovered_seq": N, ...}``.
Then each input line is one JSON request with an ``id``:

* ``{"id": 1, "op": "submit", "cmd": <journal codec JSON>}`` -> after durability
  ``{"id": 1, "seq": cmd_seq, "code": "OK", "order_id": 5, "trades": [trade ids], "ts": stamped ts}``
* ``{"id": 2, "op": "state"}`` -> ``{"id": 2, "applied_seq", "engine_sha256", "l2": {symbol: ...}}``
* ``{"id": 3, "op": "stop"}`` -> drains, writes a snapshot, replies ``{"id": 3, "stopped": true}``, exits.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import importlib
import json
import sys
from pathlib import Path
from typing import Any, Protocol

from engine import Command, Fill, Result
from journal import codec
from journal.errors import JournalError
from journal.journal import Journal
from journal.sequencer import Sequencer
from journal.snapshot import EngineFactory, default_engine_factory, recover


def engine_factory(spec: str) -> EngineFactory[Any]:
    """``module:Class`` with a no-argument constructor and ``from_snapshot``."""
    if spec == "engine:Engine":
        return default_engine_factory()
    module, _, name = spec.partition(":")
    cls: Any = getattr(importlib.import_module(module), name)
    return EngineFactory(new=cls, from_snapshot=cls.from_snapshot)


def engine_digest(engine: Any) -> str:
    return hashlib.sha256(json.dumps(engine.snapshot(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def result_summary(seq: int, cmd: Command, result: Result) -> dict[str, Any]:
    return {
        "seq": seq,
        "ts": cmd.ts,
        "code": result.code.name,
        "order_id": result.order_id,
        "trades": [e.trade_id for e in result.events if isinstance(e, Fill)],
    }


class Projection(Protocol):
    """Something the node also feeds with every applied command (``venue.node``: the SQL store)."""

    async def start(self, journal: Journal, factory: EngineFactory[Any]) -> None:
        """Catch up with the journal (it may be ahead after a crash), then accept ``enqueue``."""
        ...

    def enqueue(self, seq: int, cmd: Command, result: Result) -> None: ...

    async def stop(self) -> None: ...


class Node:
    def __init__(
        self,
        directory: Path,
        factory: EngineFactory[Any],
        snapshot_every: int,
        projection: Projection | None = None,
    ) -> None:
        self.directory = directory
        self.factory = factory
        self.snapshot_every = snapshot_every
        self.projection = projection
        self._since_snapshot = 0
        self._snapshotting = False
        self._stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        journal = Journal.open(self.directory)
        engine, recovered = recover(self.directory, journal=journal, factory=self.factory)
        self.sequencer = Sequencer(engine, journal)
        if self.projection is not None:
            await self.projection.start(journal, self.factory)
            self.sequencer.subscribe(self.projection.enqueue)
        self.sequencer.subscribe(self._count)
        await self.sequencer.start()
        self._emit({"ready": True, "recovered_seq": recovered, "repaired": journal.repaired})
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        stop = asyncio.ensure_future(self._stopped.wait())
        while True:
            read = asyncio.ensure_future(reader.readline())
            await asyncio.wait({read, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not read.done():
                read.cancel()
                break
            line = read.result()
            if not line:
                break
            self._spawn(self._handle(line))
        stop.cancel()
        await asyncio.gather(*self._tasks)
        await self.sequencer.stop()
        if self.projection is not None:
            await self.projection.stop()
        journal.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _count(self, seq: int, cmd: Command, result: Result) -> None:
        self._since_snapshot += 1
        if self.snapshot_every and self._since_snapshot >= self.snapshot_every and not self._snapshotting:
            self._since_snapshot = 0
            self._snapshotting = True
            self._spawn(self._snapshot())

    async def _snapshot(self) -> None:
        try:
            await self.sequencer.snapshot_async(self.directory)
        finally:
            self._snapshotting = False

    async def _handle(self, line: bytes) -> None:
        req_id: Any = None
        try:
            req = json.loads(line)
            req_id = req.get("id")
            op = req.get("op")
            if op == "submit":
                cmd = codec.decode(json.dumps(req["cmd"]).encode())
                seq, stamped, result = await self.sequencer.submit_sequenced(cmd)
                self._emit({"id": req_id, **result_summary(seq, stamped, result)})
            elif op == "state":
                engine: Any = self.sequencer.engine
                l2 = {}
                if hasattr(engine, "l2"):
                    for symbol in req.get("symbols", []):
                        l2[symbol] = dataclasses.asdict(engine.l2(symbol))
                self._emit(
                    {
                        "id": req_id,
                        "applied_seq": self.sequencer.applied_seq,
                        "engine_sha256": engine_digest(engine),
                        "l2": l2,
                    }
                )
            elif op == "stop":
                self._stopped.set()
                await self.sequencer.stop()
                await self.sequencer.snapshot_async(self.directory)
                self._emit({"id": req_id, "stopped": True})
            else:
                self._emit({"id": req_id, "error": f"unknown op {op!r}"})
        except (ValueError, KeyError, JournalError) as exc:
            self._emit({"id": req_id, "error": f"{type(exc).__name__}: {exc}"})

    @staticmethod
    def _emit(doc: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
        sys.stdout.flush()


def build_parser(description: str | None = __doc__) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True, type=Path, help="journal + snapshot directory")
    parser.add_argument("--snapshot-every", type=int, default=200, help="commands between snapshots (0: never)")
    parser.add_argument("--engine", default="engine:Engine", help="engine class as module:Class")
    return parser


def run(args: argparse.Namespace, projection: Projection | None = None) -> None:
    node = Node(args.dir, engine_factory(args.engine), args.snapshot_every, projection)
    asyncio.run(node.run())


def main(argv: list[str] | None = None) -> None:
    run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
