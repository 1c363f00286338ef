"""The hot path's JSON (issue 13, speed): ``parse_object`` parses with orjson and proves by counting
that no object repeats a key; ``streams.dumps`` encodes with orjson. Both must answer exactly as
the strict standard-library versions did: same objects, duplicate keys still refused at any depth
(also when strings hold colons or escaped quotes), same compact text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import ApiError
from gateway.streams import dumps
from gateway.validation import parse_object

_text = st.text(alphabet=st.sampled_from('ab:"\\,{}[] \u00e9'), max_size=6)
_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _text
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                       max_leaves=12)
_objects = st.dictionaries(_text, _values, max_size=5)


def _stdlib(text: str) -> Any:
    return json.loads(text)


@settings(max_examples=300, deadline=None)
@given(_objects, st.booleans())
def test_parse_object_returns_what_the_strict_parser_returns(obj: dict[str, Any], ascii_only: bool) -> None:
    text = json.dumps(obj, ensure_ascii=ascii_only)
    assert parse_object(text) == _stdlib(text)
    assert parse_object(text.encode()) == _stdlib(text)


def _with_duplicate(obj: dict[str, Any], key: str) -> str:
    """``obj`` as JSON text with ``key`` appearing twice in its outermost object."""
    inner = json.dumps(obj)[1:-1]
    extra = f"{json.dumps(key)}: 1"
    return "{" + (f"{inner}, {extra}" if inner else extra) + f", {json.dumps(key)}: 2" + "}"


@settings(max_examples=300, deadline=None)
@given(_objects, _text, st.booleans())
def test_a_repeated_key_is_refused_however_the_strings_look(obj: dict[str, Any], key: str, nested: bool) -> None:
    obj.pop(key, None)
    text = _with_duplicate(obj, key)
    if nested:
        text = json.dumps({"outer": "x:y"})[:-1] + ', "inner": ' + text + "}"
    with pytest.raises(ApiError) as err:
        parse_object(text)
    assert err.value.code == "DUPLICATE_JSON_KEY"


@pytest.mark.parametrize("text", [
    '{"side": "buy", "client_order_id": "a:b:c", "side": "sell"}',  # colons in a value hide nothing
    '{"a": "\\":", "a": 1}',  # an escaped quote before a colon
    '{"a": {"b": 1, "b": 2}}',
    '{"a": [{"b": 1}, {"c": 1, "c": 2}]}',
])
def test_known_duplicate_shapes_are_refused(text: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_object(text)
    assert err.value.code == "DUPLICATE_JSON_KEY"


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', "[1]", '"x"', "{", '{"a": 1} x'])
def test_what_the_strict_parser_refuses_stays_refused(text: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_object(text)
    assert err.value.code == "MALFORMED_JSON"


def test_integers_beyond_64_bits_still_parse_and_encode() -> None:
    big = 2**70 + 1  # e.g. raw token amounts: orjson refuses them, the standard library takes over
    assert parse_object(json.dumps({"amount": big})) == {"amount": big}
    assert dumps({"amount": big, "n": 1}) == '{"amount":1180591620717411303425,"n":1}'


@settings(max_examples=200, deadline=None)
@given(_objects)
def test_dumps_is_the_compact_standard_encoding(obj: dict[str, Any]) -> None:
    assert json.loads(dumps(obj)) == obj
    assert dumps(obj) == json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
