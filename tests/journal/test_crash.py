"""Short version of ``scripts/crash_test.py``: SIGKILL the node at random points, restart, verify."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from journal.journal import segment_name

REPO = Path(__file__).resolve().parents[2]


def _crash_test() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_test", REPO / "scripts" / "crash_test.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crash_test"] = module
    spec.loader.exec_module(module)
    return module


def _engine() -> str:
    return "engine:Engine"


@pytest.mark.slow
def test_kills_lose_nothing_acknowledged(tmp_path: Path) -> None:
    ct = _crash_test()
    args = ct.parse_args(
        [
            "--dir",
            str(tmp_path / "node"),
            "--orders",
            "500",
            "--kills",
            "5",
            "--seed",
            "7",
            "--snapshot-every",
            "60",
            "--tear",
            "0.6",
            "--engine",
            _engine(),
            "--store-url",
            f"sqlite:///{tmp_path / 'store.sqlite'}",
        ]
    )
    report = ct.Driver(args).run()
    assert report["problems"] == []
    assert report["ok"] and report["kills"] == 5
    assert report["acknowledged"] > 100
    assert report["store"]["orders"] >= report["acknowledged_orders"]


@pytest.mark.slow
def test_the_checker_notices_lost_acknowledged_commands(tmp_path: Path) -> None:
    """The verification must be able to fail: drop acknowledged records and check again."""
    ct = _crash_test()
    args = ct.parse_args(
        [
            "--dir",
            str(tmp_path),
            "--orders",
            "120",
            "--kills",
            "1",
            "--seed",
            "3",
            "--snapshot-every",
            "0",
            "--engine",
            _engine(),
        ]
    )
    driver = ct.Driver(args)
    report = driver.run()
    assert report["ok"], report["problems"]
    segment = tmp_path / segment_name(1)
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - 300])  # lose the last few (acknowledged) records
    driver.problems.clear()
    again = driver.verify({"applied_seq": report["journal_commands"], "engine_sha256": "x", "l2": {}})
    assert not again["ok"]
    text = json.dumps(again["problems"])
    assert "is not in the journal (lost)" in text
    assert "differs from a clean replay" in text
