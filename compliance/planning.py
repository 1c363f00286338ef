"""What a ``ChainWatcher`` poll must read: everything tracked (full re-sync), what is new since the last
poll, and the (contract, wallet) facts that the logs of the new blocks may have changed."""

from __future__ import annotations

from compliance import abi
from compliance.chain_reads import ChainReader
from compliance.sync import ZERO_ADDRESS, ReadPlan, SyncState, Targets


def plan_sync(state: SyncState, targets: Targets, *, full: bool) -> ReadPlan:
    """Everything tracked (``full``), else only tokens, wallets and cash tokens not synced yet."""
    tracked, tokens, cash_tokens = targets.wallets, targets.tokens, targets.cash_tokens
    plan = ReadPlan()
    if full:
        plan.tokens |= tokens
        for t in tokens:
            for w in tracked:
                plan.wallet(t, w)
        for t, known in targets.known:
            plan.balances |= {(t, a) for a in known}
        plan.cash_wallets |= {(c, w) for c in cash_tokens for w in tracked}
        plan.setups |= set(state.registries.values())
        plan.compliance_tokens |= {t for t, _ in targets.transfer_probes}
    else:
        new_tokens = tokens - state.synced_tokens
        new_wallets = tracked - state.synced_wallets
        plan.tokens |= new_tokens
        for t in tokens:
            for w in tracked:
                if t in new_tokens or w in new_wallets:
                    plan.wallet(t, w)
        plan.cash_wallets |= {
            (c, w) for c in cash_tokens for w in tracked
            if c not in state.synced_cash or w in new_wallets
        }
        plan.compliance_tokens |= {t for t, _ in targets.transfer_probes if t not in state.compliance}
        plan.transfer_wallets |= {(t, w) for t, _ in targets.transfer_probes for w in new_wallets}
    return plan


def plan_from_logs(
    reader: ChainReader, state: SyncState, plan: ReadPlan, start: int, end: int, targets: Targets
) -> int:
    """Adds to ``plan`` what the logs of blocks ``start..end`` name; returns the number of logs."""
    tracked, tokens, cash_tokens = targets.wallets, targets.tokens, targets.cash_tokens
    registries: dict[str, set[str]] = {}
    for t in tokens:
        reg = state.registries.get(t)
        if reg is not None:
            registries.setdefault(reg, set()).add(t)
    spenders = targets.spenders
    # claim layer: registry -> its issuers/topics registries, trusted issuer -> registries
    setup_regs: dict[str, set[str]] = {}
    issuer_regs: dict[str, set[str]] = {}
    for reg, setup in state.setups.items():
        if setup is None or reg not in registries:
            continue
        setup_regs.setdefault(setup.issuers_registry, set()).add(reg)
        setup_regs.setdefault(setup.topics_registry, set()).add(reg)
        for issuer in setup.issuers:
            issuer_regs.setdefault(issuer, set()).add(reg)
    identities = {i: pairs for i, pairs in state.identities.items()
                  if i != ZERO_ADDRESS and any(w in tracked for _, w in pairs)}

    def all_wallets(regs: set[str]) -> None:
        plan.reg |= {(r, w) for r in regs for w in tracked}
        plan.claim_wallets |= tracked

    entries = reader.get_logs([*tokens, *cash_tokens, *registries, *setup_regs, *issuer_regs, *identities],
                              abi.ALL_TOPICS, start, end)
    for entry in entries:
        address = str(entry["address"]).lower()
        topics = [bytes(t) for t in entry["topics"]]
        if not topics:
            continue
        kind = topics[0]
        arg1 = abi.topic_address(topics[1]) if len(topics) > 1 else None
        arg2 = abi.topic_address(topics[2]) if len(topics) > 2 else None
        if address in tokens:
            if kind == abi.TRANSFER:
                for a in (arg1, arg2):
                    if a is None or a == ZERO_ADDRESS:
                        continue
                    if a in tracked:
                        # a balance moved: balance and allowances (``transferFrom`` spends one without an
                        # ``Approval``); freezes and registry facts have events of their own
                        plan.moved.add((address, a))
                    else:
                        plan.balances.add((address, a))
            elif kind == abi.APPROVAL:
                if arg1 in tracked and arg2 in spenders:
                    plan.token_wallets.add((address, arg1))
                    plan.transfer_wallets.add((address, arg1))
            elif kind in (abi.ADDRESS_FROZEN, abi.TOKENS_FROZEN, abi.TOKENS_UNFROZEN):
                if arg1 in tracked:
                    plan.token_wallets.add((address, arg1))
                    plan.transfer_wallets.add((address, arg1))
            elif kind in (abi.PAUSED, abi.UNPAUSED):
                plan.tokens.add(address)
            elif kind == abi.IDENTITY_REGISTRY_ADDED:
                plan.tokens.add(address)
                plan.reg_by_token |= {(address, w) for w in tracked}
                plan.compliance_tokens.add(address)
            elif kind == abi.COMPLIANCE_ADDED:
                plan.compliance_tokens.add(address)
        elif address in cash_tokens:
            if kind == abi.TRANSFER:
                plan.cash_wallets |= {(address, a) for a in (arg1, arg2) if a in tracked}
            elif kind == abi.APPROVAL and arg1 in tracked and arg2 in spenders:
                plan.cash_wallets.add((address, arg1))
        elif address in registries:
            if kind in (abi.IDENTITY_REGISTERED, abi.IDENTITY_REMOVED, abi.COUNTRY_UPDATED):
                if arg1 in tracked:
                    plan.reg.add((address, arg1))
            elif kind == abi.IDENTITY_UPDATED:
                # names identities, not wallets: re-read every tracked wallet of this registry
                plan.reg |= {(address, w) for w in tracked}
            elif kind in abi.REGISTRY_SETUP_TOPICS:
                plan.setups.add(address)
                all_wallets({address})
        elif address in setup_regs:
            if kind in abi.CLAIM_SETUP_TOPICS:  # trusted issuers or required topics changed
                plan.setups |= setup_regs[address]
                all_wallets(setup_regs[address])
        elif address in issuer_regs:
            if kind in abi.ISSUER_TOPICS:  # a revocation names a signature hash only: re-check all
                all_wallets(issuer_regs[address])
        elif address in identities and kind in abi.IDENTITY_CLAIM_TOPICS:
            for r, w in identities[address]:
                if w in tracked:
                    plan.reg.add((r, w))
                    plan.claim_wallets.add(w)
    # token compliance: any event of a compliance contract or of its modules (module added /
    # removed, ``ModuleInteraction`` for every setting, module configuration events)
    owners: dict[str, set[str]] = {}
    for t, _ in targets.transfer_probes:
        known = state.compliance.get(t)
        if known is not None:
            for a in (known[0], *known[1]):
                owners.setdefault(a, set()).add(t)
    if owners:
        config = reader.get_logs(sorted(owners), None, start, end)
        for entry in config:
            plan.compliance_tokens |= owners.get(str(entry["address"]).lower(), set())
        entries = [*entries, *config]
    return len(entries)
