"""The journal interface the sequencer, recovery and the store projection use.

Two backends implement it: ``journal.Journal`` (segment files + fsync, one process, the embedded
default) and ``journal.nats.NatsJournal`` (a replicated JetStream stream, for a leader + standby
deployment). ``directory`` is, for both, the local directory of engine snapshots.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from engine.messages import Command


class CommandJournal(Protocol):
    @property
    def directory(self) -> Path: ...

    @property
    def last_seq(self) -> int: ...

    @property
    def last_ts(self) -> int: ...

    def position(self, seq: int) -> int:
        """The journal position of command ``seq`` (market data carries it): the command seq in the
        file journal, the stream sequence of the message holding it in the replicated one."""
        ...

    def append_batch(self, records: Sequence[tuple[int, Command]]) -> None: ...

    def append_encoded(self, records: Sequence[tuple[int, int, bytes]]) -> None: ...

    def replay(self, after_seq: int = 0) -> Iterator[tuple[int, Command]]: ...

    def replay_raw(self, after_seq: int = 0) -> Iterator[tuple[int, bytes]]: ...

    def client_order_ids(self) -> Iterator[tuple[str, str]]: ...

    def close(self) -> None: ...


@runtime_checkable
class TaggingJournal(Protocol):
    """A journal that can store, beside commands, the id of the request each came from
    (``journal.sequencer.REQUEST_ID``): the replicated journal does, so a new leader can answer a
    request retried across a failover with the first outcome."""

    def append_tagged(self, records: Sequence[tuple[int, int, bytes]], tags: dict[int, str]) -> None: ...
