"""Issue 12 item 3: the signed-request replay memory survives a restart of the gateway process."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.auth import Authenticator
from gateway.errors import ApiError
from gateway.ports import ApiKey
from tests.gateway.fakes import make_key
from venueclient.signing import sign, signing_payload

NOW_S = 1_800_000_000.0


class _Keys:
    def __init__(self, key: ApiKey) -> None:
        self._key = key

    def api_key(self, key_id: str) -> ApiKey | None:
        return self._key if key_id == self._key.key_id else None


def _headers(private_key: bytes, key_id: str, ts_ms: int, body: bytes) -> dict[str, str]:
    return {"omn-key": key_id, "omn-timestamp": str(ts_ms),
            "omn-signature": sign(private_key, signing_payload(ts_ms, "POST", "/v1/orders", body))}


def _auth(path: Path | None, now_s: float) -> Authenticator:
    key = make_key("alice")
    return Authenticator(_Keys(key.api_key), window_s=10, clock=lambda: now_s, memory_path=path)  # type: ignore[arg-type]


def test_a_request_accepted_before_a_restart_is_refused_after_it(tmp_path: Path) -> None:
    key = make_key("alice")
    keys = _Keys(key.api_key)
    body = b'{"client_order_id":"x"}'
    headers = _headers(key.private_key, key.key_id, int(NOW_S * 1000), body)
    path = tmp_path / "replay-memory.log"
    before = Authenticator(keys, window_s=10, clock=lambda: NOW_S, memory_path=path)  # type: ignore[arg-type]
    assert before.verify_rest("POST", b"/v1/orders", headers, body).key_id == key.key_id
    before.close()  # the process is gone; only the file remains
    after = Authenticator(keys, window_s=10, clock=lambda: NOW_S + 2.6, memory_path=path)  # type: ignore[arg-type]
    with pytest.raises(ApiError) as refused:
        after.verify_rest("POST", b"/v1/orders", headers, body)
    assert refused.value.code == "REPLAYED_REQUEST"
    fresh = _headers(key.private_key, key.key_id, int(NOW_S * 1000) + 2600, body)
    assert after.verify_rest("POST", b"/v1/orders", fresh, body).key_id == key.key_id
    after.close()


def test_the_file_keeps_only_live_entries_and_tolerates_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "replay-memory.log"
    live, old = int(NOW_S * 1000) + 5_000, int(NOW_S * 1000) - 1
    path.write_text(f"{old} expired-sig\n{live} live-sig\n12")  # the last line was cut by a crash
    auth = _auth(path, NOW_S)
    assert path.read_text() == f"{live} live-sig\n"
    auth.close()


def test_without_a_path_nothing_is_written(tmp_path: Path) -> None:
    auth = _auth(None, NOW_S)
    auth.close()
    assert list(tmp_path.iterdir()) == []
