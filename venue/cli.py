"""``venue`` command line: run, demo, deploy, migrate, participants, keys, instruments, attest, and the
records commands of ``venue.records_cli`` (export, confirmations, holders, audit)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from journal.errors import JournalError
from venue import chain_cli, consumers_cli, records_cli
from venue.admin import AdminError
from venue.config import ConfigError, VenueConfig, load_config
from venue.listings import PROFESSIONAL_CATEGORIES

log = logging.getLogger("venue")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML file with a [venue] table")
    parser.add_argument("--data-dir", type=Path, help="journal, snapshots, SQLite file, deployment (default ./var)")
    parser.add_argument("--db-url", help="SQLAlchemy URL, e.g. postgresql+psycopg://postgres@127.0.0.1/test")
    parser.add_argument("--chain", help="inprocess (default) | anvil | JSON-RPC URL")
    parser.add_argument("--log-level", help="DEBUG | INFO (default) | WARNING | ERROR (env VENUE_LOG_LEVEL)")
    parser.add_argument("--log-format", choices=["text", "json"],
                        help="text or json lines (env VENUE_LOG_FORMAT; default json for run, text otherwise)")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"a positive number of seconds, not {text!r}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="venue", description="OMN note trading venue")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the venue (gateway, engine, settlement, chain watcher)")
    _common(run)
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.add_argument("--journal-url",
                     help="replicated journal, nats://host:port[,host:port]/STREAM (docs/deployment.md)")
    run.add_argument("--role", choices=["auto", "leader", "standby"],
                     help="with a nats:// journal: lead when the lease is free (auto, the default), insist on "
                          "leading (leader), or follow first (standby); a follower takes over when the lease lapses")
    run.add_argument("--shard", help="with --shards: run this shard's group (its own stream and lease)")
    run.add_argument("--shards", help="the shard map NAME=INDEX:SYM,SYM;NAME=INDEX:SYM (docs/deployment.md)")
    run.add_argument("--store", choices=["embedded", "external"], dest="store_mode",
                     help="external: leave the orders/trades projection to `venue store-consumer` (needs --role)")
    run.add_argument("--settlement", choices=["embedded", "external"], dest="settlement_mode",
                     help="external: leave settlement to `venue settler` (needs --role)")

    gw = sub.add_parser("gateway", help="serve the API in a process of its own, forwarding to the leader over NATS")
    _common(gw)
    gw.add_argument("--host")
    gw.add_argument("--port", type=int)
    gw.add_argument("--journal-url", help="the venue's replicated journal, nats://host:port[,host:port]/STREAM")
    gw.add_argument("--shards", help="a sharded venue's shard map: route each command to its shard")

    demo = sub.add_parser("demo", help="run the venue with a deployed demo market and trading bots")
    _common(demo)
    demo.add_argument("--host")
    demo.add_argument("--port", type=int)
    demo.add_argument("--duration", type=float, default=None, help="stop after N seconds (default: run until Ctrl-C)")
    demo.add_argument("--investors", type=int, default=3)
    demo.add_argument("--call-interval", type=_positive_seconds, default=60.0,
                      help="seconds between the uncrosses of the demo's call-auction series (default 60)")

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
    padd.add_argument("--jurisdiction", default="LU", help="ISO 3166-1 alpha-2 country code")
    padd.add_argument("--kyc-days", type=int, default=365)
    padd.add_argument("--wallet", default=None, help="0x address, EIP-55 checksummed (registered on chain separately)")
    pupdate = psub.add_parser("update", help="change a participant's category, jurisdiction, KYC, status or wallet")
    _common(pupdate)
    pupdate.add_argument("participant")
    pupdate.add_argument("--category")
    pupdate.add_argument("--jurisdiction")
    pupdate.add_argument("--kyc-days", type=int, help="KYC valid for this many days from today")
    pupdate.add_argument("--status", choices=["active", "suspended"])
    pupdate.add_argument("--wallet", help="add this settlement wallet")
    poff = psub.add_parser("offboard", help="close a participant: keys revoked, open orders cancelled")
    _common(poff)
    poff.add_argument("participant")
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
    _rule_flags(iadd, defaults=True)
    irules = isub.add_parser("rules", help="change listing rules of a listed instrument (only the flags given)")
    _common(irules)
    irules.add_argument("symbol")
    _rule_flags(irules, defaults=False)
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
    krevoke = ksub.add_parser("revoke", help="revoke an API key (a running venue refuses it and closes its sessions)")
    _common(krevoke)
    krevoke.add_argument("key_id")
    records_cli.add_parsers(sub, _common)
    consumers_cli.add_parsers(sub, _common)
    chain_cli.add_parsers(sub, _common)
    return parser


def _rule_flags(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Listing rules as flags; ``instruments rules`` changes only those given."""
    parser.add_argument("--categories", default=",".join(PROFESSIONAL_CATEGORIES) if defaults else None,
                        help="allowed investor categories, comma-separated (default: MiFID II professional "
                             "categories only: " + ", ".join(PROFESSIONAL_CATEGORIES) + ")")
    parser.add_argument("--allowed", default=None, help="allowed jurisdictions, ISO 3166 alpha-2, comma-separated "
                                                        "(empty: all not blocked)")
    parser.add_argument("--blocked", default=None, help="blocked jurisdictions, ISO 3166 alpha-2, comma-separated")
    parser.add_argument("--holding-cap", default=None, help="token base units per investor ('none' to clear)")
    parser.add_argument("--max-holders", default=None, help="('none' to clear)")
    parser.add_argument("--lockup-until", default=None, help="no trading before this UTC date/time (ISO 8601)")
    parser.add_argument("--trading-end", default=None, help="no trading from this UTC date/time (ISO 8601)")
    parser.add_argument("--maturity-date", default=None, help="the notes' maturity (ISO date)")
    parser.add_argument("--nav-collar", nargs=2, default=None, metavar=("BELOW_PCT", "ABOVE_PCT"),
                        help="accepted prices around the NAV in force, percent")
    parser.add_argument("--attestation-max-age", default=None, help="seconds; older NAV/custody data halts trading")
    parser.add_argument("--signed-orders-required", default=None, nargs="?", const="true", metavar="true|false",
                        help="every order must carry an order signed by the participant's wallet (issue 16)")
    parser.add_argument("--rule", action="append", default=[], metavar="NAME=VALUE",
                        help="any other listing rule (names: docs/runbook.md), repeatable")


def _iso_ns(text: str, what: str) -> int | None:
    import datetime as dt

    if text.lower() == "none":
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise AdminError("INVALID_LISTING_RULE", f"{what}: {text!r} is not an ISO 8601 date/time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp()) * 10**9


def _rules_from_args(args: argparse.Namespace) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    for flag, name in (("categories", "allowed_categories"), ("allowed", "allowed_jurisdictions"),
                       ("blocked", "blocked_jurisdictions")):
        value = getattr(args, flag)
        if value is not None:
            rules[name] = [c for c in value.split(",") if c.strip()]
    for flag, name in (("holding_cap", "holding_cap"), ("max_holders", "max_holders"),
                       ("attestation_max_age", "attestation_max_age_s"), ("maturity_date", "maturity_date")):
        value = getattr(args, flag)
        if value is not None:
            rules[name] = None if value.lower() == "none" else value
    if args.lockup_until is not None:
        rules["lockup_until_ts"] = _iso_ns(args.lockup_until, "lockup-until")
    if args.trading_end is not None:
        rules["trading_end_ts"] = _iso_ns(args.trading_end, "trading-end")
    if args.nav_collar is not None:
        rules["nav_collar_below_pct"], rules["nav_collar_above_pct"] = args.nav_collar
    if args.signed_orders_required is not None:
        rules["signed_orders_required"] = args.signed_orders_required
    for item in args.rule:
        name, sep, value = item.partition("=")
        if not sep:
            raise AdminError("INVALID_LISTING_RULE", f"--rule {item!r}: expected NAME=VALUE")
        rules[name.strip()] = None if value.lower() == "none" else value
    return rules


def _config(args: argparse.Namespace) -> VenueConfig:
    overrides: dict[str, Any] = {
        "data_dir": getattr(args, "data_dir", None),
        "db_url": getattr(args, "db_url", None),
        "chain": getattr(args, "chain", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "journal_url": getattr(args, "journal_url", None),
        "store_mode": getattr(args, "store_mode", None),
        "settlement_mode": getattr(args, "settlement_mode", None),
        "log_level": getattr(args, "log_level", None),
        "log_format": getattr(args, "log_format", None),
    }
    return load_config(getattr(args, "config", None), overrides)


async def _serve(config: VenueConfig) -> None:
    """``venue run``: serve until Ctrl-C or SIGTERM, then drain (``Venue.stop``) and exit 0."""
    from venue.runtime import Venue

    venue = Venue(config)
    log.info("venue starting: data %s, database %s, chain %s", config.data_dir, config.database_url.split("@")[-1],
             config.chain)
    await venue.start()
    log.info("venue started: settlement contract %s, %d instruments", venue.deployment.settlement,
             len(venue.core.listings()))
    def ready() -> None:
        log.info("venue listening on %s", venue.base_url)
        print(f"venue listening on {venue.base_url}\nconsole: {venue.console_url()}", flush=True)

    try:
        await venue.serve(on_ready=ready)
    finally:
        await venue.stop()
        log.info("venue stopped: journal closed, store flushed")
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
    from venue.logconfig import configure

    try:
        configure(config.log_level, config.log_format or ("json" if args.command == "run" else "text"))
    except ValueError as exc:
        print(f"venue: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command in records_cli.COMMANDS:
        return records_cli.run(args, config)
    if args.command in consumers_cli.COMMANDS:
        return consumers_cli.run(args, config)
    from venue import admin, runtime

    try:
        if args.command == "gateway":
            if not config.journal_url:
                print("venue: HA_NEEDS_NATS: venue gateway needs --journal-url nats://...", file=sys.stderr)
                return 2
            from venue.gatewayproc import serve_gateway

            return asyncio.run(serve_gateway(config.journal_url, host=config.host, port=config.port,
                                             data_dir=str(config.data_dir), shards=args.shards))
        if args.command == "run" and "external" in (config.store_mode, config.settlement_mode) \
                and not config.journal_url:
            print("venue: HA_NEEDS_NATS: --store/--settlement external need --journal-url nats://...", file=sys.stderr)
            return 2
        if args.command == "run" and (config.journal_url or args.role or args.shard or args.shards):
            from venue import ha

            if not config.journal_url:
                print("venue: HA_NEEDS_NATS: --role and --shard need --journal-url nats://...", file=sys.stderr)
                return 2
            shard = None
            if args.shard or args.shards:  # a shard group: its own stream, lease and instruments
                from dataclasses import replace

                from venue.shards import ShardMapError, shard_config
                try:
                    shard, url = shard_config(config.journal_url, args.shards or "", args.shard or "")
                except ShardMapError as exc:
                    print(f"venue: {exc.code}: {exc}", file=sys.stderr)
                    return 2
                config = replace(config, journal_url=url)
            try:
                return asyncio.run(ha.serve_ha(config, args.role or "auto", shard=shard))
            except ha.HAError as exc:
                print(f"venue: {exc.code}: {exc}", file=sys.stderr)
                return 1
        if args.command == "run":
            asyncio.run(_serve(config))
        elif args.command == "demo":
            from venue.demo import run_demo

            asyncio.run(run_demo(config, duration=args.duration, investors=args.investors,
                                 call_interval_s=args.call_interval))
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
        elif args.command == "participants" and args.action == "update":
            row = admin.update_participant(
                config, args.participant, investor_category=args.category, country=args.jurisdiction,
                kyc_days=args.kyc_days, status=args.status, wallet_address=args.wallet)
            print(json.dumps(row))
        elif args.command == "participants" and args.action == "offboard":
            revoked = admin.offboard_participant(config, args.participant)
            print(f"participant {args.participant} offboarded; keys revoked: {', '.join(revoked) or 'none'}")
        elif args.command == "keys" and args.action == "revoke":
            owner = admin.revoke_key(config, args.key_id)
            print(f"key {args.key_id} of {owner} revoked")
        elif args.command == "participants" and args.action == "list":
            for row in admin.list_participants(config):
                print(json.dumps(row))
        elif args.command == "instruments" and args.action == "add":
            admin.add_instrument(
                config, args.symbol, name=args.name, token=args.token, cash_token=args.cash_token,
                token_decimals=args.token_decimals, cash_decimals=args.cash_decimals, tick=args.tick, lot=args.lot,
                min_qty=args.min_qty, max_qty=args.max_qty, band=(args.band[0], args.band[1]),
                rules=_rules_from_args(args),
            )
            print(f"instrument {args.symbol} listed (a running venue opens it within a few seconds)")
        elif args.command == "chain":
            print(json.dumps(chain_cli.run(args, config)))
        elif args.command == "instruments" and args.action == "rules":
            print(json.dumps(admin.set_instrument_rules(config, args.symbol, _rules_from_args(args))))
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
    except (runtime.StartupError, JournalError) as exc:
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
