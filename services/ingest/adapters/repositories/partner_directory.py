"""Partners by API key, kept in memory for a few seconds: a POS call needs its partner, and
asking the database for it on every call would cost a round trip each. The API reaches it
through `ports.PartnerDirectory`; bootstrap builds it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.adapters.repositories.api import partner_repository
from services.ingest.domain.model import Partner
from shared.clock import Clock
from shared.storage.transactions import in_transaction


class PartnerDirectory:
    """A partner found in the database is reused for `ttl`: that is how long a revoked or
    replaced key keeps working in this process. An unknown key is not remembered, so a
    partner provisioned a moment ago can call at once. Concurrent misses for one key share
    one query."""

    def __init__(self, engine: AsyncEngine, clock: Clock, ttl: timedelta) -> None:
        self._engine = engine
        self._clock = clock
        self._ttl = ttl
        self._found: dict[str, tuple[Partner, datetime]] = {}
        self._loading: dict[str, asyncio.Future[Partner | None]] = {}

    async def by_key_hash(self, api_key_hash: str) -> Partner | None:
        cached = self._found.get(api_key_hash)
        if cached is not None and self._clock.now() < cached[1]:
            return cached[0]
        loading = self._loading.get(api_key_hash)
        if loading is None:
            loading = asyncio.ensure_future(self._load(api_key_hash))
            self._loading[api_key_hash] = loading
            loading.add_done_callback(lambda _: self._loading.pop(api_key_hash, None))
        # Shielded: one caller giving up (its client went away) must not cancel the others' query.
        return await asyncio.shield(loading)

    async def _load(self, api_key_hash: str) -> Partner | None:
        partner = await in_transaction(
            self._engine, lambda conn: partner_repository(conn).partner_by_key_hash(api_key_hash)
        )
        if partner is None or self._ttl <= timedelta(0):
            self._found.pop(api_key_hash, None)
        else:
            self._found[api_key_hash] = (partner, self._clock.now() + self._ttl)
        return partner
