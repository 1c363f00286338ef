"""``venue`` command line: run, demo, deploy, migrate, participants, keys, instruments, attest."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from venue.config import ConfigError, VenueConfig, load_config
from venue.listings import PROFESSIONAL_CATEGORIES


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML file with a [venue] table")
    parser.add_argument("--data-dir", type=Path, help="journal, snapshots, SQLite file, deployment (default ./var)")
    parser.add_argument("--db-url", help="SQLAlchemy URL, e.g. postgresql+psycopg://postgres@127.0.0.1/test")
    parser.add_argument("--chain", help="inprocess (default) | anvil | JSON-RPC URL")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="venue", description="OMN note trading venue")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the venue (gateway, engine, settlement, chain watcher)")
    _common(run)
    run.add_argument("--host")
    run.add_argument("--port", type=int)

    demo = sub.add_parser("demo", help="run the venue with a deployed demo market and trading bots")
    _common(demo)
    demo.add_argument("--host")
    demo.add_argument("--port", type=int)
    demo.add_argument("--duration", type=float, default=None, help="stop after N seconds (default: run until Ctrl-C)")
    demo.add_argument("--investors", type=int, default=3)

    deploy = sub.add_parser("deploy", help="deploy the DvP contract + demo token/stablecoin; write the deployment file")
    _common(deploy)

    migrate = sub.add_parser("migrate", help="create/upgrade the database schema (Alembic)")
    _common(migrate)

    participants = sub.add_parser("participants", help="manage participants")
    psub = participants.add_subparsers(dest="action", required=True)
    padd = psub.add_parser("add", help="onboard a participant")
    _common(padd)
    padd.add_argument("participant")
    padd.add_argument("--name", default=None)
    padd.add_argument("--category", default="MIFID_PROFESSIONAL")
    padd.add_argument("--jurisdiction", default="LU")
    padd.add_argument("--kyc-days", type=int, default=365)
    padd.add_argument("--wallet", default=None, help="0x address (registered on chain separately)")
    padd.add_argument("--signed-orders", action="store_true",
                      help="signed mode: every order must carry an EIP-712 order signed by the wallet")
    plist = psub.add_parser("list", help="list participants")
    _common(plist)

    instruments = sub.add_parser("instruments", help="list note series")
    isub = instruments.add_subparsers(dest="action", required=True)
    iadd = isub.add_parser("add", help="list an instrument (trading parameters + eligibility rules)")
    _common(iadd)
    iadd.add_argument("symbol")
    iadd.add_argument("--name", required=True)
    iadd.add_argument("--token", required=True, help="ERC-3643 note token address")
    iadd.add_argument("--cash-token", required=True, help="stablecoin address")
    iadd.add_argument("--token-decimals", type=int, default=0)
    iadd.add_argument("--cash-decimals", type=int, default=6)
    iadd.add_argument("--tick", default="0.01", help="price increment per note, in cash units (decimal)")
    iadd.add_argument("--lot", default="1", help="quantity increment, in notes (decimal)")
    iadd.add_argument("--min-qty", type=int, default=1, help="lots")
    iadd.add_argument("--max-qty", type=int, default=1_000, help="lots")
    iadd.add_argument("--band", nargs=2, default=["1000", "1000000"], metavar=("LOW", "HIGH"),
                      help="accepted price range per note, cash units")
    iadd.add_argument("--categories", default=",".join(PROFESSIONAL_CATEGORIES))
    iadd.add_argument("--blocked", default="", help="comma-separated ISO 3166 alpha-2 codes")
    iadd.add_argument("--holding-cap", type=int, default=None, help="token base units per investor")
    iadd.add_argument("--max-holders", type=int, default=None)
    iadd.add_argument("--signed-orders-required", action="store_true",
                      help="every order on this listing must carry an order signed by the wallet")
    ilist = isub.add_parser("list", help="list instruments")
    _common(ilist)

    attest = sub.add_parser("attest", help="publish one signed attestation (EAS) about a note series")
    attest.add_argument("kind", choices=["hashrate", "custody", "accrual", "nav"])
    attest.add_argument("fields", nargs="*", metavar="NAME=VALUE",
                        help="statement fields, e.g. btc_balance_sats=150000000 (as_of/period_end default: now)")
    attest.add_argument("--rpc", required=True, help="JSON-RPC URL of the chain")
    attest.add_argument("--deployment", type=Path, required=True, help="attestation deployment JSON file")
    attest.add_argument("--series", required=True, help="the note series (token address)")
    attest.add_argument("--key-file", type=Path, required=True, help="file with the attestor's private key (hex)")
    attest.add_argument("--submitter-key-file", type=Path,
                        help="submit as an EIP-712 delegated attestation from this account (default: direct)")

    keys = sub.add_parser("keys", help="manage API keys")
    ksub = keys.add_subparsers(dest="action", required=True)
    kcreate = ksub.add_parser("create", help="create an Ed25519 key pair; the venue stores only the public key")
    _common(kcreate)
    kcreate.add_argument("participant")
    kcreate.add_argument("--role", choices=["trader", "operator"], default="trader")
    kcreate.add_argument("--out", type=Path, help="write the private key JSON here (default: print it)")
    return parser


def _config(args: argparse.Namespace) -> VenueConfig:
    overrides: dict[str, Any] = {
        "data_dir": getattr(args, "data_dir", None),
        "db_url": getattr(args, "db_url", None),
        "chain": getattr(args, "chain", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
    }
    return load_config(getattr(args, "config", None), overrides)


async def _serve(config: VenueConfig) -> None:
    """``venue run``: serve until Ctrl-C or SIGTERM, then drain (``Venue.stop``) and exit 0."""
    from venue.runtime import Venue

    venue = Venue(config)
    await venue.start()
    try:
        await venue.serve(on_ready=lambda: print(
            f"venue listening on {venue.base_url}\nconsole: {venue.console_url()}", flush=True))
    finally:
        await venue.stop()
        print("venue stopped: journal closed, store flushed", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    if args.command == "attest":
        return _attest(args)
    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"venue: configuration error: {exc}", file=sys.stderr)
        return 2
    from venue import admin, runtime

    try:
        if args.command == "run":
            asyncio.run(_serve(config))
        elif args.command == "demo":
            from venue.demo import run_demo

            asyncio.run(run_demo(config, duration=args.duration, investors=args.investors))
        elif args.command == "deploy":
            print(json.dumps(admin.deploy(config), indent=2))
        elif args.command == "migrate":
            admin.migrate(config)
            print(f"schema up to date: {config.database_url}")
        elif args.command == "participants" and args.action == "add":
            admin.add_participant(
                config, args.participant, name=args.name or args.participant, category=args.category,
                jurisdiction=args.jurisdiction, kyc_days=args.kyc_days, wallet=args.wallet,
                signed_orders=args.signed_orders,
            )
            print(f"participant {args.participant} added")
        elif args.command == "participants" and args.action == "list":
            for row in admin.list_participants(config):
                print(json.dumps(row))
        elif args.command == "instruments" and args.action == "add":
            admin.add_instrument(
                config, args.symbol, name=args.name, token=args.token, cash_token=args.cash_token,
                token_decimals=args.token_decimals, cash_decimals=args.cash_decimals, tick=args.tick, lot=args.lot,
                min_qty=args.min_qty, max_qty=args.max_qty, band=(args.band[0], args.band[1]),
                categories=[c for c in args.categories.split(",") if c],
                blocked=[c for c in args.blocked.split(",") if c], holding_cap=args.holding_cap,
                max_holders=args.max_holders, signed_orders_required=args.signed_orders_required,
            )
            print(f"instrument {args.symbol} listed (a running venue opens it within a few seconds)")
        elif args.command == "instruments" and args.action == "list":
            for row in admin.list_instruments(config):
                print(json.dumps(row))
        elif args.command == "keys" and args.action == "create":
            secret = admin.create_key(config, args.participant, role=args.role)
            text = json.dumps(secret, indent=2)
            if args.out:
                args.out.write_text(text + "\n")
                args.out.chmod(0o600)
                print(f"key {secret['key_id']} written to {args.out}")
            else:
                print(text)
    except admin.AdminError as exc:
        print(f"venue: {exc.code}: {exc}", file=sys.stderr)
        return 1
    except runtime.StartupError as exc:
        print(f"venue: cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _attest(args: argparse.Namespace) -> int:
    """``venue attest``: sign one statement with the given key and publish it (direct or delegated)."""
    import time

    from attestation import AttestationDeployment, AttestationError, Kind, Publisher, statement_from_fields
    from settlement import SettlementError, connect

    try:
        fields = dict(f.split("=", 1) for f in args.fields if "=" in f)
        if len(fields) != len(args.fields):
            print("venue: invalid_statement: fields are NAME=VALUE", file=sys.stderr)
            return 2
        statement = statement_from_fields(Kind[args.kind.upper()], fields, now=int(time.time()))
        key = bytes.fromhex(args.key_file.read_text().strip().removeprefix("0x"))
        submitter_key = (bytes.fromhex(args.submitter_key_file.read_text().strip().removeprefix("0x"))
                         if args.submitter_key_file else None)
        deployment = AttestationDeployment.load(args.deployment)
        with connect(args.rpc, private_keys=[k for k in (key, submitter_key) if k]) as chain:
            publisher = Publisher(chain, deployment)
            attester = chain.accounts[0]
            if submitter_key is None:
                published = publisher.attest(args.series, statement, attester=attester)
            else:
                signed = publisher.sign(args.series, statement, private_key=key)
                published = publisher.submit(signed, submitter=chain.accounts[-1])
    except (AttestationError, SettlementError) as exc:
        print(f"venue: {exc.code}: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"venue: invalid_input: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"uid": "0x" + published.uid.hex(), "tx_hash": published.tx_hash,
                      "block": published.block_number, "gas_used": published.gas_used,
                      "kind": args.kind, "series": args.series, "attester": attester}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
