"""The published signing test vectors (docs/api/signing-vectors.json) hold for the real code, and the
Node.js example in the docs reproduces them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest

from gateway.auth import Authenticator
from gateway.ports import VenuePort
from market import ApiKey, Role
from venueclient.signing import login_payload, public_key_of, sign, signing_payload

DOCS = Path(__file__).resolve().parents[2] / "docs"
VECTORS = json.loads((DOCS / "api" / "signing-vectors.json").read_text())


def _payload(v: dict[str, Any]) -> bytes:
    if v["method"] == "LOGIN":
        return login_payload(v["ts_ms"], v["nonce"])
    return signing_payload(v["ts_ms"], v["method"], v["path"], v["body"].encode())


class _OneKey:
    def __init__(self, key: ApiKey) -> None:
        self.key = key

    def api_key(self, key_id: str) -> ApiKey | None:
        return self.key if key_id == self.key.key_id else None


def test_public_key_belongs_to_the_private_key() -> None:
    assert public_key_of(VECTORS["private_key_hex"]).hex() == VECTORS["public_key_hex"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_vector_payload_and_signature_match_the_signing_code(vector: dict[str, Any]) -> None:
    payload = _payload(vector)
    # the layout the docs state, built independently of the code
    body = vector["nonce"] if vector["method"] == "LOGIN" else vector["body"]
    assert payload == f"{vector['ts_ms']}\n{vector['method']}\n{vector['path']}\n{body}".encode()
    assert payload.hex() == vector["payload_hex"]
    assert sign(VECTORS["private_key_hex"], payload) == vector["signature_base64"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_gateway_accepts_the_documented_signature(vector: dict[str, Any]) -> None:
    key = ApiKey(key_id="vec-key", participant="vec", role=Role.TRADER,
                 public_key=bytes.fromhex(VECTORS["public_key_hex"]))
    auth = Authenticator(cast(VenuePort, _OneKey(key)), window_s=5.0, clock=lambda: vector["ts_ms"] / 1000)
    if vector["method"] == "LOGIN":
        assert auth.verify_login("vec-key", vector["ts_ms"], vector["signature_base64"], vector["nonce"]) == key
    else:
        headers = {"omn-key": "vec-key", "omn-timestamp": str(vector["ts_ms"]),
                   "omn-signature": vector["signature_base64"]}
        assert auth.verify_rest(vector["method"], vector["path"].encode(), headers, vector["body"].encode()) == key


def test_node_example_reproduces_the_vectors() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Node.js signing example cannot be checked")
    done = subprocess.run([node, str(DOCS / "api" / "examples" / "sign.mjs")], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines == [{"name": v["name"], "payload_hex": v["payload_hex"], "signature_base64": v["signature_base64"]}
                     for v in VECTORS["vectors"]]
