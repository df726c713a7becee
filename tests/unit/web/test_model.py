"""The web's own rules: roles, a session's life, throttled sign-ins, one-time tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.web.domain.model import (
    Failures,
    SessionPolicy,
    SignInToken,
    Throttle,
    after_failure,
    may,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_each_role_opens_what_the_ones_below_it_do() -> None:
    assert may("viewer", "view") and not may("viewer", "manage")
    assert may("manager", "manage") and not may("manager", "administer")
    assert may("admin", "administer") and may("admin", "view")
    assert not may("owner", "view")


def test_a_session_ends_when_idle_or_at_the_longest() -> None:
    policy = SessionPolicy(idle=timedelta(minutes=30), longest=timedelta(hours=12))
    assert policy.expires_at(NOW, NOW) == NOW + timedelta(minutes=30)
    late = NOW + timedelta(hours=11, minutes=50)
    assert policy.expires_at(NOW, late) == NOW + timedelta(hours=12)


def test_five_failures_in_the_window_lock_the_key() -> None:
    throttle, state = Throttle(), None
    for minute in range(4):
        state = after_failure(state, NOW + timedelta(minutes=minute), throttle)
        assert not state.locked(NOW + timedelta(minutes=minute))
    state = after_failure(state, NOW + timedelta(minutes=4), throttle)
    assert state.locked(NOW + timedelta(minutes=5))
    assert not state.locked(NOW + timedelta(minutes=20))


def test_failures_outside_the_window_start_again() -> None:
    old = Failures(4, NOW - timedelta(minutes=30))
    assert after_failure(old, NOW, Throttle()) == Failures(1, NOW)


def test_a_sign_in_token_works_once_and_not_after_it_expires() -> None:
    token = SignInToken("c-1", NOW + timedelta(minutes=15), None)
    assert token.usable(NOW) and not token.usable(NOW + timedelta(minutes=15))
    assert not SignInToken("c-1", NOW + timedelta(minutes=15), NOW).usable(NOW)
