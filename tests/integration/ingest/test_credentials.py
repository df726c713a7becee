"""Ingest with credentials of its own (issue 19) on the real PostgreSQL and Kafka: another
service's admin token cannot onboard a partner here, the read and operate roles cannot
either, and the operate role runs ingest's jobs."""

from __future__ import annotations

import uuid

import httpx
import pytest

from services.ingest.settings import IngestSettings
from tests.support.polling import eventually
from tests.support.services import settings_for
from tests.support.stack import ADMIN_TOKEN, Stack, sha256_hex

pytestmark = pytest.mark.integration

ADMIN = "ingest-own-admin-token-0123456789abcdef"
OPERATE = "ingest-own-operate-token-0123456789abcd"
READ = "ingest-own-read-token-0123456789abcdefgh"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def settings(stack: Stack) -> IngestSettings:
    """Ingest with its own tokens (conftest.py's `client` runs it)."""
    stack.migrate("ingest")
    return settings_for(
        IngestSettings,
        stack,
        "ingest",
        admin_token_sha256=sha256_hex(ADMIN),
        operate_token_sha256=sha256_hex(OPERATE),
        read_token_sha256=sha256_hex(READ),
    )


async def test_only_ingests_own_admin_token_onboards_a_partner(client: httpx.AsyncClient) -> None:
    partner_id = f"cred-{uuid.uuid4().hex[:12]}"
    body = {"name": "Credentials Café", "partner_id": partner_id}
    # ADMIN_TOKEN: the admin token the other services of the test stack take.
    answers = [
        (await client.post("/v1/admin/partners", json=body, headers=bearer(token))).status_code
        for token in (ADMIN_TOKEN, READ, OPERATE)
    ]
    assert answers == [401, 403, 403]
    listed = await client.get("/v1/admin/partners", headers=bearer(ADMIN))
    assert partner_id not in {p["partner_id"] for p in listed.json()["items"]}

    made = await client.post("/v1/admin/partners", json=body, headers=bearer(ADMIN))
    assert made.status_code == 201, made.text
    assert made.json()["partner_id"] == partner_id


async def test_an_operate_token_runs_ingests_jobs(client: httpx.AsyncClient) -> None:
    as_of = {"as_of": "2000-01-01T00:00:00Z"}  # the floor: a run that changes nothing

    async def run() -> httpx.Response | None:
        job = await client.post("/v1/admin/jobs/all", params=as_of, headers=bearer(OPERATE))
        return None if job.status_code == 409 else job  # the scheduler's run, then ours

    ran = await eventually(run, what="the jobs run with the operate token")
    as_reader = await client.post("/v1/admin/jobs/all", params=as_of, headers=bearer(READ))
    assert (ran.status_code, as_reader.status_code) == (200, 403), ran.text
