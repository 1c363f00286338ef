"""RPC reads at a fixed head block for the ``ChainWatcher``: the state named by a ``ReadPlan`` (token,
cash, identity-registry facts), the registries' claim setup and the token compliance answers
(``canTransfer``), plus ranged ``get_logs``. Web3 / RPC errors become ``ChainSyncError``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from web3 import Web3

try:  # the in-process EVM is an optional extra (omn-venue[embedded])
    from eth_tester.exceptions import TransactionFailed as _TesterReverted
except ImportError:  # pragma: no cover - production install: no eth-tester, so no such revert
    class _TesterReverted(Exception):  # type: ignore[no-redef]
        """Never raised: eth-tester is not installed."""
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, Web3Exception

from compliance import abi
from compliance.errors import ChainSyncError
from compliance.sync import REG_FACTS, ZERO_ADDRESS, ClaimSetup, ReadPlan, SyncState, Targets, Update


@contextmanager
def rpc(what: str) -> Iterator[None]:
    try:
        yield
    except (Web3Exception, OSError, ValueError) as exc:
        raise ChainSyncError(f"chain read failed ({what}): {type(exc).__name__}: {exc}") from exc


class ChainReader:
    """Reads the chain; never touches the cache. ``reads`` counts contract calls."""

    def __init__(self, w3: Web3, *, max_block_range: int) -> None:
        self.w3 = w3
        self.max_block_range = max_block_range
        self.reads = 0
        self._contracts: dict[tuple[str, int], Any] = {}
        self._sender: dict[str, Any] | None = None

    def _tx(self) -> dict[str, Any]:
        """The calls' sender, asked once: without one, web3's in-process provider asks the node for its
        accounts on every call (to default ``from``), a third of a read's cost. A node without
        accounts gets no ``from`` (its web3 does not look one up)."""
        if self._sender is None:
            with rpc("accounts"):
                accounts = self.w3.eth.accounts
            self._sender = {"from": accounts[0]} if accounts else {}
        return self._sender

    def contract(self, address: str, contract_abi: Any) -> Any:
        # building a web3 contract parses its ABI: once per address (a poll makes hundreds of calls)
        key = (address.lower(), id(contract_abi))
        contract = self._contracts.get(key)
        if contract is None:
            contract = self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=contract_abi)
            self._contracts[key] = contract
        return contract

    def call(self, contract: Any, fn: str, *args: Any, head: int) -> Any:
        self.reads += 1
        with rpc(f"{fn} on {contract.address}"):
            return getattr(contract.functions, fn)(*args).call(self._tx(), block_identifier=head)

    def try_call(self, contract: Any, fn: str, *args: Any, head: int) -> tuple[bool, Any]:
        """(False, None) when the call reverts or returns nothing (function not implemented)."""
        self.reads += 1
        try:
            return True, getattr(contract.functions, fn)(*args).call(self._tx(), block_identifier=head)
        except (ContractLogicError, BadFunctionCallOutput, _TesterReverted):  # a revert (in-process EVM too)
            return False, None
        except (Web3Exception, OSError, ValueError) as exc:
            raise ChainSyncError(f"chain read failed ({fn} on {contract.address}): "
                                 f"{type(exc).__name__}: {exc}") from exc

    def get_logs(self, addresses: Sequence[str], topics: Sequence[bytes] | None, start: int, end: int) -> list[Any]:
        out: list[Any] = []
        if not addresses:
            return out
        checksummed = [Web3.to_checksum_address(a) for a in sorted(addresses)]
        lo = start
        while lo <= end:
            hi = min(end, lo + self.max_block_range - 1)
            flt: dict[str, Any] = {"fromBlock": lo, "toBlock": hi, "address": checksummed}
            if topics is not None:
                flt["topics"] = [["0x" + t.hex() for t in topics]]
            with rpc(f"get_logs {lo}-{hi}"):
                out.extend(self.w3.eth.get_logs(flt))  # type: ignore[arg-type]
            lo = hi + 1
        return out

    def scan_holders(self, token: str, start: int, end: int) -> set[str]:
        addresses: set[str] = set()
        for entry in self.get_logs([token], [abi.TRANSFER], start, end):
            topics = entry["topics"]
            if len(topics) >= 3:
                addresses.add(abi.topic_address(topics[2]))
                addresses.add(abi.topic_address(topics[1]))
        addresses.discard(ZERO_ADDRESS)
        return addresses

    def read_facts(
        self, plan: ReadPlan, head: int, spenders: list[str], state: SyncState
    ) -> tuple[list[Update], dict[str, str]]:
        """Token, cash and registry facts named by ``plan``; returns the updates and token -> registry."""
        updates: list[Update] = []
        registries = dict(state.registries)

        def token_c(addr: str) -> Any:
            return self.contract(addr, abi.SECURITY_TOKEN_ABI)

        for t in sorted(plan.tokens):
            c = token_c(t)
            registry = str(self.call(c, "identityRegistry", head=head)).lower()
            registries[t] = registry
            updates.append(("set_identity_registry", (t, registry)))
            updates.append(("set_paused", (t, bool(self.call(c, "paused", head=head)))))
        for t, w in sorted(plan.token_wallets):
            c = token_c(t)
            cw = Web3.to_checksum_address(w)
            updates.append(("set_frozen", (t, w, bool(self.call(c, "isFrozen", cw, head=head)))))
            updates.append(("set_frozen_tokens", (t, w, int(self.call(c, "getFrozenTokens", cw, head=head)))))
            updates.append(("set_balance", (t, w, int(self.call(c, "balanceOf", cw, head=head)))))
            for s in spenders:
                amount = int(self.call(c, "allowance", cw, Web3.to_checksum_address(s), head=head))
                updates.append(("set_allowance", (t, w, s, amount)))
        for t, w in sorted(plan.moved - plan.token_wallets):
            c = token_c(t)
            cw = Web3.to_checksum_address(w)
            updates.append(("set_balance", (t, w, int(self.call(c, "balanceOf", cw, head=head)))))
            for s in spenders:
                amount = int(self.call(c, "allowance", cw, Web3.to_checksum_address(s), head=head))
                updates.append(("set_allowance", (t, w, s, amount)))
        for t, a in sorted(plan.balances - plan.token_wallets - plan.moved):
            amount = int(self.call(token_c(t), "balanceOf", Web3.to_checksum_address(a), head=head))
            updates.append(("set_balance", (t, a, amount)))
        for c_addr, w in sorted(plan.cash_wallets):
            c = self.contract(c_addr, abi.ERC20_ABI)
            cw = Web3.to_checksum_address(w)
            updates.append(("set_balance", (c_addr, w, int(self.call(c, "balanceOf", cw, head=head)))))
            for s in spenders:
                amount = int(self.call(c, "allowance", cw, Web3.to_checksum_address(s), head=head))
                updates.append(("set_allowance", (c_addr, w, s, amount)))
        reg = set(plan.reg)
        for t, w in plan.reg_by_token:
            reg_addr = registries.get(t)
            if reg_addr is None:
                # token seen for the first time outside a full sync: read its registry now
                reg_addr = str(self.call(token_c(t), "identityRegistry", head=head)).lower()
                registries[t] = reg_addr
                updates.append(("set_identity_registry", (t, reg_addr)))
            reg.add((reg_addr, w))
        for r, w in sorted(reg):
            if r == ZERO_ADDRESS:
                continue
            c = self.contract(r, abi.IDENTITY_REGISTRY_ABI)
            cw = Web3.to_checksum_address(w)
            updates.append(("set_verified", (r, w, bool(self.call(c, "isVerified", cw, head=head)))))
            updates.append(("set_country", (r, w, int(self.call(c, "investorCountry", cw, head=head)))))
            updates.append(("set_identity", (r, w, str(self.call(c, "identity", cw, head=head)).lower())))
        return updates, registries

    def read_setups(
        self, plan: ReadPlan, registries: dict[str, str], head: int, state: SyncState
    ) -> dict[str, ClaimSetup | None]:
        """Claim setup of registries seen for the first time or named by a setup event."""
        out: dict[str, ClaimSetup | None] = {}
        wanted = set(plan.setups) | {r for r in registries.values() if r not in state.setups}
        for r in sorted(wanted - {ZERO_ADDRESS}):
            c = self.contract(r, abi.TREX_REGISTRY_ABI)
            ok, tir = self.try_call(c, "issuersRegistry", head=head)
            ok2, ctr = self.try_call(c, "topicsRegistry", head=head) if ok else (False, None)
            if not (ok and ok2):
                out[r] = None  # no claim layer (e.g. the demo registry)
                continue
            tir_c = self.contract(str(tir), abi.TRUSTED_ISSUERS_ABI)
            issuers = tuple(sorted(str(i).lower() for i in self.call(tir_c, "getTrustedIssuers", head=head)))
            out[r] = ClaimSetup(issuers_registry=str(tir).lower(), topics_registry=str(ctr).lower(), issuers=issuers)
        return out

    def read_transferability(
        self, plan: ReadPlan, updates: list[Update], registries: dict[str, str], head: int,
        targets: Targets, state: SyncState,
    ) -> list[tuple[str, str, tuple[str, ...]]]:
        """``canTransfer`` answers to (re-)read; appends cache updates, returns (token, compliance, modules)
        for tokens whose compliance was re-read."""
        out: list[tuple[str, str, tuple[str, ...]]] = []
        tracked = sorted(targets.wallets)
        # pairs of a wallet named by a token event (freeze, approval; a transfer's when due, see
        # ``ReadPlan.pair_moves``) are re-read, and of a
        # wallet whose isVerified / country / identity read differs from the last one (a claim event
        # re-reads every wallet of the registry; only those that changed cost pair reads)
        touched = set(plan.transfer_wallets) | plan.pair_moves
        for name, args in updates:
            if name in REG_FACTS and state.reg_facts.get((name, args[0], args[1]), None) != args[2]:
                touched |= {(t, args[1]) for t, reg in registries.items() if reg == args[0]}
        for t, probes in targets.transfer_probes:
            checks: set[tuple[str, str, int]] = set()
            if t in plan.compliance_tokens:
                token = self.contract(t, abi.SECURITY_TOKEN_ABI)
                comp = str(self.call(token, "compliance", head=head)).lower()
                cc = self.contract(comp, abi.COMPLIANCE_ABI)
                ok, modules = self.try_call(cc, "getModules", head=head)
                mods = tuple(sorted(str(m).lower() for m in modules)) if ok else ()
                out.append((t, comp, mods))
                updates.append(("set_compliance", (t, comp)))
                updates.append(("clear_transfers", (t, None)))
                checks |= {(f, r, a) for f in tracked for r in tracked if f != r for a in probes}
            else:
                known = state.compliance.get(t)
                if known is None:
                    continue  # compliance not read yet (next poll)
                comp = known[0]
                for tt, w in sorted(touched):
                    if tt != t or w not in targets.wallets:
                        continue
                    updates.append(("clear_transfers", (t, w)))
                    checks |= {(f, r, a) for x in tracked if x != w for f, r in ((w, x), (x, w)) for a in probes}
            checks |= {(f, r, a) for (tt, f, r, a) in targets.transfer_requests if tt == t}
            cc = self.contract(comp, abi.COMPLIANCE_ABI)
            for f, r, a in sorted(checks):
                ok, allowed = self.try_call(cc, "canTransfer", Web3.to_checksum_address(f),
                                            Web3.to_checksum_address(r), a, head=head)
                # a module that reverts refuses the transfer just as surely
                updates.append(("set_can_transfer", (t, f, r, a, bool(ok and allowed))))
        return out
