from __future__ import annotations

import dataclasses
import errno
import io
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import AdvanceTime, Command
from journal import Journal, JournalCorruptError, JournalError, JournalWriteError, encode
from journal.journal import MAGIC, segment_name
from tests.journal.commands import order


def _records(start: int, n: int, ts0: int = 100) -> list[tuple[int, Command]]:
    return [(s, dataclasses.replace(order(s), ts=ts0 + s)) for s in range(start, start + n)]


def _segment(directory: Path) -> Path:
    (path,) = sorted(directory.glob("journal-*.log"))
    return path


def test_appended_batches_replay_in_order_after_reopen(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        assert journal.last_seq == 0
        journal.append_batch(_records(1, 3))
        journal.append_batch(_records(4, 2))
        assert journal.last_seq == 5
    with Journal.open(tmp_path) as journal:
        assert journal.repaired is None
        assert journal.last_seq == 5
        assert journal.last_ts == 105
        assert list(journal.replay()) == _records(1, 5)
        assert [s for s, _ in journal.replay(after_seq=3)] == [4, 5]
        journal.append_batch(_records(6, 1))
        assert [s for s, _ in journal.replay()] == [1, 2, 3, 4, 5, 6]


def test_sequence_gap_or_reorder_is_refused_before_writing(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        journal.append_batch(_records(1, 2))
        size = _segment(tmp_path).stat().st_size
        with pytest.raises(JournalError, match="got seq 4, expected 3"):
            journal.append_batch(_records(4, 1))
        with pytest.raises(JournalError, match="got seq 2, expected 3"):
            journal.append_batch(_records(2, 2))
        assert _segment(tmp_path).stat().st_size == size
        assert journal.last_seq == 2


def test_every_torn_tail_is_truncated_to_the_last_whole_record(tmp_path: Path) -> None:
    src = tmp_path / "src"
    with Journal.open(src) as journal:
        journal.append_batch(_records(1, 2))
        good = _segment(src).stat().st_size
        journal.append_batch(_records(3, 2))  # the batch "in flight" at the crash
    full = _segment(src).read_bytes()
    record3_end = good + 16 + len(encode(_records(3, 1)[0][1]))
    for cut in range(good, len(full)):
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        (d / segment_name(1)).write_bytes(full[:cut])
        with Journal.open(d) as journal:
            seqs = [s for s, _ in journal.replay()]
            # A whole record of the torn batch may survive; nothing acknowledged before it is lost.
            assert seqs[:2] == [1, 2]
            assert seqs == ([1, 2, 3] if cut >= record3_end else [1, 2])
            assert (journal.repaired is None) == (cut in (good, record3_end))
            journal.append_batch([(len(seqs) + 1, AdvanceTime(ts=10_000))])
        with Journal.open(d) as journal:
            assert journal.repaired is None
            assert journal.last_seq == len(seqs) + 1


def test_corrupt_last_record_is_dropped(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        journal.append_batch(_records(1, 3))
    path = _segment(tmp_path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with Journal.open(tmp_path) as journal:
        assert journal.repaired is not None and "damaged tail after seq 2" in journal.repaired
        assert [s for s, _ in journal.replay()] == [1, 2]
        assert journal.last_ts == 102


def test_damage_before_a_complete_batch_is_corruption_not_a_torn_tail(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        journal.append_batch(_records(1, 1))
        first_end = _segment(tmp_path).stat().st_size
        journal.append_batch(_records(2, 1))
        journal.append_batch(_records(3, 1))  # acknowledged: must never be dropped silently
    path = _segment(tmp_path)
    data = bytearray(path.read_bytes())
    data[first_end + 20] ^= 0xFF  # inside record 2's payload
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match="complete batch ending at seq 3"):
        Journal.open(tmp_path)
    assert path.read_bytes() == bytes(data)  # left untouched for an operator


def test_segments_roll_and_replay_across_them(tmp_path: Path) -> None:
    with Journal.open(tmp_path, max_segment_bytes=300) as journal:
        for s in range(1, 21, 2):
            journal.append_batch(_records(s, 2))
    assert len(list(tmp_path.glob("journal-*.log"))) > 3
    with Journal.open(tmp_path, max_segment_bytes=300) as journal:
        assert journal.last_seq == 20
        assert list(journal.replay()) == _records(1, 20)
        assert [s for s, _ in journal.replay(after_seq=13)] == list(range(14, 21))


def test_damage_in_an_older_segment_is_reported_on_replay(tmp_path: Path) -> None:
    with Journal.open(tmp_path, max_segment_bytes=300) as journal:
        for s in range(1, 21, 2):
            journal.append_batch(_records(s, 2))
    oldest = sorted(tmp_path.glob("journal-*.log"))[0]
    oldest.write_bytes(oldest.read_bytes()[:-5])
    with Journal.open(tmp_path) as journal, pytest.raises(JournalCorruptError, match="damaged after seq"):
        list(journal.replay())


def test_empty_newest_segment_from_a_crash_during_roll_is_reused(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        journal.append_batch(_records(1, 2))
    (tmp_path / segment_name(3)).write_bytes(MAGIC[:3])
    with Journal.open(tmp_path) as journal:
        assert journal.last_seq == 2 and journal.last_ts == 102
        journal.append_batch(_records(3, 1))
    with Journal.open(tmp_path) as journal:
        assert [s for s, _ in journal.replay()] == [1, 2, 3]


def test_a_foreign_file_is_not_mistaken_for_a_segment(tmp_path: Path) -> None:
    (tmp_path / segment_name(1)).write_bytes(b"hello world, not a journal")
    with pytest.raises(JournalCorruptError, match="bad magic"):
        Journal.open(tmp_path)


def test_only_one_writer_per_directory(tmp_path: Path) -> None:
    with Journal.open(tmp_path), pytest.raises(JournalError, match="open in another process"):
        Journal.open(tmp_path)
    Journal.open(tmp_path).close()  # released on close


class _FullDisk(io.RawIOBase):
    """Stands in for the segment file: writes half the data, then fails like a full disk."""

    def __init__(self, real: BinaryIO) -> None:
        self.real = real

    def write(self, data: Any) -> int:
        half = bytes(data)[: max(1, len(data) // 2)]
        self.real.write(half)
        raise OSError(errno.ENOSPC, "No space left on device")

    def fileno(self) -> int:
        return self.real.fileno()

    def close(self) -> None:
        self.real.close()


def test_an_io_error_fails_the_journal_until_reopened(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.append_batch(_records(1, 1))
    assert journal._file is not None
    journal._file = _FullDisk(journal._file)  # type: ignore[assignment]
    with pytest.raises(JournalWriteError, match="No space left on device"):
        journal.append_batch(_records(2, 1))
    with pytest.raises(JournalWriteError, match="reopen"):
        journal.append_batch(_records(2, 1))
    assert journal.last_seq == 1
    journal.close()
    with Journal.open(tmp_path) as reopened:
        assert reopened.repaired is not None  # the half-written record is cut off
        assert [s for s, _ in reopened.replay()] == [1]
        reopened.append_batch(_records(2, 1))
        assert reopened.last_seq == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(min_size=1, max_size=400), keep=st.integers(0, 3))
def test_any_garbage_after_the_last_batch_is_a_torn_tail(
    tmp_path_factory: pytest.TempPathFactory, garbage: bytes, keep: int
) -> None:
    d = tmp_path_factory.mktemp("g")
    with Journal.open(d) as journal:
        journal.append_batch(_records(1, 2))
        journal.append_batch(_records(3, 2))
        if keep:  # part of a further batch made it to disk before the crash
            journal.append_batch(_records(5, 1))
    path = _segment(d)
    data = path.read_bytes()
    cut = len(data) - (keep * 7 if keep else 0)
    path.write_bytes(data[:cut] + garbage)
    with Journal.open(d) as journal:
        seqs = [s for s, _ in journal.replay()]
        assert seqs[:4] == [1, 2, 3, 4]  # everything acknowledged survives
        assert journal.last_seq == seqs[-1]
