"""Canonical request signing shared by the client and the gateway (the gateway imports this module).

A REST request is signed over ``f"{ts}\\n{METHOD}\\n{raw path incl. query}\\n" + body`` with the
participant's Ed25519 private key; ``ts`` is integer milliseconds since the epoch. The websocket
login signs the same layout with method ``LOGIN``, path ``/v1/ws`` and the server's nonce as body.
Signatures travel as standard base64. Keys are raw 32-byte Ed25519 keys (hex when printed).
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from venueclient.errors import KeyFormatError

HEADER_KEY = "OMN-Key"
HEADER_TIMESTAMP = "OMN-Timestamp"
HEADER_SIGNATURE = "OMN-Signature"
WS_PATH = "/v1/ws"
LOGIN_METHOD = "LOGIN"


def signing_payload(ts_ms: int, method: str, path: str | bytes, body: bytes) -> bytes:
    """The exact bytes that are signed. ``path`` is the raw request target (path plus ``?query``)."""
    raw_path = path.encode("ascii") if isinstance(path, str) else path
    return b"%d\n%s\n%s\n" % (ts_ms, method.upper().encode("ascii"), raw_path) + body


def login_payload(ts_ms: int, nonce: str) -> bytes:
    return signing_payload(ts_ms, LOGIN_METHOD, WS_PATH, nonce.encode("ascii"))


def _private_key(private_key: bytes | str) -> Ed25519PrivateKey:
    raw = _raw(private_key, "private key")
    return Ed25519PrivateKey.from_private_bytes(raw)


def _raw(key: bytes | str, what: str) -> bytes:
    if isinstance(key, str):
        try:
            key = bytes.fromhex(key)
        except ValueError as exc:
            raise KeyFormatError(f"{what} is not hex") from exc
    if len(key) != 32:
        raise KeyFormatError(f"{what} must be 32 raw bytes (64 hex characters), got {len(key)} bytes")
    return key


def sign(private_key: bytes | str, payload: bytes) -> str:
    """Base64 Ed25519 signature of ``payload``."""
    return base64.b64encode(_private_key(private_key).sign(payload)).decode("ascii")


def verify(public_key: bytes, signature: str, payload: bytes) -> bool:
    """True only for a well-formed base64 signature by ``public_key`` over ``payload``."""
    try:
        sig = base64.b64decode(signature.encode("ascii"), validate=True)
        Ed25519PublicKey.from_public_bytes(public_key).verify(sig, payload)
    except (InvalidSignature, ValueError, binascii.Error, UnicodeEncodeError):
        return False
    return True


def public_key_of(private_key: bytes | str) -> bytes:
    return _private_key(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def generate_keypair() -> tuple[bytes, bytes]:
    """A fresh Ed25519 key pair as ``(private, public)`` raw 32-byte keys. Register only the public one."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return private, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
