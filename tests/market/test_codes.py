"""The one error-code registry: every stage's codes are in it, once, inside their stage's band."""

from __future__ import annotations

import itertools

from compliance.codes import ReasonCode
from engine import ResultCode
from gateway.errors import GATEWAY_CODES, http_status
from market.codes import ALIASES, BANDS, REGISTRY, GateCode, Stage, code_info, engine_message, message


def test_every_engine_code_is_registered_in_the_engine_band_with_its_number() -> None:
    for rc in ResultCode:
        info = REGISTRY[rc.name]
        assert (info.stage, info.number) == (Stage.ENGINE, rc.value)


def test_every_gate_and_gateway_code_is_registered_in_its_band() -> None:
    for gate in GateCode:
        info = REGISTRY[gate.value]
        # an unknown instrument has one spelling, the engine's
        assert info.stage is (Stage.ENGINE if gate is GateCode.UNKNOWN_INSTRUMENT else Stage.GATE)
    for name in GATEWAY_CODES:
        assert REGISTRY[name].stage is Stage.GATEWAY
    for info in REGISTRY.values():
        assert info.number in BANDS[info.stage], info
        assert info.message and info.message == message(info.name)


def test_numbers_are_unique_and_bands_do_not_overlap() -> None:
    numbers = [info.number for info in REGISTRY.values()]
    assert len(numbers) == len(set(numbers))
    ranges = sorted(BANDS.values(), key=lambda r: r.start)
    assert all(a.stop <= b.start for a, b in itertools.pairwise(ranges))


def test_the_double_spelling_of_unknown_instrument_is_gone_and_the_old_one_still_maps() -> None:
    assert ReasonCode.UNKNOWN_INSTRUMENT.value == ResultCode.UNKNOWN_INSTRUMENT.name
    assert "INSTRUMENT_UNKNOWN" not in REGISTRY
    assert code_info("INSTRUMENT_UNKNOWN") == REGISTRY["UNKNOWN_INSTRUMENT"]
    assert set(ALIASES.values()) <= set(REGISTRY)
    assert http_status("UNKNOWN_INSTRUMENT") == 404


def test_engine_messages_come_from_the_registry() -> None:
    assert engine_message(ResultCode.POST_ONLY_WOULD_CROSS) == "post-only order would cross the book"
    assert all(engine_message(rc) == REGISTRY[rc.name].message for rc in ResultCode)


def test_every_registered_code_has_an_http_status() -> None:
    for name in REGISTRY:
        assert 200 <= http_status(name) < 600
