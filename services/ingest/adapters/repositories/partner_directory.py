"""Partners by API key, kept in memory for a few seconds: a POS call needs its partner, and
asking the database for it on every call would cost a round trip each. The API reaches it
through `ports.PartnerDirectory`; bootstrap builds it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.ingest.adapters import tables
from services.ingest.adapters.repositories.api import partner_repository
from services.ingest.domain.model import Partner
from services.ingest.ports import LookupsThrottled
from shared.clock import Clock
from shared.storage.transactions import in_transaction

# Unknown keys remembered at most (the oldest forgotten first): a flood of distinct keys
# cannot grow the process.
MAX_UNKNOWN_KEYS = 10_000


class PartnerDirectory:
    """A partner found in the database is reused for `ttl`: that is how long a revoked or
    replaced key keeps working in this process. Concurrent misses for one key share one
    query.

    Unknown keys (issue 19: a flood of them must not run the database): a key found in no
    partner is remembered as unknown for `unknown_ttl` (at most MAX_UNKNOWN_KEYS of them), so
    it costs one lookup per that long; and lookups of keys that are not a partner's are limited
    to `unknown_lookups_per_second` (a token bucket holding one second's worth): past it,
    `by_key_hash` raises LookupsThrottled (a 429) without asking the database. Which keys are
    a partner's is known from one query of every partner's key hash (a small table), made
    again at most once per `unknown_ttl` when a key outside it comes: so a flood cannot
    throttle a real partner, even one not seen yet since the process started (one
    provisioned during a flood may get 429s until the next listing, `unknown_ttl` at most).
    A partner provisioned a moment ago can call at once otherwise: its key is new, so nobody
    presented it before (with `unknown_ttl` 0, nothing unknown is remembered at all)."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        ttl: timedelta,
        *,
        unknown_ttl: timedelta = timedelta(0),
        unknown_lookups_per_second: float | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._ttl = ttl
        self._unknown_ttl = unknown_ttl
        self._rate = unknown_lookups_per_second
        self._found: dict[str, tuple[Partner, datetime]] = {}
        self._known: set[str] = set()  # partners' key hashes: never throttled
        self._known_until: datetime | None = None
        self._listing: asyncio.Future[set[str]] | None = None
        self._unknown: dict[str, datetime] = {}
        self._tokens = unknown_lookups_per_second or 0.0
        self._refilled = clock.now()
        self._loading: dict[str, asyncio.Future[Partner | None]] = {}

    async def by_key_hash(self, api_key_hash: str) -> Partner | None:
        now = self._clock.now()
        cached = self._found.get(api_key_hash)
        if cached is not None and now < cached[1]:
            return cached[0]
        loading = self._loading.get(api_key_hash)
        if loading is None:
            if self._remembered_unknown(api_key_hash, now):
                return None
            loading = asyncio.ensure_future(self._load(api_key_hash, now))
            self._loading[api_key_hash] = loading
            loading.add_done_callback(lambda _: self._loading.pop(api_key_hash, None))
        # Shielded: one caller giving up (its client went away) must not cancel the others' query.
        return await asyncio.shield(loading)

    async def _may_look_up(self, api_key_hash: str, now: datetime) -> bool:
        """A partner's key always; another while the bucket has a token."""
        if api_key_hash in self._known:
            return True
        if self._known_until is None or now >= self._known_until:
            if self._listing is None:
                self._listing = asyncio.ensure_future(self._key_hashes())
            try:
                listed = await asyncio.shield(self._listing)
            finally:
                self._listing = None
            self._known |= listed
            self._known_until = now + max(self._unknown_ttl, timedelta(seconds=1))
            if api_key_hash in self._known:
                return True
        return self._take_token(now)

    async def _key_hashes(self) -> set[str]:
        """Every partner's key hash, active or not."""

        async def work(conn: AsyncConnection) -> set[str]:
            return set((await conn.scalars(sa.select(tables.partners.c.api_key_hash))).all())

        return await in_transaction(self._engine, work)

    async def _query(self, api_key_hash: str) -> Partner | None:
        return await in_transaction(
            self._engine, lambda conn: partner_repository(conn).partner_by_key_hash(api_key_hash)
        )

    async def _load(self, api_key_hash: str, asked_at: datetime) -> Partner | None:
        if self._rate is not None and not await self._may_look_up(api_key_hash, asked_at):
            raise LookupsThrottled
        partner = await self._query(api_key_hash)
        now = self._clock.now()
        if partner is None:
            self._found.pop(api_key_hash, None)
            self._remember_unknown(api_key_hash, now)
            return None
        self._known.add(api_key_hash)
        if self._ttl > timedelta(0):
            self._found[api_key_hash] = (partner, now + self._ttl)
        return partner

    def _remembered_unknown(self, api_key_hash: str, now: datetime) -> bool:
        until = self._unknown.get(api_key_hash)
        if until is None:
            return False
        if now < until:
            return True
        del self._unknown[api_key_hash]
        return False

    def _remember_unknown(self, api_key_hash: str, now: datetime) -> None:
        if self._unknown_ttl <= timedelta(0):
            return
        self._unknown.pop(api_key_hash, None)
        while len(self._unknown) >= MAX_UNKNOWN_KEYS:
            del self._unknown[next(iter(self._unknown))]  # the oldest
        self._unknown[api_key_hash] = now + self._unknown_ttl

    def _take_token(self, now: datetime) -> bool:
        if self._rate is None:
            return True
        elapsed = max((now - self._refilled).total_seconds(), 0.0)
        self._tokens = min(self._rate, self._tokens + elapsed * self._rate)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
