"""Append-only command journal: segment files of length + crc32 + seq + payload records.

Layout of a directory: ``journal-<first seq, 20 digits>.log`` segments, each starting with an
8-byte magic, then records::

    u32 flags|length | u32 crc32(flags|length, seq, payload) | u64 command seq | payload (codec bytes)

The top bit of the first word marks the last record of a batch (one write + one fsync). Only the
batch in flight at a crash may be damaged, and it was never acknowledged because its fsync had
not returned: ``open`` truncates such a torn tail back to the last valid record. If a complete,
checksummed batch end exists *after* the damage, acknowledged data was hit, which is never
repaired silently: ``JournalCorruptError``, as for damage in older segments or a sequence gap.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Self

from engine.messages import Command
from journal import codec
from journal.errors import JournalCorruptError, JournalError, JournalWriteError

MAGIC = b"OMNJRNL1"
_HEADER = struct.Struct("<IIQ")
MAX_RECORD_BYTES = 1 << 20
_END_OF_BATCH = 1 << 31
_LENGTH_MASK = _END_OF_BATCH - 1
DEFAULT_SEGMENT_BYTES = 64 << 20
_SEGMENT_RE = re.compile(r"^journal-(\d{20})\.log$")


def segment_name(first_seq: int) -> str:
    return f"journal-{first_seq:020d}.log"


def fsync_directory(directory: Path) -> None:
    """Make a create/rename inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Segment:
    first_seq: int
    path: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class _Scan:
    last_seq: int  # first_seq - 1 when the segment holds no record
    last_payload: bytes | None
    valid_end: int  # offset just after the last valid record
    damage: str | None  # why the scan stopped before EOF


def _crc(word: int, seq: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(word.to_bytes(4, "little") + seq.to_bytes(8, "little")))


def _records(f: BinaryIO, first_seq: int, start: int, end: int) -> Iterator[tuple[int, bytes, int]]:
    """Yield (seq, payload, end offset) of valid records; stop at the first damaged one.

    The caller learns about damage by comparing the last end offset with ``end``."""
    f.seek(start)
    offset = start
    expected = first_seq
    while offset < end:
        if end - offset < _HEADER.size:
            return
        word, crc, seq = _HEADER.unpack(f.read(_HEADER.size))
        length = word & _LENGTH_MASK
        if length > MAX_RECORD_BYTES or offset + _HEADER.size + length > end:
            return
        payload = f.read(length)
        if len(payload) != length or _crc(word, seq, payload) != crc:
            return
        if seq != expected:
            # A checksummed record with the wrong number is not a torn write: a bug or a foreign file.
            name = getattr(f, "name", "?")
            raise JournalCorruptError(f"{name}: record at offset {offset} has seq {seq}, expected {expected}")
        offset += _HEADER.size + length
        expected += 1
        yield seq, payload, offset


def _scan(path: Path, first_seq: int) -> _Scan:
    size = path.stat().st_size
    last_seq, last_payload, valid_end = first_seq - 1, None, len(MAGIC)
    with path.open("rb") as f:
        magic = f.read(len(MAGIC))
        if magic != MAGIC:
            if size <= len(MAGIC) and MAGIC.startswith(magic):
                # Crash while creating the segment: no record can have been acknowledged in it.
                return _Scan(last_seq=last_seq, last_payload=None, valid_end=0, damage="torn segment header")
            raise JournalCorruptError(f"{path}: not a journal segment (bad magic)")
        for seq, payload, end in _records(f, first_seq, len(MAGIC), size):
            last_seq, last_payload, valid_end = seq, payload, end
        if valid_end != size:
            _check_no_batch_after(f, path, valid_end, size, last_seq)
    damage = None if valid_end == size else f"{size - valid_end} bytes of damaged tail after seq {last_seq}"
    return _Scan(last_seq=last_seq, last_payload=last_payload, valid_end=valid_end, damage=damage)


def _check_no_batch_after(f: BinaryIO, path: Path, damaged_at: int, size: int, last_seq: int) -> None:
    """Raise if a complete batch (checksummed record with the end flag) lies beyond the damage."""
    f.seek(damaged_at)
    data = f.read(size - damaged_at)
    for off in range(1, len(data) - _HEADER.size + 1):
        word, crc, seq = _HEADER.unpack_from(data, off)
        length = word & _LENGTH_MASK
        if not word & _END_OF_BATCH or seq <= last_seq or length > MAX_RECORD_BYTES:
            continue
        end = off + _HEADER.size + length
        if end <= len(data) and _crc(word, seq, data[off + _HEADER.size : end]) == crc:
            raise JournalCorruptError(
                f"{path.name}: damage at offset {damaged_at} precedes the complete batch ending at seq {seq}"
            )


class Journal:
    """Single-writer append-only journal. ``append_batch`` is called from one thread at a time."""

    def __init__(
        self,
        directory: Path,
        segments: list[_Segment],
        last_seq: int,
        last_ts: int,
        max_segment_bytes: int,
        repaired: str | None,
    ) -> None:
        self.directory = directory
        self._segments = segments
        self._last_seq = last_seq
        self._last_ts = last_ts
        self._max_segment_bytes = max_segment_bytes
        self._file: BinaryIO | None = None
        self._size = 0
        self._failed: str | None = None
        self._lock_fd: int | None = None
        self.repaired = repaired  # description of a truncated torn tail, None if the journal was clean

    # ------------------------------------------------------------ opening

    @classmethod
    def open(cls, directory: Path | str, *, max_segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> Self:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        lock_fd = _lock(directory)
        try:
            journal = cls._open_locked(directory, max_segment_bytes)
        except BaseException:
            os.close(lock_fd)
            raise
        journal._lock_fd = lock_fd
        return journal

    @classmethod
    def _open_locked(cls, directory: Path, max_segment_bytes: int) -> Self:
        segments = _list_segments(directory)
        last_seq, last_ts, repaired = 0, 0, None
        if segments:
            tail = segments[-1]
            scan = _scan(tail.path, tail.first_seq)
            if scan.damage is not None:
                repaired = f"{tail.path.name}: truncated {scan.damage}"
                _truncate(tail.path, scan.valid_end)
            last_seq = scan.last_seq
            payload = scan.last_payload
            if payload is None and len(segments) > 1:
                # Empty newest segment: the previous one holds the last record (checked strictly).
                prev = segments[-2]
                prev_scan = _scan(prev.path, prev.first_seq)
                if prev_scan.damage is not None or prev_scan.last_seq != tail.first_seq - 1:
                    raise JournalCorruptError(f"{prev.path.name}: damaged or incomplete before {tail.path.name}")
                payload = prev_scan.last_payload
            if payload is not None:
                last_ts = codec.decode(payload).ts
        journal = cls(directory, segments, last_seq, last_ts, max_segment_bytes, repaired)
        journal._open_tail()
        return journal

    def _open_tail(self) -> None:
        if not self._segments:
            self._new_segment(self._last_seq + 1)
            return
        tail = self._segments[-1]
        self._file = tail.path.open("r+b", buffering=0)
        self._file.seek(0, os.SEEK_END)
        self._size = self._file.tell()
        if self._size == 0:
            self._write_all(MAGIC)
            os.fsync(self._file.fileno())

    def _new_segment(self, first_seq: int) -> None:
        if self._file is not None:
            self._file.close()
        path = self.directory / segment_name(first_seq)
        self._file = path.open("xb", buffering=0)
        self._size = 0
        self._write_all(MAGIC)
        os.fsync(self._file.fileno())
        fsync_directory(self.directory)
        self._segments.append(_Segment(first_seq=first_seq, path=path))

    # ------------------------------------------------------------ state

    @property
    def last_seq(self) -> int:
        """Sequence number of the last durable command (0 for an empty journal)."""
        return self._last_seq

    @property
    def last_ts(self) -> int:
        """Timestamp of the last durable command (0 for an empty journal)."""
        return self._last_ts

    def position(self, seq: int) -> int:
        """Where command ``seq`` lies in this journal: its own seq (the replicated journal answers
        with the stream sequence of the message holding it)."""
        return seq

    # ------------------------------------------------------------ writing

    def append_batch(self, records: Sequence[tuple[int, Command]]) -> None:
        """Append ``(seq, command)`` records with one write and one fsync.

        Sequence numbers must continue ``last_seq`` without gaps. When this returns, every record
        is durable. On an I/O error the journal refuses further appends (reopen to repair the tail).
        Nothing is written if any command fails to encode (``CodecError``).
        """
        self.append_encoded([(seq, cmd.ts, codec.encode(cmd)) for seq, cmd in records])

    def append_encoded(self, records: Sequence[tuple[int, int, bytes]]) -> None:
        """``append_batch`` for ``(seq, ts, codec payload)`` records encoded by the caller."""
        if self._failed is not None:
            raise JournalWriteError(f"journal failed earlier ({self._failed}); reopen it")
        if self._file is None:
            raise JournalError("journal is closed")
        if not records:
            return
        expected = self._last_seq + 1
        parts: list[bytes] = []
        last_index = len(records) - 1
        for i, (seq, _ts, payload) in enumerate(records):
            if seq != expected:
                raise JournalError(f"append out of order: got seq {seq}, expected {expected}")
            if len(payload) > MAX_RECORD_BYTES:
                raise JournalError(f"record {seq} is {len(payload)} bytes, limit {MAX_RECORD_BYTES}")
            word = len(payload) | (_END_OF_BATCH if i == last_index else 0)
            parts.append(_HEADER.pack(word, _crc(word, seq, payload), seq))
            parts.append(payload)
            expected += 1
        data = b"".join(parts)
        try:
            if self._size > len(MAGIC) and self._size + len(data) > self._max_segment_bytes:
                self._new_segment(records[0][0])
            self._write_all(data)
            os.fsync(self._file.fileno())
        except OSError as exc:
            self._failed = f"{type(exc).__name__}: {exc}"
            raise JournalWriteError(f"journal append failed: {exc}") from exc
        self._last_seq = records[-1][0]
        self._last_ts = records[-1][1]

    def _write_all(self, data: bytes) -> None:
        assert self._file is not None
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            if written is None:  # pragma: no cover - only for non-blocking files
                raise OSError("non-blocking write")
            view = view[written:]
            self._size += written

    # ------------------------------------------------------------ reading

    def replay(self, after_seq: int = 0) -> Iterator[tuple[int, Command]]:
        """Yield every durable ``(seq, command)`` with seq > ``after_seq``, in order."""
        for seq, payload in self.replay_raw(after_seq):
            yield seq, codec.decode(payload)

    def client_order_ids(self) -> Iterator[tuple[str, str]]:
        """``(participant, client_order_id)`` of every journaled new order that has one (recovery)."""
        for _, payload in self.replay_raw(0):
            ids = codec.client_order_id_of(payload)
            if ids is not None:
                yield ids

    def replay_raw(self, after_seq: int = 0) -> Iterator[tuple[int, bytes]]:
        segments = list(self._segments)
        limit_seq = self._last_seq
        for i, seg in enumerate(segments):
            next_first = segments[i + 1].first_seq if i + 1 < len(segments) else None
            if next_first is not None and next_first <= after_seq + 1:
                continue
            end_seq = (next_first - 1) if next_first is not None else limit_seq
            if end_seq < seg.first_seq:
                continue
            last = seg.first_seq - 1
            with seg.path.open("rb") as f:
                if f.read(len(MAGIC)) != MAGIC:
                    raise JournalCorruptError(f"{seg.path.name}: bad magic")
                size = seg.path.stat().st_size
                for seq, payload, _end in _records(f, seg.first_seq, len(MAGIC), size):
                    if seq > end_seq:
                        break
                    last = seq
                    if seq > after_seq:
                        yield seq, payload
            if last != end_seq:
                raise JournalCorruptError(f"{seg.path.name}: damaged after seq {last}, expected up to {end_seq}")

    # ------------------------------------------------------------ closing

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _list_segments(directory: Path) -> list[_Segment]:
    segments = []
    for path in directory.iterdir():
        m = _SEGMENT_RE.match(path.name)
        if m:
            segments.append(_Segment(first_seq=int(m.group(1)), path=path))
    segments.sort(key=lambda s: s.first_seq)
    return segments


def _lock(directory: Path) -> int:
    """One writer per journal directory; the kernel drops the lock when the process dies."""
    fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalError(f"journal {directory} is open in another process or handle") from None
    return fd


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as f:
        f.truncate(size)
        os.fsync(f.fileno())


def read_commands(directory: Path | str, after_seq: int = 0) -> Iterable[tuple[int, Command]]:
    """Replay a journal directory without keeping it open (tools, store rebuild)."""
    with contextlib.closing(Journal.open(directory)) as journal:
        yield from journal.replay(after_seq)
