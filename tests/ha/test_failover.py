"""Leader + hot standby on a three-node NATS cluster (scripts/failover.py): SIGKILL the leader at
random points, SIGSTOP one and resume it after the standby took over (it must be fenced and
exit), kill a NATS node; nothing acknowledged is lost or doubled, the book equals a clean replay
of the stream, every trade settles on chain exactly once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.ha.cluster import nats_server_binary

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.anvil
def test_failover_loses_nothing_and_fences_a_paused_leader(tmp_path: Path) -> None:
    if nats_server_binary() is None:
        pytest.skip("nats-server is not installed")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "failover.py"), "--kills", "2", "--seed", "5", "--seconds", "1.5",
         "--dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert out.strip().endswith("OK"), out
    assert "failovers: 3; fenced: True" in out, out
    assert "killed NATS node" in out, out
    assert "main phase OK" in out, out
