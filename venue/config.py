"""Venue configuration: defaults < TOML file < environment (``VENUE_*``) < command-line flags.

The embedded default needs no server: SQLite file + in-process EVM, everything under ``data_dir``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration value is missing or malformed (message names the key)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueConfig:
    data_dir: Path = Path("var")
    db_url: str | None = None  # None = sqlite file in data_dir
    chain: str = "inprocess"  # "inprocess" | "anvil" | an http(s)/ws(s) JSON-RPC URL
    anvil_block_time: float | None = 1.0  # seconds per block when the venue starts anvil itself
    host: str = "127.0.0.1"
    port: int = 8700
    # chain keys for a JSON-RPC node (``venue.chainkeys``): hex in the setting / env var, or a file
    # holding it (preferred: the key stays out of the environment). Never printed or logged.
    settler_key: str | None = None  # signs settlement batches; dev chains use their second account
    settler_key_file: Path | None = None
    admin_key: str | None = None  # deploys the contracts, token agent for operator chain actions
    admin_key_file: Path | None = None
    log_level: str = "INFO"  # DEBUG | INFO | WARNING | ERROR
    log_format: str | None = None  # text | json; default: json for ``venue run``, text otherwise
    deployment_file: Path | None = None  # None = data_dir/deployment.json
    # order-entry safeguards (``venue.guards``): refuse new orders when the chain view is older than
    # this (CHAIN_STATE_STALE; None = off) or when unsettled trade notional, in whole cash-token units,
    # reaches a cap (SETTLEMENT_BACKLOG; venue-wide and per participant, as buyer or seller)
    max_chain_lag_s: float | None = 10.0
    max_unsettled_notional: int | None = 100_000_000
    max_unsettled_notional_participant: int | None = 25_000_000
    settlement_batch: int = 50
    confirmations: int = 0  # blocks after the settlement block before a trade shows "confirmed"
    finality: str = "chain"  # when "confirmed" becomes "final": chain | none | finalized | <depth>
    snapshot_every: int = 50_000  # commands between engine snapshots
    rate_limit_per_s: float = 100.0  # per API key; the measured capacity default (docs/gateway-abuse.md)
    rate_limit_burst: int = 200
    signature_window_s: float = 10.0  # accepted |now - ts| of signed requests (the replay memory spans it)
    eas_address: str | None = None  # a real chain's EAS (Base: 0x4200...0021); dev chains deploy their own
    attestation_file: Path | None = None  # None = data_dir/attestation.json (EAS + resolver deployment)
    # call auctions (``venue.auctions``): a halted instrument resumes through a call of this many seconds
    # (None = straight back to continuous trading); periodic calls are per listing (``call_interval_s``)
    resume_call_s: float | None = 30.0
    # high availability (``venue.ha``, docs/deployment.md): the replicated journal on a JetStream
    # stream, nats://host:port[,host:port...]/STREAM (None = the file journal in data_dir, one process)
    journal_url: str | None = None
    journal_replicas: int = 1  # stream (and lease bucket) replicas: 1 on one server, 3 on a cluster
    lease_ttl_s: float = 2.0  # a leader that has not renewed its lease for this long is replaced
    # "external": the orders/trades projection is `venue store-consumer`'s, settlement `venue settler`'s
    # (durable consumers, ``venue.consumers`` / ``venue.settler``); "embedded": this process does both
    store_mode: str = "embedded"
    settlement_mode: str = "embedded"
    audit_anchor_interval_s: float | None = 300.0  # the audit head written on-chain this often (None: never)
    reconcile_interval_s: float | None = 60.0  # chain vs ledger reconciliation on a schedule (None: on demand)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{(self.data_dir / 'venue.sqlite').resolve()}"

    @property
    def journal_dir(self) -> Path:
        return self.data_dir / "journal"

    @property
    def deployment_path(self) -> Path:
        return self.deployment_file or self.data_dir / "deployment.json"

    @property
    def attestation_path(self) -> Path:
        return self.attestation_file or self.data_dir / "attestation.json"


_ENV_PREFIX = "VENUE_"


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> VenueConfig:
    values: dict[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as fh:
                values.update(tomllib.load(fh).get("venue", {}))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    known = {f.name: f for f in dataclasses.fields(VenueConfig)}
    for name in known:
        env = os.environ.get(_ENV_PREFIX + name.upper())
        if env is not None:
            values[name] = env
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
    return VenueConfig(**{name: _coerce(name, known[name].type, value) for name, value in values.items()})


def _coerce(name: str, declared: Any, value: Any) -> Any:
    text = str(declared)
    try:
        if "Path" in text:
            return None if value in (None, "") else Path(value)
        if text.startswith("int"):
            return int(value)
        if text.startswith("float"):
            return None if value in (None, "", "none") else float(value)
        return value
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"configuration key {name!r}: cannot use {value!r} ({exc})") from exc
