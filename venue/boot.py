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
        if not config.settler_key:
            raise StartupError("a JSON-RPC chain needs settler_key (VENUE_SETTLER_KEY)")
        chain = connect(config.chain, private_keys=[bytes.fromhex(config.settler_key.removeprefix("0x"))])
    else:
        raise StartupError(f"chain must be 'inprocess', 'anvil' or an http(s) JSON-RPC URL, not {config.chain!r}")
    _serialise_provider(chain)
    return chain


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
    if len(chain.accounts) < 2:
        raise StartupError("deploying needs two funded accounts with known keys (admin, settler)")
    deployment = deploy_demo(chain, admin=chain.accounts[0], settler=chain.accounts[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    deployment.save(path)
    return deployment


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
