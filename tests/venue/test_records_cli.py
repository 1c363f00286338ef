"""The records commands (``venue export``, ``confirmations``, ``holders``, ``audit``): exports and
confirmations from the store alone; the audit anchor written to and verified on a real anvil node
by its JSON-RPC URL, and a rewritten log caught."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import Side
from settlement import Chain
from settlement.chain import anvil_keys
from settlement.deploy import DemoDeployment
from store import Store
from tests.store.events import CMD, accepted, fill, result
from venue.cli import main
from venue.exports import day_window

DAY = "2026-11-26"


def _store(data_dir: Path) -> Store:
    data_dir.mkdir(parents=True, exist_ok=True)
    return Store.open(f"sqlite:///{(data_dir / 'venue.sqlite').resolve()}")


def test_export_and_confirmations_read_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "var"
    store = _store(data)
    t0 = day_window(DAY)[0]
    store.project([(1, CMD, result(accepted(1, "alice", Side.SELL, 1, ts=t0 + 5),
                                   accepted(2, "bob", Side.BUY, 1, ts=t0 + 6),
                                   fill(1, maker=1, taker=2, qty=1, maker_remaining=0, taker_remaining=0, ts=t0 + 6)))])
    store.close()
    out = tmp_path / "rts22.csv"
    assert main(["export", "rts22", "--date", DAY, "--data-dir", str(data), "--mic", "XOMN", "--out", str(out)]) == 0
    assert "1 rows written" in capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["f3_trading_venue_transaction_id"], r["f7_buyer_id"], r["f36_venue"]) for r in rows] == [
        ("1", "bob", "XOMN")]
    assert main(["export", "rts24", "--date", DAY, "--data-dir", str(data)]) == 0
    events = [r["f20_order_event"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))]
    assert events == ["NEWO", "NEWO", "FILL", "FILL"]
    assert main(["confirmations", "bob", "--data-dir", str(data)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(c["trade_id"], c["side"]) for c in lines] == [(1, "buy")]


def test_bad_records_commands_get_specific_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "var"
    _store(data).close()
    assert main(["export", "rts22", "--date", "yesterday", "--data-dir", str(data)]) == 2
    assert "EXPORT_BAD_DATE" in capsys.readouterr().err
    assert main(["holders", "OMN1", "--data-dir", str(data)]) == 1  # the embedded chain is not reachable
    err = capsys.readouterr().err
    assert "REGISTER_CHAIN_ERROR" in err and "JSON-RPC URL" in err


@pytest.mark.anvil
def test_audit_anchor_then_verify_anchor_on_anvil(anvil: Chain, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "var"
    store = _store(data)
    store.append_audit("op", "participant.add", {"participant": "alice"})
    store.append_audit("op", "keys.create", {"participant": "alice"})
    store.close()
    admin, key = next(iter(anvil_keys(1).items()))
    zero = "0x" + "00" * 20
    DemoDeployment(chain_id=int(anvil.w3.eth.chain_id), settlement=zero, token=zero, identity_registry=zero,  # type: ignore[arg-type]
                   compliance=zero, stablecoin=zero, admin=admin, settler=zero).save(data / "deployment.json")  # type: ignore[arg-type]
    key_file = tmp_path / "admin.key"
    key_file.write_text(key.hex())
    url = anvil.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    common = ["--data-dir", str(data), "--chain", url]
    assert main(["audit", "verify-anchor", *common]) == 3
    assert json.loads(capsys.readouterr().out)["code"] == "ANCHOR_NONE"
    assert main(["audit", "anchor", *common, "--key-file", str(key_file)]) == 0
    anchored = json.loads(capsys.readouterr().out)
    assert anchored["audit_id"] == 2 and anchored["tx_hash"].startswith("0x")
    assert main(["audit", "verify-anchor", *common]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    engine = sa.create_engine(f"sqlite:///{(data / 'venue.sqlite').resolve()}")
    with engine.begin() as conn:  # what someone with write access to the database could do
        conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
        conn.execute(sa.text("UPDATE audit_log SET details = '{\"participant\":\"mallory\"}' WHERE id = 1"))
    engine.dispose()
    assert main(["audit", "verify-anchor", *common]) == 3
    assert json.loads(capsys.readouterr().out)["code"] == "ANCHOR_CHAIN_BROKEN"
