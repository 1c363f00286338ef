"""Deploying to and running on a JSON-RPC node with configured keys (issue 19): ``venue deploy
--chain http://node`` with the admin and settler keys from a file and the environment, never
printed; ``venue run``'s chain (``open_chain``) then signs operator chain actions with the admin
key. Against a real anvil node, used as if it were Base."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from settlement import Chain
from settlement.deploy import DemoAdmin, DemoDeployment
from tests.venue.conftest import free_port
from venue.boot import deploy_or_load, open_chain
from venue.cli import main
from venue.config import load_config

pytestmark = pytest.mark.anvil


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


@pytest.mark.slow
def test_venue_run_on_the_node_writes_json_log_lines_and_stops_on_sigterm(
        node: Chain, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = node.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    admin_key, settler_key = (node.private_key(a).hex() for a in node.accounts[3:5])
    (tmp_path / "admin.key").write_text(admin_key)
    (tmp_path / "settler.key").write_text(settler_key)
    env = {**os.environ, "VENUE_CHAIN": url, "VENUE_DATA_DIR": str(tmp_path / "var"),
           "VENUE_ADMIN_KEY_FILE": str(tmp_path / "admin.key"), "VENUE_SETTLER_KEY_FILE": str(tmp_path / "settler.key")}
    deploy = subprocess.run([sys.executable, "-m", "venue.cli", "deploy"], env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert deploy.returncode == 0, deploy.stderr
    proc = subprocess.Popen([sys.executable, "-m", "venue.cli", "run", "--port", str(free_port())], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while "listening" not in (proc.stdout.readline() or "") and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines()]  # every line is one JSON object
    messages = [x["msg"] for x in lines]
    assert any(m.startswith("venue started") for m in messages)
    assert any(m.startswith("venue listening") for m in messages)
    assert messages[-1].startswith("venue stopped")
    assert all({"ts", "level", "logger", "msg"} <= set(x) for x in lines)
    assert admin_key not in err and settler_key not in err
