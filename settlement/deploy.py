"""Deploy and configure the demo contracts; agent/admin operations on them.

``python -m settlement.deploy --rpc URL --admin-key HEX --settler ADDR --out deployment.json``
deploys everything on any node and writes the addresses to a config file.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract.contract import Contract
from web3.types import TxReceipt

from settlement import artifacts
from settlement.chain import Chain, connect, rpc_errors, to_address
from settlement.errors import DeploymentError, SettlementError

MAX_UINT256 = 2**256 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoDeployment:
    chain_id: int
    settlement: ChecksumAddress
    token: ChecksumAddress
    identity_registry: ChecksumAddress
    compliance: ChecksumAddress
    stablecoin: ChecksumAddress
    admin: ChecksumAddress
    settler: ChecksumAddress

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DemoDeployment:
        try:
            raw = json.loads(text)
            fields = {k: raw[k] for k in cls.__dataclass_fields__}
            return cls(
                chain_id=int(fields.pop("chain_id")),
                **{k: Web3.to_checksum_address(v) for k, v in fields.items()},
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise DeploymentError(f"invalid deployment config: {exc}") from exc

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DemoDeployment:
        try:
            return cls.from_json(Path(path).read_text())
        except OSError as exc:
            raise DeploymentError(f"cannot read deployment config {path}: {exc}") from exc


def deploy_settlement(chain: Chain, *, admin: str, settler: str) -> Contract:
    """Only the DvP contract (e.g. to settle an existing ERC-3643 token such as T-REX)."""
    return chain.deploy(artifacts.load("DvPSettlement"), admin, admin, settler)


def deploy_demo(
    chain: Chain,
    *,
    admin: str,
    settler: str,
    max_holders: int = 0,
    max_balance: int = 0,
    token_name: str = "Omnes Mining Note",
    token_symbol: str = "OMN",
    token_decimals: int = 0,
) -> DemoDeployment:
    """Deploy registry, compliance, OMN token, stablecoin and DvP contract; ``admin`` is owner and agent."""
    admin = to_address(admin)
    settler = to_address(settler)
    registry = chain.deploy(artifacts.load("DemoIdentityRegistry"), admin, admin)
    compliance = chain.deploy(artifacts.load("DemoCompliance"), admin, admin, max_holders, max_balance)
    token = chain.deploy(
        artifacts.load("DemoSecurityToken"),
        admin,
        token_name,
        token_symbol,
        token_decimals,
        admin,
        registry.address,
        compliance.address,
    )
    stablecoin = chain.deploy(artifacts.load("DemoStablecoin"), admin, admin)
    settlement = deploy_settlement(chain, admin=admin, settler=settler)
    chain.transact(compliance.functions.bindToken(token.address), admin)
    chain.transact(registry.functions.addAgent(admin), admin)
    chain.transact(token.functions.addAgent(admin), admin)
    with rpc_errors("chain id"):
        chain_id = chain.w3.eth.chain_id
    return DemoDeployment(
        chain_id=chain_id,
        settlement=settlement.address,
        token=token.address,
        identity_registry=registry.address,
        compliance=compliance.address,
        stablecoin=stablecoin.address,
        admin=admin,
        settler=settler,
    )


def deploy_demo_series(
    chain: Chain,
    deployment: DemoDeployment,
    *,
    token_name: str,
    token_symbol: str,
    token_decimals: int = 0,
    max_holders: int = 0,
    max_balance: int = 0,
) -> DemoDeployment:
    """Another note series on an existing demo deployment: its own token and compliance module,
    the same identity registry (investors registered once are eligible for every series), the same
    stablecoin and DvP contract. Returns the deployment with ``token`` and ``compliance`` replaced,
    so ``DemoAdmin`` of it mints and approves the new series."""
    admin = deployment.admin
    compliance = chain.deploy(artifacts.load("DemoCompliance"), admin, admin, max_holders, max_balance)
    token = chain.deploy(
        artifacts.load("DemoSecurityToken"),
        admin,
        token_name,
        token_symbol,
        token_decimals,
        admin,
        deployment.identity_registry,
        compliance.address,
    )
    chain.transact(compliance.functions.bindToken(token.address), admin)
    chain.transact(token.functions.addAgent(admin), admin)
    return replace(deployment, token=token.address, compliance=compliance.address)


def placeholder_identity(wallet: str) -> ChecksumAddress:
    """Deterministic stand-in for an investor's ONCHAINID contract in the demo registry."""
    digest = keccak(b"omn-demo-identity:" + bytes.fromhex(to_address(wallet)[2:]))
    return Web3.to_checksum_address(digest[12:])


class DemoAdmin:
    """Agent/owner operations on a demo deployment, signed with the admin's key."""

    def __init__(self, chain: Chain, deployment: DemoDeployment) -> None:
        self.chain = chain
        self.deployment = deployment
        self.admin = deployment.admin
        self.token = chain.our_contract("DemoSecurityToken", deployment.token)
        self.registry = chain.our_contract("DemoIdentityRegistry", deployment.identity_registry)
        self.compliance = chain.our_contract("DemoCompliance", deployment.compliance)
        self.stablecoin = chain.our_contract("DemoStablecoin", deployment.stablecoin)
        self.settlement = chain.our_contract("DvPSettlement", deployment.settlement)

    def _tx(self, fn: Any, sender: str | None = None) -> TxReceipt:
        return self.chain.transact(fn, sender or self.admin)

    # identity registry
    def register_investor(self, wallet: str, country: int, identity: str | None = None) -> TxReceipt:
        wallet = to_address(wallet)
        return self._tx(
            self.registry.functions.registerIdentity(wallet, identity or placeholder_identity(wallet), country)
        )

    def remove_investor(self, wallet: str) -> TxReceipt:
        return self._tx(self.registry.functions.deleteIdentity(to_address(wallet)))

    def set_country(self, wallet: str, country: int) -> TxReceipt:
        return self._tx(self.registry.functions.updateCountry(to_address(wallet), country))

    # token agent
    def freeze(self, wallet: str, frozen: bool = True) -> TxReceipt:
        return self._tx(self.token.functions.setAddressFrozen(to_address(wallet), frozen))

    def freeze_tokens(self, wallet: str, amount: int) -> TxReceipt:
        return self._tx(self.token.functions.freezePartialTokens(to_address(wallet), amount))

    def unfreeze_tokens(self, wallet: str, amount: int) -> TxReceipt:
        return self._tx(self.token.functions.unfreezePartialTokens(to_address(wallet), amount))

    def pause(self) -> TxReceipt:
        return self._tx(self.token.functions.pause())

    def unpause(self) -> TxReceipt:
        return self._tx(self.token.functions.unpause())

    def mint_notes(self, wallet: str, amount: int) -> TxReceipt:
        return self._tx(self.token.functions.mint(to_address(wallet), amount))

    def burn_notes(self, wallet: str, amount: int) -> TxReceipt:
        return self._tx(self.token.functions.burn(to_address(wallet), amount))

    # compliance rules
    def set_max_holders(self, n: int) -> TxReceipt:
        return self._tx(self.compliance.functions.setMaxHolders(n))

    def set_max_balance(self, amount: int) -> TxReceipt:
        return self._tx(self.compliance.functions.setMaxBalance(amount))

    # cash and approvals
    def fund_cash(self, wallet: str, amount: int) -> TxReceipt:
        return self._tx(self.stablecoin.functions.mint(to_address(wallet), amount))

    def approve_all(self, wallet: str, amount: int = MAX_UINT256) -> None:
        """The investor approves the settlement contract for both tokens (signed with the wallet's key)."""
        spender = self.deployment.settlement
        self._tx(self.token.functions.approve(spender, amount), wallet)
        self._tx(self.stablecoin.functions.approve(spender, amount), wallet)

    def approve_notes(self, wallet: str, amount: int = MAX_UINT256) -> TxReceipt:
        """The investor approves the settlement contract for the note token only (a further series)."""
        return self._tx(self.token.functions.approve(self.deployment.settlement, amount), wallet)

    def grant_settler(self, settler: str) -> TxReceipt:
        role = self.settlement.functions.SETTLER_ROLE().call()
        return self._tx(self.settlement.functions.grantRole(role, to_address(settler)))

    def revoke_settler(self, settler: str) -> TxReceipt:
        role = self.settlement.functions.SETTLER_ROLE().call()
        return self._tx(self.settlement.functions.revokeRole(role, to_address(settler)))

    def onboard(self, wallet: str, *, country: int, notes: int = 0, cash: int = 0) -> None:
        """Register, fund and approve an investor wallet in one go (demo and tests)."""
        self.register_investor(wallet, country)
        if notes:
            self.mint_notes(wallet, notes)
        if cash:
            self.fund_cash(wallet, cash)
        self.approve_all(wallet)

    def balances(self, wallet: str) -> tuple[int, int]:
        wallet = to_address(wallet)
        with rpc_errors("balanceOf"):
            return (
                int(self.token.functions.balanceOf(wallet).call()),
                int(self.stablecoin.functions.balanceOf(wallet).call()),
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Deploy the demo OMN contracts and write their addresses")
    parser.add_argument("--rpc", required=True, help="JSON-RPC URL of the node")
    parser.add_argument("--admin-key", required=True, help="hex private key of the admin/agent (funded)")
    parser.add_argument("--settler", required=True, help="address that gets the settler role")
    parser.add_argument("--out", required=True, help="where to write the deployment JSON")
    parser.add_argument("--max-holders", type=int, default=0)
    parser.add_argument("--max-balance", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        chain = connect(args.rpc, private_keys=[bytes.fromhex(args.admin_key.removeprefix("0x"))])
        with chain:
            deployment = deploy_demo(
                chain,
                admin=chain.accounts[0],
                settler=args.settler,
                max_holders=args.max_holders,
                max_balance=args.max_balance,
            )
            deployment.save(args.out)
    except (SettlementError, ValueError) as exc:
        parser.exit(1, f"deployment failed: {exc}\n")
    print(deployment.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
