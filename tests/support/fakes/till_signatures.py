"""A fake of ingest's memory of signed calls (`ports.TillSignatures`), for the till use
cases' unit tests: the rule of `adapters/repositories/till_signatures.py` on a dict, or the
failure a test set (a database away)."""

from __future__ import annotations

from datetime import datetime

from services.ingest.domain.till_replays import SignedCall, passes_again
from services.ingest.ports import TillSignatures


class FakeTillSignatures:
    """Remembers (partner, digest) -> (key, signed_at); `failure` is raised instead, when set."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.kept: dict[tuple[str, str], tuple[str | None, datetime]] = {}

    async def remember(self, call: SignedCall) -> bool:
        if self.failure is not None:
            raise self.failure
        seen = self.kept.get((call.partner_id, call.digest))
        if seen is None:
            self.kept[(call.partner_id, call.digest)] = (call.idempotency_key, call.signed_at)
            return True
        return passes_again(seen[0], call.idempotency_key)


def _till_signatures(fake: FakeTillSignatures) -> TillSignatures:
    return fake  # mypy checks here that the fake implements the port
