"""The whole venue process SIGKILLed mid-flight and restarted: nothing acknowledged is lost, the
book equals a clean replay, every trade settles on chain exactly once and becomes final, a trade
declared failed stays failed, and a signed request resent after a restart does not execute twice
(scripts/crash_venue.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _crash(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "crash_venue.py"), "--seed", "5", "--dir", str(tmp_path), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )


@pytest.mark.slow
@pytest.mark.anvil
def test_sigkill_and_restart_lose_nothing(tmp_path: Path) -> None:
    proc = _crash(tmp_path, "--kills", "3", "--phases", "main,failed")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("OK")
    assert "kills: 3;" in proc.stdout
    assert "phases: main OK, failed-trade-stays-failed OK" in proc.stdout


@pytest.mark.slow
@pytest.mark.anvil
def test_a_signed_request_resent_after_a_restart_executes_once(tmp_path: Path) -> None:
    proc = _crash(tmp_path, "--kills", "0", "--phases", "retry")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "phases: retry-after-restart OK" in proc.stdout
