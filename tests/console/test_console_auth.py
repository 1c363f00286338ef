"""Console login codes and session tokens, with a controlled clock."""

from __future__ import annotations

import pytest

from gateway.operator import ConsoleAuth, ConsoleAuthError


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(clock: Clock) -> ConsoleAuth:
    return ConsoleAuth(secret=b"s" * 32, code_ttl_s=300, session_ttl_s=3600, max_session_s=7200, clock=clock)


def code_of(exc: pytest.ExceptionInfo[ConsoleAuthError]) -> str:
    return exc.value.code


def test_code_exchanges_once_for_a_session(auth: ConsoleAuth) -> None:
    code = auth.issue_login_code("ops")
    session = auth.exchange(code)
    assert session.operator == "ops"
    assert auth.verify(session.token) == "ops"
    with pytest.raises(ConsoleAuthError) as exc:
        auth.exchange(code)
    assert code_of(exc) == "INVALID_LOGIN_CODE"


def test_code_expires(auth: ConsoleAuth, clock: Clock) -> None:
    code = auth.issue_login_code("ops")
    clock.now += 301
    with pytest.raises(ConsoleAuthError) as exc:
        auth.exchange(code)
    assert code_of(exc) == "INVALID_LOGIN_CODE"


def test_session_expires_and_refresh_is_capped(auth: ConsoleAuth, clock: Clock) -> None:
    session = auth.exchange(auth.issue_login_code("ops"))
    clock.now += 3000
    refreshed = auth.refresh(session.token)
    assert refreshed.expires_at == int(clock.now) + 3600
    clock.now += 3000
    last = auth.refresh(refreshed.token)
    assert last.expires_at == int(clock.now - 6000) + 7200  # capped at the maximum session age
    clock.now += 1200
    with pytest.raises(ConsoleAuthError) as exc:
        auth.verify(last.token)
    assert code_of(exc) == "SESSION_EXPIRED"


def test_refresh_after_max_age_is_refused(clock: Clock) -> None:
    auth = ConsoleAuth(secret=b"s" * 32, session_ttl_s=3600, max_session_s=1800, clock=clock)
    session = auth.exchange(auth.issue_login_code("ops"))
    clock.now += 1799
    assert auth.verify(session.token) == "ops"
    clock.now += 1
    with pytest.raises(ConsoleAuthError):
        auth.refresh(session.token)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + "x",
        lambda t: "A" + t[1:],
        lambda t: t.split(".")[0],
        lambda t: "",
        lambda t: "..",
        lambda t: "!!!.???",
        lambda t: t.replace(".", ".."),
    ],
)
def test_tampered_tokens_are_refused(auth: ConsoleAuth, mangle: object) -> None:
    token = auth.exchange(auth.issue_login_code("ops")).token
    with pytest.raises(ConsoleAuthError) as exc:
        auth.verify(mangle(token))  # type: ignore[operator]
    assert code_of(exc) == "INVALID_SESSION"


def test_tokens_from_another_secret_are_refused(auth: ConsoleAuth, clock: Clock) -> None:
    other = ConsoleAuth(secret=b"t" * 32, clock=clock)
    token = other.exchange(other.issue_login_code("ops")).token
    with pytest.raises(ConsoleAuthError):
        auth.verify(token)


def test_revoke(auth: ConsoleAuth) -> None:
    token = auth.exchange(auth.issue_login_code("ops")).token
    auth.revoke(token)
    with pytest.raises(ConsoleAuthError) as exc:
        auth.verify(token)
    assert code_of(exc) == "SESSION_REVOKED"


def test_bad_construction() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        ConsoleAuth(secret=b"short")
    with pytest.raises(ValueError, match="operator"):
        ConsoleAuth().issue_login_code("")
