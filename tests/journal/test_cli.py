from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import AddInstrument, Command
from journal import Journal
from journal.__main__ import main
from journal.snapshot import default_engine_factory, encode_snapshot, list_snapshots, load_snapshot
from tests.journal.commands import SPEC, order
from tests.journal.test_recover import _run


async def _journal(directory: Path) -> None:
    commands: list[Command] = [AddInstrument(ts=0, spec=SPEC), *[order(i, price=100 + i % 3) for i in range(10)]]
    await _run(directory, default_engine_factory(), commands, snapshot_after={4, 8})


async def test_info_dump_and_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await _journal(tmp_path)
    assert main(["info", str(tmp_path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["last_seq"], info["snapshots"], info["repaired"]) == (11, [4, 8], None)
    assert main(["dump", str(tmp_path), "--after", "9", "--limit", "1"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["seq"] == 10
    assert main(["verify", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "last_seq": 11, "problems": []}


async def test_verify_finds_a_snapshot_that_does_not_match_the_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _journal(tmp_path)
    path = list_snapshots(tmp_path)[0]
    snap = load_snapshot(path)
    state = dict(snap.engine, next_order_id=snap.engine["next_order_id"] + 1)  # consistent checksum, wrong state
    path.write_bytes(encode_snapshot(snap.command_seq, snap.last_ts, state))
    assert main(["verify", str(tmp_path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"]
    assert report["problems"] == [
        f"{path.name}: differs from the replayed engine state at seq 4 (written by another engine version, or damaged)"
    ]


async def test_a_journal_in_use_or_missing_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await _journal(tmp_path)
    with Journal.open(tmp_path):
        assert main(["info", str(tmp_path)]) == 2
    assert "open in another process" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err
