"""The whole venue process SIGKILLed mid-flight and restarted: nothing acknowledged is lost, the
book equals a clean replay, every trade settles on chain exactly once (scripts/crash_venue.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.anvil
def test_sigkill_and_restart_lose_nothing(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "crash_venue.py"), "--kills", "3", "--seed", "5",
         "--dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("OK")
    assert "kills: 3;" in proc.stdout
