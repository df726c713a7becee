"""No replay of a signed till redemption or hold under another Idempotency-Key
(domain/till_replays.py, usecases/till.py): the same signed call passes with its first key
only, a new signature passes with any key, and nothing reaches points when the call is
refused or the memory cannot be reached."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.api.schemas import TillHoldIn, TillRedemptionIn
from services.ingest.domain.model import Partner
from services.ingest.domain.till import TillFailure
from services.ingest.domain.till_replays import (
    REMEMBER_MARGIN,
    Signature,
    remembered_for,
    signature_of,
    signature_replayed,
)
from services.ingest.settings import IngestSettings
from services.ingest.usecases import till
from shared.web.auth import signed_message
from tests.support.fakes.ingest import FakePointsGateway, json_answer
from tests.support.fakes.till_signatures import FakeTillSignatures
from tests.support.stack import sha256_hex

SETTINGS = IngestSettings(
    database_url="postgresql+asyncpg://u:p@localhost/db",
    kafka_bootstrap_servers="localhost:9092",
    admin_token_sha256=sha256_hex("admin-token-0123456789"),
    points_token="till-token-0123456789",
)
T = 1_800_000_000
BODY = b'{"points": 50, "reward": "coffee"}'


def partner(partner_id: str = "bar-1") -> Partner:
    return Partner(
        partner_id=partner_id,
        name="Bar",
        api_key_hash=f"h-{partner_id}",
        signing_secret="s",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def signature(timestamp: int = T, body: bytes = BODY) -> Signature:
    return signature_of(
        signed_message(timestamp, "POST", "/v1/customers/c-1/redemptions", body), timestamp
    )


# --- domain ---------------------------------------------------------------------------------


class TestSignature:
    def test_a_signature_is_the_digest_of_what_was_signed_and_its_time(self) -> None:
        first = signature()
        assert first == signature()
        assert len(first.digest) == 64 and int(first.digest, 16) >= 0
        assert first.signed_at == datetime.fromtimestamp(T, UTC)

    @pytest.mark.parametrize(
        ("timestamp", "method", "target", "body"),
        [
            (T + 1, "POST", "/v1/customers/c-1/redemptions", BODY),
            (T, "POST", "/v1/customers/c-1/holds", BODY),
            (T, "POST", "/v1/customers/c-2/redemptions", BODY),
            (T, "POST", "/v1/customers/c-1/redemptions", b'{"points": 51, "reward": "coffee"}'),
        ],
    )
    def test_any_other_time_path_or_body_is_another_signature(
        self, timestamp: int, method: str, target: str, body: bytes
    ) -> None:
        other = signature_of(signed_message(timestamp, method, target, body), timestamp)
        assert other.digest != signature().digest

    def test_it_is_remembered_for_the_tolerance_and_a_margin(self) -> None:
        assert remembered_for(300) == timedelta(seconds=300) + REMEMBER_MARGIN
        assert timedelta(0) < REMEMBER_MARGIN

    def test_a_replay_is_a_409_that_says_sign_a_new_request(self) -> None:
        refused = signature_replayed()
        assert (refused.status, refused.slug) == (409, "signature-replayed")
        assert "another Idempotency-Key" in refused.detail
        assert "sign a new request" in refused.detail
        assert refused.headers == {}


# --- the use cases --------------------------------------------------------------------------


async def redeem(
    points: FakePointsGateway,
    signatures: FakeTillSignatures,
    key: str | None,
    signed: Signature,
    *,
    by: Partner | None = None,
) -> int:
    """The status the till gets (points' answer, or ingest's refusal)."""
    try:
        answer = await till.redeem(
            points,
            SETTINGS,
            by or partner(),
            "c-1",
            TillRedemptionIn(points=50, reward="coffee"),
            key,
            signatures=signatures,
            signature=signed,
        )
    except TillFailure as failure:
        return failure.status
    return answer.status


class TestGuard:
    async def test_the_same_signed_call_with_the_same_key_goes_to_points_again(self) -> None:
        points = FakePointsGateway(json_answer(201, {"redemption_id": "r-1"}))
        signatures = FakeTillSignatures()
        assert await redeem(points, signatures, "k-1", signature()) == 201
        assert await redeem(points, signatures, "k-1", signature()) == 201
        assert [call.idempotency_key for call in points.calls] == ["k-1", "k-1"]

    async def test_the_same_signed_call_under_another_key_is_refused_before_points(
        self,
    ) -> None:
        points = FakePointsGateway(json_answer(201, {"redemption_id": "r-1"}))
        signatures = FakeTillSignatures()
        assert await redeem(points, signatures, "k-1", signature()) == 201
        with pytest.raises(TillFailure) as refused:
            await till.redeem(
                points,
                SETTINGS,
                partner(),
                "c-1",
                TillRedemptionIn(points=50, reward="coffee"),
                "k-2",
                signatures=signatures,
                signature=signature(),
            )
        assert (refused.value.status, refused.value.slug) == (409, "signature-replayed")
        assert len(points.calls) == 1
        # ... and the first key still passes: the refusal remembered nothing new.
        assert await redeem(points, signatures, "k-1", signature()) == 201

    async def test_a_newly_signed_call_with_the_same_key_goes_to_points(self) -> None:
        points = FakePointsGateway(json_answer(201, {"redemption_id": "r-1"}))
        signatures = FakeTillSignatures()
        assert await redeem(points, signatures, "k-1", signature(T)) == 201
        assert await redeem(points, signatures, "k-1", signature(T + 1)) == 201
        assert len(points.calls) == 2

    async def test_signatures_are_remembered_per_partner(self) -> None:
        points = FakePointsGateway(json_answer(201, {"redemption_id": "r-1"}))
        signatures = FakeTillSignatures()
        assert await redeem(points, signatures, "k-1", signature(), by=partner("bar-1")) == 201
        assert await redeem(points, signatures, "k-2", signature(), by=partner("cafe-2")) == 201
        assert [call.partner_id for call in points.calls] == ["bar-1", "cafe-2"]

    async def test_a_hold_is_guarded_as_a_redemption(self) -> None:
        points = FakePointsGateway(json_answer(201, {"hold_id": "h-1"}))
        signatures = FakeTillSignatures()
        statuses = []
        for key in ("k-1", "k-2", "k-1"):
            try:
                await till.place_hold(
                    points,
                    SETTINGS,
                    partner(),
                    "c-1",
                    TillHoldIn(points=10, reward="cake"),
                    key,
                    signatures=signatures,
                    signature=signature(),
                )
            except TillFailure as failure:
                statuses.append(failure.slug)
            else:
                statuses.append("relayed")
        assert statuses == ["relayed", "signature-replayed", "relayed"]
        assert [call.idempotency_key for call in points.calls] == ["k-1", "k-1"]

    async def test_the_memory_away_raises_and_nothing_reaches_points(self) -> None:
        points = FakePointsGateway(json_answer(201, {"redemption_id": "r-1"}))
        signatures = FakeTillSignatures(failure=ConnectionRefusedError("database"))
        with pytest.raises(ConnectionRefusedError):  # the API answers 503 database-unavailable
            await redeem(points, signatures, "k-1", signature())
        assert points.calls == []

    async def test_a_call_refused_for_its_key_or_configuration_is_not_remembered(self) -> None:
        signatures = FakeTillSignatures()
        assert await redeem(FakePointsGateway(), signatures, None, signature()) == 428
        with pytest.raises(TillFailure) as failed:
            await till.redeem(
                None,
                SETTINGS,
                partner(),
                "c-1",
                TillRedemptionIn(points=50, reward="coffee"),
                "k-1",
                signatures=signatures,
                signature=signature(),
            )
        assert failed.value.slug == "till-not-configured"
        assert signatures.kept == {}

    @given(
        calls=st.lists(
            st.tuples(st.integers(min_value=0, max_value=3), st.sampled_from(["a", "b", "c"])),
            max_size=25,
        )
    )
    async def test_a_signed_call_reaches_points_only_ever_under_its_first_key(
        self, calls: list[tuple[int, str]]
    ) -> None:
        points = FakePointsGateway(json_answer(201, {"redemption_id": "r-1"}))
        signatures = FakeTillSignatures()
        first_key: dict[int, str] = {}
        for second, key in calls:
            status = await redeem(points, signatures, key, signature(T + second))
            expected_key = first_key.setdefault(second, key)
            assert status == (201 if key == expected_key else 409)
        forwarded = [call.idempotency_key for call in points.calls]
        assert forwarded == [key for second, key in calls if key == first_key[second]]
