"""On-chain settlement: atomic delivery-versus-payment of venue trades on an EVM chain.

Public API::

    chain = in_process_chain()   # or start_anvil(port=..., block_time=...) / connect(url, private_keys=[...])
    chain.w3, chain.accounts, chain.private_key(addr), chain.new_account(), chain.mine(n), chain.close()
    dep = deploy_demo(chain, admin=chain.accounts[0], settler=chain.accounts[1], max_holders=0, max_balance=0)
    dep.to_json() / DemoDeployment.from_json(text) / dep.save(path) / DemoDeployment.load(path)
    admin = DemoAdmin(chain, dep)                # register_investor, remove_investor, set_country, freeze,
                                                 # freeze_tokens, unfreeze_tokens, pause, unpause, mint_notes,
                                                 # fund_cash, approve_all, onboard, set_max_holders, balances
    svc = SettlementService(chain, dep.settlement, chain.private_key(dep.settler), on_update=cb, max_batch=50,
                            confirmations=0, finality=None | depth | "finalized")
    svc.submit(TradeToSettle(...)); task = svc.start(); await svc.drain(final=False); svc.stop()
    svc.settle_batch([...]) -> list[SettlementUpdate]      # blocking, one transaction
    svc.recover(unfinished, from_block=0) -> list[SettlementUpdate]  # outcomes from chain events; rest re-queued
    svc.outcomes_since(from_block, trade_ids=None, chunk_size=2000) -> ChainOutcomes  # chunked eth_getLogs
    svc.check_finality() / svc.final_block() / svc.final_through / svc.decision(trade_id)
    default_finality(chain, dev_depth=2) -> Finality       # "finalized" on real chains, a depth on ours
    states: PENDING -> SUBMITTED -> CONFIRMED (-> FINAL) | FAILED; a reorg before final -> PENDING again
    reconcile(chain, dep.token, dep.stablecoin, {wallet: (notes, cash)}) -> list[Difference]

Exceptions (``code`` attribute is stable)::

    SettlementError                      SETTLEMENT_ERROR
     ├── ArtifactError                   ARTIFACT_ERROR       artifact missing or out of date with sources
     ├── ChainError                      CHAIN_ERROR          RPC / node failure (web3 errors translated)
     │    ├── ChainUnavailableError      CHAIN_UNAVAILABLE    node unreachable or would not start
     │    ├── TransactionRevertedError   TRANSACTION_REVERTED decoded ``reason``
     │    ├── TransactionTimeoutError    TRANSACTION_TIMEOUT  no receipt / confirmations in time
     │    └── ChainReorgError            CHAIN_REORG          a settlement left the chain before confirmation
     ├── UnknownAccountError             UNKNOWN_ACCOUNT      no key for that address
     ├── InvalidAddressError             INVALID_ADDRESS      a value that should be an address is not
     ├── InvalidTradeError               INVALID_TRADE        malformed trade handed to the service
     └── DeploymentError                 DEPLOYMENT_ERROR     bad deployment config
"""

from settlement.artifacts import Artifact, check_artifacts, load, load_trex
from settlement.chain import Chain, connect, in_process_chain, start_anvil
from settlement.deploy import DemoAdmin, DemoDeployment, deploy_demo, deploy_settlement
from settlement.errors import (
    ArtifactError,
    ChainError,
    ChainReorgError,
    ChainUnavailableError,
    DeploymentError,
    InvalidAddressError,
    InvalidTradeError,
    SettlementError,
    TransactionRevertedError,
    TransactionTimeoutError,
    UnknownAccountError,
)
from settlement.reconcile import Difference, reconcile
from settlement.revert import decode_revert
from settlement.service import (
    ChainOutcomes,
    Finality,
    SettlementService,
    SettlementStatus,
    SettlementUpdate,
    TradeToSettle,
    default_finality,
)

__all__ = [
    "Artifact",
    "ArtifactError",
    "Chain",
    "ChainError",
    "ChainOutcomes",
    "ChainReorgError",
    "ChainUnavailableError",
    "DemoAdmin",
    "DemoDeployment",
    "DeploymentError",
    "Difference",
    "Finality",
    "InvalidAddressError",
    "InvalidTradeError",
    "SettlementError",
    "SettlementService",
    "SettlementStatus",
    "SettlementUpdate",
    "TradeToSettle",
    "TransactionRevertedError",
    "TransactionTimeoutError",
    "UnknownAccountError",
    "check_artifacts",
    "connect",
    "decode_revert",
    "default_finality",
    "deploy_demo",
    "deploy_settlement",
    "in_process_chain",
    "load",
    "load_trex",
    "reconcile",
    "start_anvil",
]
