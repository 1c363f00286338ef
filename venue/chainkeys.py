"""The chain keys of a venue on a JSON-RPC node: the admin (deployer, token agent: operator chain
actions such as freezing a wallet) and the settler (signs settlement batches).

Each comes from a setting (``admin_key`` / ``settler_key``, env ``VENUE_ADMIN_KEY`` /
``VENUE_SETTLER_KEY``) or a file (``admin_key_file`` / ``settler_key_file``) holding the hex key.
Errors name the setting, never the value; only addresses are ever logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account import Account

from venue.config import VenueConfig


class ChainKeyError(ValueError):
    """A chain key setting is unusable (``code`` is a ``market.codes`` name)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainKeys:
    admin: bytes | None
    settler: bytes | None

    def __repr__(self) -> str:  # never the key material
        return f"ChainKeys(admin={self.admin_address}, settler={self.settler_address})"

    @property
    def admin_address(self) -> str | None:
        return None if self.admin is None else str(Account.from_key(self.admin).address)

    @property
    def settler_address(self) -> str | None:
        return None if self.settler is None else str(Account.from_key(self.settler).address)

    def all(self) -> list[bytes]:
        return [k for k in (self.admin, self.settler) if k is not None]


def _parse(text: str, setting: str) -> bytes:
    value = text.strip().removeprefix("0x")
    try:
        key = bytes.fromhex(value)
    except ValueError:
        raise ChainKeyError("CHAIN_KEY_INVALID", f"{setting} is not hex") from None
    if len(key) != 32:
        raise ChainKeyError("CHAIN_KEY_INVALID", f"{setting} is {len(key)} bytes, a private key is 32")
    try:
        Account.from_key(key)
    except (ValueError, TypeError):
        raise ChainKeyError("CHAIN_KEY_INVALID", f"{setting} is not a valid secp256k1 private key") from None
    return key


def _one(value: str | None, path: Path | None, name: str) -> bytes | None:
    if value and path:
        raise ChainKeyError("CHAIN_KEY_INVALID", f"give {name} or {name}_file, not both")
    if value:
        return _parse(value, name)
    if path is not None:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ChainKeyError("CHAIN_KEY_INVALID", f"{name}_file {path}: {exc.strerror}") from None
        return _parse(text, f"{name}_file {path}")
    return None


def chain_keys(config: VenueConfig) -> ChainKeys:
    return ChainKeys(admin=_one(config.admin_key, config.admin_key_file, "admin_key"),
                     settler=_one(config.settler_key, config.settler_key_file, "settler_key"))
