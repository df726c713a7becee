"""A fake of ingest's memory of signed till calls (`ports.TillSignatures`), for the till use
cases' unit tests: the rule of `adapters/repositories/till_signatures.py` on a dict, or the
failure a test set (a database away)."""

from __future__ import annotations

from datetime import datetime

from services.ingest.domain.till_replays import SignedTillCall
from services.ingest.ports import TillSignatures


class FakeTillSignatures:
    """Remembers (partner, digest) -> (key, signed_at); `failure` is raised instead, when set."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.kept: dict[tuple[str, str], tuple[str, datetime]] = {}

    async def remember(self, call: SignedTillCall) -> bool:
        if self.failure is not None:
            raise self.failure
        first = self.kept.setdefault(
            (call.partner_id, call.digest), (call.idempotency_key, call.signed_at)
        )
        return first[0] == call.idempotency_key


def _till_signatures(fake: FakeTillSignatures) -> TillSignatures:
    return fake  # mypy checks here that the fake implements the port
