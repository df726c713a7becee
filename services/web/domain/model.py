"""The web's own rules: who may do what in the console, how long a session lives, when a
sign-in is throttled, and a one-time sign-in token's life. Pure: time is passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Role = Literal["viewer", "manager", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "manager", "admin")
# What each role may do beyond looking: a manager runs the program (adjustments, overrides,
# campaigns, rules, segments), an admin also manages partners and staff.
Action = Literal["view", "manage", "administer"]
_NEEDS: dict[Action, Role] = {"view": "viewer", "manage": "manager", "administer": "admin"}

SIGN_IN_LINK_LIFE = timedelta(minutes=15)


def may(role: str, action: Action) -> bool:
    """Whether a staff role opens an action (viewer < manager < admin)."""
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(_NEEDS[action])


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    longest: timedelta

    def expires_at(self, created_at: datetime, seen_at: datetime) -> datetime:
        """A session ends after `idle` without use, and `longest` after it began at most."""
        return min(seen_at + self.idle, created_at + self.longest)


@dataclass(frozen=True)
class Throttle:
    """After `failures` failed sign-ins within `window` a key (a username, a client address) is
    locked for `lockout`; a success clears it."""

    failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Failures:
    count: int
    first_at: datetime
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


def after_failure(current: Failures | None, now: datetime, throttle: Throttle) -> Failures:
    """The key's failures once one more is counted: a window that has passed starts again."""
    if current is None or now - current.first_at > throttle.window:
        current = Failures(0, now)
    count = current.count + 1
    locked = now + throttle.lockout if count >= throttle.failures else current.locked_until
    return Failures(count, current.first_at, locked)


@dataclass(frozen=True)
class SignInToken:
    customer_id: str
    expires_at: datetime
    used_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.used_at is None and now < self.expires_at
