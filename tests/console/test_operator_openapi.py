"""The OpenAPI spec documents the operator API like the trader API: typed responses, documented
error responses, and the error codes as an enum drawn from the one code registry."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from gateway.errors import CONSOLE_SESSION_CODES, GATEWAY_CODES
from market.codes import REGISTRY


def _operations(spec: dict[str, Any], prefix: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in spec["paths"].items() if path.startswith(prefix)
            for method, op in item.items()]


def test_every_operator_route_has_a_typed_response_and_documented_errors(app: FastAPI) -> None:
    spec = app.openapi()
    ops = _operations(spec, "/v1/operator")
    assert len(ops) >= 13
    for method, path, op in ops:
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in ok, (method, path, ok)  # a named model, not an untyped object
        for status in ("400", "401", "403"):
            error = op["responses"][status]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
        assert "422" not in op["responses"] or op["responses"]["422"]["content"]["application/json"][
            "schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
        assert op.get("security") == [{"key": [], "signature": [], "timestamp": []}], (method, path)
    assert "Participant" in spec["components"]["schemas"]
    assert "OperatorInstrument" in spec["components"]["schemas"]


def test_error_codes_are_an_enum_from_the_registry(app: FastAPI) -> None:
    code = app.openapi()["components"]["schemas"]["ErrorDetail"]["properties"]["code"]
    assert code["type"] == "string"
    listed = set(code["enum"])
    assert set(REGISTRY) - {"OK"} <= listed
    assert set(GATEWAY_CODES) | set(CONSOLE_SESSION_CODES) <= listed
    assert {"WRONG_TICK", "INSUFFICIENT_CASH", "UNKNOWN_PARTICIPANT", "INVALID_SESSION", "CHAIN_ERROR"} <= listed
    assert "OK" not in listed
