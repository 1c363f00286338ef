"""Deploying to and running on a JSON-RPC node with configured keys (issue 19): ``venue deploy
--chain http://node`` with the admin and settler keys from a file and the environment, never
printed; ``venue run``'s chain (``open_chain``) then signs operator chain actions with the admin
key. Against a real anvil node, used as if it were Base."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from settlement import Chain, start_anvil
from settlement.deploy import DemoAdmin, DemoDeployment
from venue.boot import deploy_or_load, open_chain
from venue.cli import main
from venue.config import load_config

pytestmark = pytest.mark.anvil


@pytest.fixture
def node() -> Iterator[Chain]:
    chain = start_anvil()
    try:
        yield chain
    finally:
        chain.close()


def test_deploy_and_run_on_a_json_rpc_node_with_configured_keys(
        node: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    admin_address, settler_address = node.accounts[3], node.accounts[4]  # not the node's first accounts
    admin_key, settler_key = node.private_key(admin_address).hex(), node.private_key(settler_address).hex()
    data = tmp_path / "var"

    code = main(["deploy", "--chain", url, "--data-dir", str(data)])
    out = capsys.readouterr()
    assert code == 1 and "ADMIN_KEY_MISSING" in out.err  # no key configured: a clear error, no traceback

    key_file = tmp_path / "admin.key"
    key_file.write_text("0x" + admin_key + "\n")
    monkeypatch.setenv("VENUE_ADMIN_KEY_FILE", str(key_file))
    monkeypatch.setenv("VENUE_SETTLER_KEY", settler_key)
    code = main(["deploy", "--chain", url, "--data-dir", str(data)])
    out = capsys.readouterr()
    assert code == 0, out.err
    deployed = json.loads(out.out)
    assert (deployed["admin"], deployed["settler"]) == (admin_address, settler_address)
    for secret in (admin_key, settler_key):
        assert secret not in out.out and secret not in out.err

    # ``venue run`` opens the same chain with both keys: the operator's chain actions are signed
    config = load_config(None, {"chain": url, "data_dir": data})
    chain = open_chain(config)
    try:
        deployment = deploy_or_load(chain, config)
        assert deployment == DemoDeployment.load(data / "deployment.json")  # reused, not redeployed
        admin = DemoAdmin(chain, deployment)
        wallet = node.accounts[5]
        admin.register_investor(wallet, 442)
        receipt = admin.freeze(wallet, True)
        assert receipt["status"] == 1
        assert chain.private_key(deployment.settler)  # the settlement service can sign
    finally:
        chain.close()
