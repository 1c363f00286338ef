"""Engine snapshots and crash recovery (latest valid snapshot + replay of the journal after it).

A snapshot file ``snapshot-<command seq, 20 digits>.json`` holds a sha256 line and then one JSON
document ``{"format", "command_seq", "last_ts", "engine"}``. It is written to a temporary file,
fsynced, renamed into place and the directory fsynced, so a crash leaves either the old set of
snapshots or the new one; a file failing its checksum is skipped (the previous one is used).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, overload

from engine import Engine
from engine.messages import Command, Result
from journal.backend import CommandJournal
from journal.errors import JournalError, SnapshotError
from journal.journal import Journal, fsync_directory

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 1
KEEP_SNAPSHOTS = 3
_SNAPSHOT_RE = re.compile(r"^snapshot-(\d{20})\.json$")


class EngineLike(Protocol):
    """What the journal needs from ``engine.Engine``."""

    def process(self, cmd: Command) -> Result: ...

    def snapshot(self) -> dict[str, Any]: ...


E = TypeVar("E", bound=EngineLike)
REPLAY_BATCH = 4096  # commands per ``process_many`` call during recovery


def batch_processor(engine: EngineLike) -> Callable[[Sequence[Command]], Sequence[Result]] | None:
    """The engine's ``process_many`` (one call per batch; both real engines have it), else None."""
    many: Callable[[Sequence[Command]], Sequence[Result]] | None = getattr(engine, "process_many", None)
    return many


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineFactory(Generic[E]):
    """How to make an engine: empty, or from a snapshot dict. Defaults to ``engine.Engine``."""

    new: Callable[[], E]
    from_snapshot: Callable[[dict[str, Any]], E]


def default_engine_factory() -> EngineFactory[Engine]:
    return EngineFactory(new=Engine, from_snapshot=Engine.from_snapshot)


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    command_seq: int
    last_ts: int
    engine: dict[str, Any]
    path: Path


def snapshot_name(command_seq: int) -> str:
    return f"snapshot-{command_seq:020d}.json"


def encode_snapshot(command_seq: int, last_ts: int, engine_state: dict[str, Any]) -> bytes:
    body = json.dumps(
        {"format": SNAPSHOT_FORMAT, "command_seq": command_seq, "last_ts": last_ts, "engine": engine_state},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    return hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def write_snapshot_bytes(directory: Path | str, command_seq: int, data: bytes, *, keep: int = KEEP_SNAPSHOTS) -> Path:
    """Atomically place an encoded snapshot in ``directory``; prune all but the newest ``keep``."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / snapshot_name(command_seq)
        tmp = directory / f"{final.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        fsync_directory(directory)
        for old in list_snapshots(directory)[:-keep] if keep > 0 else []:
            old.unlink(missing_ok=True)
    except OSError as exc:
        raise SnapshotError(f"cannot write snapshot {command_seq} in {directory}: {exc}") from exc
    return final


def list_snapshots(directory: Path) -> list[Path]:
    """Snapshot files, oldest first."""
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _SNAPSHOT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def load_snapshot(path: Path) -> Snapshot:
    """Read and verify one snapshot file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"{path.name}: {exc}") from exc
    digest, sep, body = raw.partition(b"\n")
    if not sep or hashlib.sha256(body).hexdigest().encode() != digest:
        raise SnapshotError(f"{path.name}: checksum mismatch")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise SnapshotError(f"{path.name}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError(f"{path.name}: unsupported snapshot format")
    seq, ts, state = doc.get("command_seq"), doc.get("last_ts"), doc.get("engine")
    if type(seq) is not int or type(ts) is not int or not isinstance(state, dict):
        raise SnapshotError(f"{path.name}: malformed snapshot document")
    return Snapshot(command_seq=seq, last_ts=ts, engine=state, path=path)


def latest_snapshot(directory: Path | str, *, max_seq: int | None = None) -> Snapshot | None:
    """Newest snapshot that verifies (and is not beyond ``max_seq``); damaged files are skipped."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    for path in reversed(list_snapshots(directory)):
        try:
            snap = load_snapshot(path)
        except SnapshotError as exc:
            log.warning("skipping snapshot: %s", exc)
            continue
        if max_seq is not None and snap.command_seq > max_seq:
            raise SnapshotError(
                f"{path.name} is at command {snap.command_seq} but the journal ends at {max_seq}:"
                " journal data is missing"
            )
        return snap
    return None


@overload
def recover(
    directory: Path | str, *, journal: CommandJournal | None = None, factory: None = None
) -> tuple[Engine, int]: ...


@overload
def recover(
    directory: Path | str, *, journal: CommandJournal | None = None, factory: EngineFactory[E]
) -> tuple[E, int]: ...


def recover(
    directory: Path | str,
    *,
    journal: CommandJournal | None = None,
    factory: EngineFactory[Any] | None = None,
) -> tuple[Any, int]:
    """Rebuild the engine: latest snapshot + replay of the journal after it.

    Returns ``(engine, last_command_seq)``. ``journal`` may be an already open journal on
    ``directory`` (it stays open); otherwise the directory's journal is opened (repairing a torn
    tail) and closed again.
    """
    factory = factory or default_engine_factory()
    own = journal is None
    jr: CommandJournal = Journal.open(directory) if journal is None else journal
    for stale in Path(directory).glob("snapshot-*.tmp"):
        stale.unlink(missing_ok=True)  # a snapshot write cut short by a crash; nothing refers to it
    try:
        snap = latest_snapshot(directory, max_seq=jr.last_seq)
        if snap is None:
            engine, seq = factory.new(), 0
        else:
            try:
                engine = factory.from_snapshot(snap.engine)
            except (KeyError, TypeError, ValueError) as exc:
                raise SnapshotError(f"{snap.path.name}: engine rejected the snapshot: {exc}") from exc
            seq = snap.command_seq
        many = batch_processor(engine)
        chunk: list[Command] = []
        for cmd_seq, cmd in jr.replay(after_seq=seq):
            if many is None:
                engine.process(cmd)
            else:
                chunk.append(cmd)
                if len(chunk) >= REPLAY_BATCH:
                    many(chunk)  # compact results, never turned into event objects
                    chunk = []
            seq = cmd_seq
        if chunk:
            assert many is not None
            many(chunk)
        if seq != jr.last_seq:
            raise JournalError(f"replay ended at {seq}, journal says {jr.last_seq}")
        return engine, seq
    finally:
        if own:
            jr.close()
