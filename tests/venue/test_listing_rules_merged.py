"""The listing rules added for calls, RFQs and blocks go through the stored-rules parser with their
kinds checked (participant ids kept as written, seconds as numbers, the responder choice)."""

from __future__ import annotations

import pytest

from venue.listings import ListingError, ListingRules, rules_from_dict, rules_to_dict


def test_new_rules_round_trip() -> None:
    rules = ListingRules(call_interval_s=60.0, market_makers=("mm-1", "Dealer_2"), rfq_responders="market_makers",
                         min_block_lots=10, block_confirm_s=120, rfq_max_ttl_s=60)
    assert rules_from_dict(rules_to_dict(rules)) == rules


@pytest.mark.parametrize(("name", "value"), [
    ("call_interval_s", 0), ("call_interval_s", "soon"), ("call_interval_s", True),
    ("market_makers", 5), ("rfq_responders", "everyone"), ("min_block_lots", -1), ("block_confirm_s", "x"),
])
def test_bad_values_are_refused_with_the_rule_named(name: str, value: object) -> None:
    with pytest.raises(ListingError, match=name):
        rules_from_dict({name: value})
