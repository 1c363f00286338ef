"""``venue chain``: the on-chain steps around onboarding, for the venue's own demo token set on a
JSON-RPC chain (anvil or a test network), so an operator can walk the production path end to end
from the docs alone. On Base with a real ERC-3643 note these steps are the issuer's agent's and
the investor's own (their tools, their keys); the venue never holds an investor's key.

    venue chain register WALLET --country DE [--notes N] [--cash AMOUNT]   (admin key: identity, mint, fund)
    venue chain approve --key-file investor.key                            (the investor approves the DvP contract)
    venue chain balances WALLET

``register`` signs with the configured admin (agent) key; ``approve`` with the investor's key file,
read once and never printed. Both need ``deployment.json`` of ``venue deploy``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from eth_account import Account

from compliance.countries import ALPHA2_TO_NUMERIC
from venue.admin import AdminError
from venue.config import VenueConfig

COMMANDS = ("chain",)


def add_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    chain = sub.add_parser("chain", help="on-chain onboarding steps for the demo token set (dev and test chains)")
    csub = chain.add_subparsers(dest="action", required=True)
    reg = csub.add_parser("register", help="register a wallet in the identity registry; optionally mint notes and "
                                           "fund cash (admin key)")
    common(reg)
    reg.add_argument("wallet")
    reg.add_argument("--country", required=True, help="ISO 3166-1 alpha-2 (stored on chain as its numeric code)")
    reg.add_argument("--notes", type=int, default=0, help="notes to mint to the wallet (whole notes)")
    reg.add_argument("--cash", default="0", help="stablecoin to mint to the wallet (decimal amount)")
    app = csub.add_parser("approve", help="the investor approves the DvP contract for notes and cash (own key)")
    common(app)
    app.add_argument("--key-file", type=Path, required=True, help="the investor wallet's 0x-hex private key")
    bal = csub.add_parser("balances", help="a wallet's note and stablecoin balances")
    common(bal)
    bal.add_argument("wallet")


def run(args: argparse.Namespace, config: VenueConfig) -> dict[str, Any]:
    from settlement import DemoAdmin, DemoDeployment
    from settlement.chain import connect
    from venue.chainkeys import ChainKeyError, chain_keys

    if not config.chain.startswith(("http://", "https://")):
        raise AdminError("EPHEMERAL_CHAIN", "venue chain needs a JSON-RPC chain (--chain http://...)")
    if not config.deployment_path.exists():
        raise AdminError("CHAIN_ERROR", f"no deployment at {config.deployment_path}: run venue deploy first")
    deployment = DemoDeployment.load(config.deployment_path)
    keys: list[bytes] = []
    if args.action == "register":
        try:
            admin_key = chain_keys(config).admin
        except ChainKeyError as exc:
            raise AdminError(exc.code, str(exc)) from exc
        if admin_key is None:
            raise AdminError("ADMIN_KEY_MISSING", "registering a wallet needs the admin (agent) key")
        keys.append(admin_key)
    investor_key: bytes | None = None
    if args.action == "approve":
        investor_key = _key_file(args.key_file)
        keys.append(investor_key)
    chain = connect(config.chain, private_keys=keys)
    try:
        admin = DemoAdmin(chain, deployment)
        if args.action == "register":
            country = args.country.strip().upper()
            if country not in ALPHA2_TO_NUMERIC:
                raise AdminError("INVALID_JURISDICTION", f"{args.country!r} is not an ISO 3166-1 alpha-2 code")
            cash = _cash_units(args.cash, int(admin.stablecoin.functions.decimals().call()))
            if args.notes < 0:
                raise AdminError("INVALID_NUMBER", "--notes must not be negative")
            admin.register_investor(args.wallet, ALPHA2_TO_NUMERIC[country])
            if args.notes:
                admin.mint_notes(args.wallet, args.notes)
            if cash:
                admin.fund_cash(args.wallet, cash)
            notes, cash_now = admin.balances(args.wallet)
            return {"wallet": args.wallet, "country": country, "notes": notes, "cash_units": cash_now}
        if args.action == "approve":
            assert investor_key is not None
            wallet = Account.from_key(investor_key).address
            admin.approve_all(wallet)
            return {"wallet": wallet, "approved": deployment.settlement}
        notes, cash_now = admin.balances(args.wallet)
        return {"wallet": args.wallet, "notes": notes, "cash_units": cash_now}
    finally:
        chain.close()


def _key_file(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise AdminError("CHAIN_KEY_INVALID", f"cannot read the key file {path}: {exc.strerror}") from None
    try:
        key = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise AdminError("CHAIN_KEY_INVALID", f"{path} does not hold a 32-byte hex private key")
    return key


def _cash_units(text: str, decimals: int) -> int:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise AdminError("INVALID_NUMBER", f"--cash {text!r} is not a decimal amount") from None
    units = amount * (Decimal(10) ** decimals)
    if not amount.is_finite() or amount < 0 or units != units.to_integral_value():
        raise AdminError("INVALID_NUMBER", f"--cash {text!r} is not a non-negative amount in whole base units")
    return int(units)
