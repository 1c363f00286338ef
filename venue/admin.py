"""Offline administration used by the CLI: schema, deployment, participants, API keys.

A running venue picks up participants, wallets and keys added here within a few seconds (it
re-reads reference data from the store).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import store as store_pkg
from settlement.errors import SettlementError
from venue import registry
from venue.chainkeys import ChainKeyError, chain_keys
from venue.config import VenueConfig
from venue.listings import ListingRules, load_rules, rules_to_dict
from venueclient import generate_keypair

log = logging.getLogger(__name__)


class AdminError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _open(config: VenueConfig) -> store_pkg.Store:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        return store_pkg.Store.open(config.database_url)
    except store_pkg.StoreError as exc:
        raise AdminError("STORE_UNAVAILABLE", str(exc)) from exc


@contextmanager
def _store(config: VenueConfig) -> Iterator[store_pkg.Store]:
    """The store for one CLI command, with its errors translated to admin codes."""
    store = _open(config)
    try:
        yield store
    except registry.RegistryError as exc:
        raise AdminError(exc.code, str(exc)) from exc
    except store_pkg.DuplicateError as exc:
        raise AdminError("PARTICIPANT_EXISTS", str(exc)) from exc
    except store_pkg.InvalidRecordError as exc:
        raise AdminError("INVALID_RECORD", str(exc)) from exc
    except store_pkg.StoreError as exc:
        raise AdminError("STORE_UNAVAILABLE", str(exc)) from exc
    finally:
        store.close()


def migrate(config: VenueConfig) -> None:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store_pkg.migrate(config.database_url)
    except store_pkg.StoreError as exc:
        raise AdminError("MIGRATION_FAILED", str(exc)) from exc


def deploy(config: VenueConfig) -> dict[str, Any]:
    from venue.boot import StartupError, deploy_or_load, open_chain

    if config.chain in ("inprocess", "anvil"):
        raise AdminError("EPHEMERAL_CHAIN", f"a {config.chain} chain lives only as long as the venue process; "
                         "`venue run`/`venue demo` deploy to it themselves. Give --chain a JSON-RPC URL.")
    try:
        keys = chain_keys(config)
    except ChainKeyError as exc:
        raise AdminError(exc.code, str(exc)) from exc
    if keys.admin is None:
        raise AdminError("ADMIN_KEY_MISSING", "deploying needs the admin (deployer, token agent) key: set "
                         "admin_key_file (VENUE_ADMIN_KEY_FILE) or admin_key (VENUE_ADMIN_KEY); the settler's "
                         "is settler_key_file / settler_key")
    try:
        chain = open_chain(config)
    except (SettlementError, StartupError) as exc:
        raise AdminError("CHAIN_UNAVAILABLE", str(exc)) from exc
    try:
        deployment = deploy_or_load(chain, config, fresh=True)
    except (SettlementError, StartupError) as exc:
        raise AdminError("CHAIN_ERROR", str(exc)) from exc
    finally:
        chain.close()
    result: dict[str, Any] = json.loads(deployment.to_json())
    result["deployment_file"] = str(config.deployment_path)
    return result


def add_participant(
    config: VenueConfig,
    participant: str,
    *,
    name: str,
    category: str,
    jurisdiction: str,
    kyc_days: int,
    wallet: str | None,
    signed_orders: bool = False,
) -> None:
    with _store(config) as store:
        registry.onboard(store, participant=participant, name=name, investor_category=category, country=jurisdiction,
                         kyc_days=kyc_days, wallet_address=wallet, actor="cli", signed_orders=signed_orders)


def update_participant(config: VenueConfig, participant: str, **changes: Any) -> dict[str, Any]:
    with _store(config) as store:
        p = registry.update(store, participant, actor="cli", **changes)
        return _participant_row(store, p)


def offboard_participant(config: VenueConfig, participant: str) -> list[str]:
    with _store(config) as store:
        return registry.offboard(store, participant, actor="cli")


def revoke_key(config: VenueConfig, key_id: str) -> str:
    with _store(config) as store:
        return registry.revoke_key(store, key_id, actor="cli").participant


def _participant_row(store: store_pkg.Store, p: store_pkg.Participant) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "status": p.status.value, "category": p.investor_category,
            "jurisdiction": p.jurisdiction, "kyc_expiry": p.kyc_expiry.isoformat() if p.kyc_expiry else None,
            "signed_orders": p.signed_orders,
            "wallets": [w.address for w in store.list_wallets(p.id)]}


def list_participants(config: VenueConfig) -> list[dict[str, Any]]:
    with _store(config) as store:
        return [_participant_row(store, p) for p in store.list_participants()]


def create_key(config: VenueConfig, participant: str, *, role: str) -> dict[str, str]:
    with _store(config) as store:
        record = store.get_participant(participant) if role == "trader" else None
        if role == "trader" and record is None:
            raise AdminError("UNKNOWN_PARTICIPANT", f"no participant {participant!r}; add it first")
        if record is not None and record.status is store_pkg.ParticipantStatus.CLOSED:
            raise AdminError("PARTICIPANT_CLOSED", f"participant {participant!r} was offboarded")
        private, public = generate_keypair()
        key_id = f"{participant}-{secrets.token_hex(4)}"
        store.add_api_key(store_pkg.ApiKeyRecord(key_id=key_id, participant=participant,
                                                 role=store_pkg.KeyRole(role), public_key=public))
        store.append_audit("cli", "key.create", {"key_id": key_id, "participant": participant, "role": role})
        log.info("API key %s (%s) created for %s", key_id, role, participant)
        return {"key_id": key_id, "participant": participant, "role": role,
                "private_key": private.hex(), "public_key": public.hex()}


def add_instrument(config: VenueConfig, symbol: str, *, rules: dict[str, Any], **params: Any) -> None:
    with _store(config) as store:
        registry.list_instrument(store, symbol, rules=rules, actor="cli", **params)


def set_instrument_rules(config: VenueConfig, symbol: str, changes: dict[str, Any]) -> dict[str, Any]:
    with _store(config) as store:
        return rules_to_dict(registry.set_rules(store, symbol, changes, actor="cli"))


def list_instruments(config: VenueConfig) -> list[dict[str, Any]]:
    with _store(config) as store:
        rules, bad = load_rules(store.list_listing_rules())
        return [{"symbol": i.symbol, "name": i.name, "status": i.status.value, "token": i.token_address,
                 "cash_token": i.cash_token_address, "tick_size": i.tick_size, "lot_size": i.lot_size,
                 "rules": rules_to_dict(rules.get(i.symbol, ListingRules())) if i.symbol not in bad
                 else {"unreadable": bad[i.symbol]}}
                for i in store.list_instruments()]
