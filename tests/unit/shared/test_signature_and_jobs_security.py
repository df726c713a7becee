"""Issue 19: the signature header is parsed strictly (a repeated or malformed `t` is refused,
never skipped), and a job runs only as of a sane instant (from 2000, or 10 years back if
earlier, to 5 years ahead): a 422 naming the range, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from shared.clock import FixedClock
from shared.settings import ServiceSettings
from shared.web.auth import SignatureError, parse_signature, sign, verify_signature
from shared.web.jobs_api import (
    AS_OF_FLOOR,
    MAX_AS_OF_FUTURE,
    MAX_AS_OF_PAST,
    as_of_range,
    job_instant,
    jobs_router,
)
from shared.web.problems import Problem, install_problem_handlers
from tests.support.fakes.runtime import RecordingJob
from tests.support.stack import sha256_hex

SECRET = "whsec_test"
NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
T = int(NOW.timestamp())
PATH = "/v1/customers/c-1"
ADMIN = "admin-token-0123456789abcdef"


def _valid(body: bytes = b"{}") -> str:
    return sign(SECRET, T, "PATCH", PATH, body)


@pytest.mark.parametrize(
    "header",
    [
        "t=abc," + _valid(),  # a malformed t before a valid one was skipped
        _valid() + ",t=abc",
        f"t={T}," + _valid(),  # the same t twice
        f"t={T - 1}," + _valid(),  # two different ones
        _valid() + f",t={T}",
        "t=," + _valid(),
        _valid() + ",v1=not-hex",  # a malformed digest beside a valid one
        _valid() + ",",  # an empty part
        _valid() + ",garbage",
        "=x," + _valid(),
    ],
)
def test_a_repeated_or_malformed_part_refuses_the_whole_header(header: str) -> None:
    with pytest.raises(SignatureError, match="must look like"):
        verify_signature(SECRET, header, "PATCH", PATH, b"{}", NOW)


def test_a_repeated_t_is_named_in_the_refusal() -> None:
    with pytest.raises(SignatureError, match="t is given 2 times"):
        parse_signature(f"t={T}," + _valid())


def test_several_digests_and_unknown_schemes_are_still_accepted() -> None:
    # Secret rotation signs with two secrets; a later scheme's part is ignored by this one.
    other = sign("old-secret", T, "PATCH", PATH, b"{}").partition(",")[2]
    verify_signature(SECRET, f"{_valid()},{other},v2=abc", "PATCH", PATH, b"{}", NOW)
    verify_signature(SECRET, f"{other},{_valid()}", "PATCH", PATH, b"{}", NOW)


@given(st.lists(st.sampled_from(["t=1", "t=x", "t=", "v1=ab", "v1=zz", "x=1", "", "q"])))
def test_parsing_accepts_only_one_well_formed_t_with_well_formed_digests(parts: list[str]) -> None:
    header = ",".join(parts)
    well_formed = (
        parts.count("t=1") == 1
        and "v1=ab" in parts
        and all(p in {"t=1", "v1=ab", "x=1"} for p in parts)
    )
    if well_formed:
        assert parse_signature(header) == (1, ["ab"] * parts.count("v1=ab"))
    else:
        with pytest.raises(SignatureError):
            parse_signature(header)


def test_as_of_within_the_range_is_taken_and_absent_is_now() -> None:
    assert job_instant(None, NOW) == NOW
    assert job_instant("2026-11-22T10:15:00Z", NOW) == NOW
    earliest, latest = as_of_range(NOW)
    assert (earliest, latest) == (AS_OF_FLOOR, NOW + MAX_AS_OF_FUTURE)
    assert job_instant(earliest.isoformat(), NOW) == earliest
    assert job_instant(latest.isoformat(), NOW) == latest
    assert job_instant("2001-01-01T00:00:00Z", NOW) == datetime(2001, 1, 1, tzinfo=UTC)
    assert timedelta(days=365 * 10) <= MAX_AS_OF_PAST
    assert timedelta(days=365) <= MAX_AS_OF_FUTURE


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1),  # noqa: DTZ001 (hypothesis takes naive bounds)
        max_value=datetime(2200, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    )
)
def test_the_range_always_spans_ten_years_back_and_five_ahead(now: datetime) -> None:
    earliest, latest = as_of_range(now)
    assert earliest <= now - MAX_AS_OF_PAST
    assert earliest <= AS_OF_FLOOR
    assert latest == now + MAX_AS_OF_FUTURE


@pytest.mark.parametrize(
    "as_of",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-23:59",
        "9999-12-31T23:59:59Z",
        "1999-12-31T23:59:59Z",
        (NOW + MAX_AS_OF_FUTURE + timedelta(seconds=1)).isoformat(),
    ],
)
def test_as_of_outside_the_range_is_a_422_naming_it(as_of: str) -> None:
    with pytest.raises(Problem) as refused:
        job_instant(as_of, NOW)
    assert refused.value.status == 422
    assert "to 5 years after now" in refused.value.detail
    assert AS_OF_FLOOR.isoformat() in refused.value.detail


def _jobs_app(runs: list[tuple[str, datetime]]) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(jobs_router)
    app.state.settings = ServiceSettings(
        database_url="postgresql+asyncpg://u:p@localhost:5432/x",
        kafka_bootstrap_servers="localhost:9092",
        admin_token_sha256=sha256_hex(ADMIN),
        port=8080,
    )
    # No engine: a refused as_of must not reach the lock (nor the database).
    app.state.runtime = SimpleNamespace(
        clock=FixedClock(NOW), jobs=[RecordingJob("purge", runs)], engine=None
    )
    return app


@pytest.mark.parametrize("as_of", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
async def test_the_jobs_endpoint_answers_422_for_an_absurd_as_of(as_of: str) -> None:
    runs: list[tuple[str, datetime]] = []
    transport = httpx.ASGITransport(app=_jobs_app(runs))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/v1/admin/jobs/purge",
            params={"as_of": as_of},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "to 5 years after now" in response.json()["detail"]
    assert runs == []
