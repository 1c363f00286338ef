"""``venue store-consumer`` and ``venue settler``: the store projection and settlement as durable
consumers of a leader's streams (``venue.consumers``, ``venue.settler``; docs/deployment.md)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from collections.abc import Callable

from venue.config import VenueConfig

COMMANDS = ("store-consumer", "settler")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                common: Callable[[argparse.ArgumentParser], None]) -> None:
    store = sub.add_parser("store-consumer", help="project the command stream into the SQL store (durable consumer)")
    common(store)
    store.add_argument("--journal-url", help="the venue's replicated journal, nats://host:port[,host:port]/STREAM")
    store.add_argument("--name", default="store", help="durable consumer name (default store)")
    settler = sub.add_parser("settler", help="settle the leader's trades on chain (durable consumer)")
    common(settler)
    settler.add_argument("--journal-url", help="the venue's replicated journal, nats://host:port[,host:port]/STREAM")
    settler.add_argument("--name", default="settler", help="durable consumer name (default settler)")


def run(args: argparse.Namespace, config: VenueConfig) -> int:
    if not config.journal_url:
        print(f"venue: HA_NEEDS_NATS: venue {args.command} needs --journal-url nats://...", file=sys.stderr)
        return 2
    if args.command == "store-consumer":
        from venue.consumers import run_store_consumer

        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        return run_store_consumer(config.journal_url, config.database_url, config.data_dir, name=args.name,
                                  replicas=config.journal_replicas, snapshot_every=config.snapshot_every, stop=stop)
    return asyncio.run(_settle(config, args.name))


async def _settle(config: VenueConfig, name: str) -> int:
    from settlement.deploy import DemoDeployment
    from settlement.service import SettlementService
    from venue.boot import finality_of, open_chain
    from venue.settler import Settler, SettlerError

    assert config.journal_url is not None
    chain = await asyncio.to_thread(open_chain, config)
    deployment = DemoDeployment.load(config.deployment_path)  # the leader's deployment: never deploys

    def service(on_update: Callable[..., None]) -> SettlementService:
        return SettlementService(chain, deployment.settlement, chain.private_key(deployment.settler),
                                 on_update=on_update, max_batch=config.settlement_batch,
                                 confirmations=config.confirmations, finality=finality_of(config, chain))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settler = Settler(config.journal_url, service, name=name, replicas=config.journal_replicas,
                      position_path=config.data_dir / f"settler-{name}.position.json")  # where its chain scans resume
    runner = asyncio.create_task(settler.run(stop))
    await settler.ready.wait()
    print(f"settler {name}: settling {deployment.settlement} for {config.journal_url}", flush=True)
    try:
        await runner
    except SettlerError as exc:
        print(f"venue: {exc.code}: {exc}", file=sys.stderr)
        return 2
    finally:
        chain.close()
    return 0
