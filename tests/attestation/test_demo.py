"""The demo attestors publish the model's four statements; the watcher sees NAV and accrual grow."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from attestation import (
    AttestationWatcher,
    DemoAttestor,
    Kind,
    ProductionModel,
    Publisher,
    deploy_attestation,
    register_demo_attestors,
)
from attestation.model import DAY_S
from settlement import Chain, DemoAdmin, deploy_demo

NOTES = 1_000


def attestor(
    chain: Chain, *, coverage_bps: int = 10_000, ticks: list[int] | None = None
) -> tuple[DemoAttestor, AttestationWatcher, int]:
    issuer = chain.accounts[0]
    dep = deploy_demo(chain, admin=issuer, settler=chain.accounts[1])
    DemoAdmin(chain, dep).onboard(chain.new_account(), country=756, notes=NOTES)
    att = deploy_attestation(chain, issuer)
    pub = Publisher(chain, att)
    now = int(chain.w3.eth.get_block("latest")["timestamp"])
    issued = now - 30 * DAY_S
    model = ProductionModel(ph_s_per_note=Decimal("0.1"), network_ph_s=Decimal(800_000), epoch=issued,
                            halving_at=issued + 900 * DAY_S)
    demo = DemoAttestor(pub, dep.token, register_demo_attestors(pub, dep.token, issuer=issuer), model,
                        issued_at=issued, maturity=issued + 3 * 365 * DAY_S, btc_price=lambda t: Decimal(90_000),
                        custody_coverage_bps=lambda t: coverage_bps,
                        clock=lambda: float(ticks.pop(0) if ticks and len(ticks) > 1 else ticks[0] if ticks else now))
    watcher = AttestationWatcher(chain.w3, att, series=[dep.token], wall_clock=lambda: float(now))
    return demo, watcher, now


def test_demo_attestor_publishes_all_kinds_and_nav_moves(in_process: Chain) -> None:
    demo, watcher, now = attestor(in_process)
    published = demo.publish(now - 600)
    assert len(published) == 4
    watcher.poll_once()
    first = watcher.reference(demo.series)
    assert set(first.latest) == set(Kind) and first.custody_coverage == 1
    assert first.latest[Kind.NAV].delegation is not None  # administrator signs, submitter sends
    assert first.latest[Kind.CUSTODY].delegation is None
    demo.publish(now)
    watcher.poll_once()
    second = watcher.reference(demo.series)
    assert first.accrued_btc_per_note is not None and second.accrued_btc_per_note is not None
    assert second.accrued_btc_per_note > first.accrued_btc_per_note > 0
    assert second.nav_per_note is not None and first.nav_per_note is not None
    assert second.nav_per_note != first.nav_per_note and second.nav_currency == "USD"
    assert second.realised_ph_s == Decimal("98")  # 1000 notes x 0.1 PH/s x 98 % uptime


def test_demo_custody_shortfall(in_process: Chain) -> None:
    demo, watcher, now = attestor(in_process, coverage_bps=9_500)
    demo.publish(now)
    watcher.poll_once()
    coverage = watcher.reference(demo.series).custody_coverage
    assert coverage is not None and Decimal("0.949") < coverage <= Decimal("0.95")


async def test_demo_run_publishes_then_retries_after_a_refusal(in_process: Chain) -> None:
    now = int(in_process.w3.eth.get_block("latest")["timestamp"])
    # the second tick repeats the first as_of: refused and logged; the third publishes; later ones repeat it
    demo, watcher, _ = attestor(in_process, ticks=[now - 10, now - 10, now - 5])
    stop = asyncio.Event()
    task = asyncio.create_task(demo.run(stop, interval_s=0.01))
    for _ in range(500):
        if demo.published >= 8:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert demo.published == 8
    watcher.poll_once()
    latest = watcher.latest(demo.series, Kind.NAV)
    assert latest is not None and latest.as_of == now - 5
