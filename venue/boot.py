"""Starting a venue process: the chain (opened, every RPC serialised), the contract deployment,
and the journal's engine-rules marker. Plain functions, used by ``venue.runtime`` and the CLI."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from engine import RULES_VERSION
from settlement.chain import Chain, connect, in_process_chain, start_anvil
from settlement.deploy import DemoDeployment, deploy_demo
from settlement.errors import ChainUnavailableError
from settlement.service import Finality, default_finality
from venue.chainkeys import ChainKeyError, ChainKeys, chain_keys
from venue.config import VenueConfig

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The venue cannot start with this configuration (the message says why)."""


def _serialise_provider(chain: Chain) -> None:
    """Every request through one lock. A web3 middleware would not do: settlement and the dev-chain
    helpers call ``provider.make_request`` directly (raw receipt polling), past the middleware onion."""
    provider = chain.w3.provider
    original = provider.make_request
    lock = threading.RLock()

    def make_request(method: Any, params: Any) -> Any:
        with lock:
            return original(method, params)

    provider.make_request = make_request  # type: ignore[method-assign]


def open_chain(config: VenueConfig) -> Chain:
    if config.chain == "inprocess":
        try:
            chain = in_process_chain()
        except ChainUnavailableError as exc:  # the `embedded` extra is not installed
            raise StartupError(str(exc)) from exc
    elif config.chain == "anvil":
        chain = start_anvil(block_time=config.anvil_block_time)
    elif config.chain.startswith(("http://", "https://")):  # web3 8 has no sync websocket provider
        keys = _keys(config)
        if keys.settler is None and keys.admin is None:
            raise StartupError("a JSON-RPC chain needs its keys: settler_key or settler_key_file (VENUE_SETTLER_KEY"
                               " / VENUE_SETTLER_KEY_FILE), and admin_key or admin_key_file for deploying and "
                               "operator chain actions")
        try:
            chain = connect(config.chain, private_keys=keys.all())
        except ChainUnavailableError as exc:
            raise StartupError(str(exc)) from exc
        log.info("chain %s: admin %s, settler %s", config.chain, keys.admin_address or "not configured",
                 keys.settler_address or "not configured")
    else:
        raise StartupError(f"chain must be 'inprocess', 'anvil' or an http(s) JSON-RPC URL, not {config.chain!r}")
    _serialise_provider(chain)
    return chain


def finality_of(config: VenueConfig, chain: Chain) -> Finality | None:
    """The settlement finality the venue tracks: ``config.finality`` is "chain" (the chain's
    ``default_finality``; none for the in-process EVM, which mines only when it settles, so a
    depth would never be reached), "none", "finalized" or a depth in blocks."""
    value = config.finality.strip().lower()
    if value == "chain":
        return None if chain.name == "in-process" else default_finality(chain)
    if value == "none":
        return None
    if value == "finalized":
        return "finalized"
    try:
        depth = int(value)
    except ValueError:
        raise StartupError(f'finality: "chain", "none", "finalized" or a depth, not {config.finality!r}') from None
    if depth < 0:
        raise StartupError(f"finality depth must be >= 0, not {depth}")
    return depth


def deploy_or_load(chain: Chain, config: VenueConfig, *, fresh: bool = False) -> DemoDeployment:
    """Reuse the deployment file when it matches this chain (same chain id and code at the DvP
    address); otherwise deploy the demo contract set and write the file."""
    path = config.deployment_path
    if path.exists() and not fresh:
        deployment = DemoDeployment.load(path)
        if deployment.chain_id == chain.w3.eth.chain_id and chain.w3.eth.get_code(deployment.settlement):
            return deployment
        if any((config.journal_dir).glob("*")):
            raise StartupError(
                f"{config.data_dir} holds a journal for contracts that are not on this chain (an in-process "
                "or anvil chain lives only as long as its process): use a fresh --data-dir, or a persistent chain")
        log.warning("deployment file %s does not match this chain: deploying afresh", path)
    keys = _keys(config)
    if keys.admin is not None or keys.settler is not None:  # configured keys (a JSON-RPC node)
        if keys.admin_address is None:
            raise StartupError("ADMIN_KEY_MISSING: deploying needs the admin key: admin_key or admin_key_file "
                               "(VENUE_ADMIN_KEY / VENUE_ADMIN_KEY_FILE)")
        admin, settler = keys.admin_address, keys.settler_address or keys.admin_address
    elif len(chain.accounts) < 2:
        raise StartupError("deploying needs two funded accounts with known keys (admin, settler)")
    else:
        admin, settler = chain.accounts[0], chain.accounts[1]
    deployment = deploy_demo(chain, admin=admin, settler=settler)
    path.parent.mkdir(parents=True, exist_ok=True)
    deployment.save(path)
    log.info("contracts deployed on chain %d: settlement %s, token %s, stablecoin %s (admin %s, settler %s); "
             "written to %s", deployment.chain_id, deployment.settlement, deployment.token, deployment.stablecoin,
             admin, settler, path)
    return deployment


def _keys(config: VenueConfig) -> ChainKeys:
    try:
        return chain_keys(config)
    except ChainKeyError as exc:
        raise StartupError(f"{exc.code}: {exc}") from exc


def check_rules_version(journal_dir: Path) -> None:
    """Refuse to replay a journal written under other matching rules (see ``engine.version``).
    A journal from before the marker existed is adopted as the current version."""
    journal_dir.mkdir(parents=True, exist_ok=True)
    marker = journal_dir / "ENGINE_RULES_VERSION"
    if marker.exists():
        written = marker.read_text().strip()
        if written != str(RULES_VERSION):
            raise StartupError(
                f"the journal in {journal_dir} was written under engine rules version {written}, this engine is "
                f"version {RULES_VERSION}: replaying it could build a different book. Replay it with the engine "
                "that wrote it, or start from a fresh data dir")
        return
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(f"{RULES_VERSION}\n")
    tmp.replace(marker)
