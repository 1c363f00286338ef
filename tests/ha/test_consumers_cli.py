"""``venue run --store/--settlement external``, ``venue store-consumer`` and ``venue settler``
are refused without the replicated journal (``HA_NEEDS_NATS``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from venue.cli import main


@pytest.mark.parametrize("argv", [
    ["run", "--store", "external"],
    ["run", "--settlement", "external"],
    ["store-consumer"],
    ["settler"],
])
def test_consumers_need_a_nats_journal(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VENUE_JOURNAL_URL", raising=False)
    assert main([*argv, "--data-dir", str(tmp_path)]) == 2
    assert "HA_NEEDS_NATS" in capsys.readouterr().err
