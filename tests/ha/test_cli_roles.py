"""``venue run --role``: refused without the replicated journal; ``leader`` refused while another
process holds the lease; ``venue gateway`` refused without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from journal.nats import NatsLoop, parse_url
from tests.ha.cluster import NatsCluster
from venue.cli import main
from venue.ha import Lease


def test_a_role_needs_a_nats_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--role", "auto", "--data-dir", str(tmp_path)]) == 2
    assert "HA_NEEDS_NATS" in capsys.readouterr().err


def test_a_gateway_process_needs_a_nats_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VENUE_JOURNAL_URL", raising=False)
    assert main(["gateway", "--data-dir", str(tmp_path)]) == 2
    assert "HA_NEEDS_NATS: venue gateway needs --journal-url" in capsys.readouterr().err


def test_leader_role_is_refused_while_the_lease_is_held(nats_node: NatsCluster, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    url = nats_node.url("CLI")
    conn = NatsLoop(parse_url(url)[0], timeout=5.0)
    try:
        lease = Lease(conn, ttl=30.0, holder="someone-else")
        assert lease.acquire()
        try:
            code = main(["run", "--role", "leader", "--journal-url", url, "--data-dir", str(tmp_path)])
        finally:
            lease.release()
        assert code == 1
        err = capsys.readouterr().err
        assert "LEASE_HELD" in err and "someone-else" in err
    finally:
        conn.close()
