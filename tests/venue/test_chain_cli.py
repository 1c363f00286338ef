"""``venue chain`` (issue 19's walk-through): the on-chain onboarding steps for the demo token set
on a JSON-RPC node, from the command line alone: the admin registers and funds an investor wallet,
the investor approves the DvP contract with its own key file; keys are never printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from settlement import Chain
from settlement.deploy import MAX_UINT256, DemoAdmin, DemoDeployment
from venue.cli import main

pytestmark = pytest.mark.anvil


def test_register_fund_approve_and_read_balances_from_the_cli(
        node: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    data = tmp_path / "var"
    admin_key = node.private_key(node.accounts[3]).hex()
    monkeypatch.setenv("VENUE_ADMIN_KEY", admin_key)
    monkeypatch.setenv("VENUE_SETTLER_KEY", node.private_key(node.accounts[4]).hex())
    assert main(["deploy", "--chain", url, "--data-dir", str(data)]) == 0
    capsys.readouterr()

    investor = Account.create()
    node.w3.eth.send_transaction({"from": node.accounts[0], "to": investor.address, "value": 10**18})
    common = ["--chain", url, "--data-dir", str(data)]

    assert main(["chain", "register", investor.address, "--country", "XX", *common]) == 1
    assert "INVALID_JURISDICTION" in capsys.readouterr().err  # a clear code, nothing sent

    assert main(["chain", "register", investor.address, "--country", "de", "--notes", "7", "--cash", "1500.25",
                 *common]) == 0
    registered = json.loads(capsys.readouterr().out)
    deployment = DemoDeployment.load(data / "deployment.json")
    admin = DemoAdmin(node, deployment)
    decimals = int(admin.stablecoin.functions.decimals().call())
    assert registered == {"wallet": investor.address, "country": "DE", "notes": 7,
                          "cash_units": 150025 * 10 ** (decimals - 2)}
    assert admin.registry.functions.investorCountry(investor.address).call() == 276

    key_file = tmp_path / "investor.key"
    key_file.write_text(investor.key.hex())
    assert main(["chain", "approve", "--key-file", str(key_file), *common]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["approved"] == deployment.settlement
    assert investor.key.hex().removeprefix("0x") not in out.out + out.err
    assert admin_key.removeprefix("0x") not in out.out + out.err
    for token in (admin.token, admin.stablecoin):
        assert token.functions.allowance(investor.address, deployment.settlement).call() == MAX_UINT256

    assert main(["chain", "balances", investor.address, *common]) == 0
    assert json.loads(capsys.readouterr().out)["notes"] == 7
