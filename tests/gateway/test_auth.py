"""REST authentication and roles against a live server."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.gateway.fakes import Keyring
from venueclient import VenueClient, generate_keypair
from venueclient.signing import sign, signing_payload


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _send(url: str, key: Keyring | None, method: str, path: str, body: bytes = b"", *,
                ts: int | None = None, private_key: bytes | None = None, sign_path: str | None = None,
                sign_body: bytes | None = None, key_id: str | None = None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key is not None:
        stamp = _now_ms() if ts is None else ts
        payload = signing_payload(stamp, method, sign_path or path, body if sign_body is None else sign_body)
        headers.update({"OMN-Key": key_id or key.key_id, "OMN-Timestamp": str(stamp),
                        "OMN-Signature": sign(private_key or key.private_key, payload)})
    async with httpx.AsyncClient(base_url=url) as http:
        return await http.request(method, path, content=body, headers=headers)


def _code(resp: httpx.Response) -> str:
    code: str = resp.json()["error"]["code"]
    return code


async def test_signed_request_is_accepted(url: str, keys: dict[str, Keyring]) -> None:
    resp = await _send(url, keys["alice"], "GET", "/v1/instruments")
    assert resp.status_code == 200
    assert [i["symbol"] for i in resp.json()] == ["OMN-A", "OMN-B"]


async def test_missing_headers(url: str) -> None:
    resp = await _send(url, None, "GET", "/v1/instruments")
    assert (resp.status_code, _code(resp)) == (401, "MISSING_AUTH")


async def test_unknown_key(url: str, keys: dict[str, Keyring]) -> None:
    resp = await _send(url, keys["alice"], "GET", "/v1/instruments", key_id="k-nobody")
    assert (resp.status_code, _code(resp)) == (401, "UNKNOWN_KEY")


async def test_signature_by_another_key(url: str, keys: dict[str, Keyring]) -> None:
    other, _ = generate_keypair()
    resp = await _send(url, keys["alice"], "GET", "/v1/instruments", private_key=other)
    assert (resp.status_code, _code(resp)) == (401, "BAD_SIGNATURE")


async def test_bob_cannot_sign_as_alice(url: str, keys: dict[str, Keyring]) -> None:
    resp = await _send(url, keys["alice"], "GET", "/v1/orders", private_key=keys["bob"].private_key)
    assert (resp.status_code, _code(resp)) == (401, "BAD_SIGNATURE")


async def test_tampered_body_and_path(url: str, keys: dict[str, Keyring]) -> None:
    body = b'{"symbol":"OMN-A","side":"buy","qty":"1","price":"1"}'
    resp = await _send(url, keys["alice"], "POST", "/v1/orders", body, sign_body=body.replace(b'"1"}', b'"2"}'))
    assert (resp.status_code, _code(resp)) == (401, "BAD_SIGNATURE")
    resp = await _send(url, keys["alice"], "GET", "/v1/orders?symbol=OMN-A", sign_path="/v1/orders?symbol=OMN-B")
    assert (resp.status_code, _code(resp)) == (401, "BAD_SIGNATURE")


@pytest.mark.parametrize("skew_ms", [-60_000, 60_000])
async def test_expired_or_future_timestamp(url: str, keys: dict[str, Keyring], skew_ms: int) -> None:
    resp = await _send(url, keys["alice"], "GET", "/v1/instruments", ts=_now_ms() + skew_ms)
    assert (resp.status_code, _code(resp)) == (401, "EXPIRED_SIGNATURE")


async def test_garbage_timestamp_and_signature(url: str, keys: dict[str, Keyring]) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        resp = await http.get("/v1/instruments", headers={"OMN-Key": keys["alice"].key_id, "OMN-Timestamp": "soon",
                                                          "OMN-Signature": "x"})
        assert (resp.status_code, _code(resp)) == (401, "EXPIRED_SIGNATURE")
        resp = await http.get("/v1/instruments", headers={"OMN-Key": keys["alice"].key_id,
                                                          "OMN-Timestamp": str(_now_ms()),
                                                          "OMN-Signature": "!!not base64!!"})
        assert (resp.status_code, _code(resp)) == (401, "BAD_SIGNATURE")


async def test_identical_request_replayed_within_window_is_refused(url: str, keys: dict[str, Keyring]) -> None:
    ts = _now_ms()
    first = await _send(url, keys["alice"], "GET", "/v1/orders", ts=ts)
    again = await _send(url, keys["alice"], "GET", "/v1/orders", ts=ts)
    assert first.status_code == 200
    assert (again.status_code, _code(again)) == (401, "REPLAYED_REQUEST")


async def test_roles_are_separate(url: str, keys: dict[str, Keyring]) -> None:
    resp = await _send(url, keys["alice"], "POST", "/v1/operator/instruments/OMN-A/status", b'{"status":"halted"}')
    assert (resp.status_code, _code(resp)) == (403, "FORBIDDEN")
    resp = await _send(url, keys["op"], "POST", "/v1/orders", b'{"symbol":"OMN-A","side":"buy","qty":"1","price":"1"}')
    assert (resp.status_code, _code(resp)) == (403, "FORBIDDEN")
    resp = await _send(url, keys["op"], "GET", "/v1/instruments/OMN-A/book")
    assert resp.status_code == 200


async def test_client_timestamps_never_repeat(url: str, keys: dict[str, Keyring]) -> None:
    async with VenueClient(url, keys["alice"].key_id, keys["alice"].private_key) as c:
        results = [await c.my_orders() for _ in range(30)]  # identical requests, same millisecond
    assert results == [[]] * 30


async def test_open_routes_need_no_signature(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        spec = (await http.get("/openapi.json")).json()
    assert "/v1/orders" in spec["paths"]
    assert set(spec["components"]["securitySchemes"]) == {"key", "timestamp", "signature"}
