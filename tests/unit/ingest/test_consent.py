"""A member's consent, set in the wallet: what the PUT takes (both channels, strictly true or
false, nothing else), what a consent changes in a profile (nothing when it is the same), and
who may call (the admin role: the web's console credential naming the member; not a till, a
read token nor a partner). What it stores and publishes:
tests/integration/ingest/test_consent.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import ValidationError

from services.ingest.api.schemas import ConsentOut, ConsentPutIn
from services.ingest.domain.model import CustomerProfile, patched
from services.ingest.usecases.customers import CONSOLE_SOURCE, consent_changes, consent_of
from shared.messaging.events import source_uri
from tests.support.service_apps import ADMIN_TOKEN, client_of, service_app
from tests.support.stack import CONSOLE_TOKEN, sha256_hex

PROFILE = CustomerProfile(
    customer_id="c-1",
    partner_id="p-1",
    enrolled_at=datetime(2026, 1, 1, tzinfo=UTC),
    locale="it",
    time_zone="Europe/Rome",
    email="ada@example.com",
    phone=None,
    consent_email=True,
    consent_sms=False,
    referred_by=None,
    version=3,
)
READ_TOKEN = "ingest-read-token-0123456789abcdef"
TILL_TOKEN = "ingest-till-token-0123456789abcdef"
PATH = "/v1/customers/c-1/consent"


# --- the body ------------------------------------------------------------------------------


def test_the_body_names_both_channels_true_or_false() -> None:
    assert ConsentPutIn.model_validate_json('{"email": false, "sms": true}') == ConsentPutIn(
        email=False, sms=True
    )


@pytest.mark.parametrize(
    "body",
    [
        {"email": True},  # both, always: a PUT replaces
        {"sms": False},
        {"email": "yes", "sms": False},
        {"email": 1, "sms": 0},
        {"email": None, "sms": False},
        {"email": True, "sms": False, "phone": "+390612345678"},  # nothing else
        {"email": True, "sms": False, "customer_id": "c-2"},
    ],
)
def test_anything_else_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ConsentPutIn.model_validate_json(json.dumps(body))


# --- what a consent changes ----------------------------------------------------------------


def test_the_same_consent_changes_nothing() -> None:
    assert consent_changes(PROFILE, email=True, sms=False) == {}


def test_another_consent_changes_both_fields_and_nothing_else() -> None:
    changes = consent_changes(PROFILE, email=False, sms=True)
    assert changes == {"consent_email": False, "consent_sms": True}
    # What the PATCH's path then applies (usecases.customers.update_profile).
    assert patched(PROFILE, changes) == replace(PROFILE, consent_email=False, consent_sms=True)


def test_the_answer_is_the_consent_and_the_version() -> None:
    assert consent_of(PROFILE) == ConsentOut(email=True, sms=False, version=3)


def test_a_console_change_says_it_came_through_the_console() -> None:
    # Within ingest's own sources: consumers accept ingest's events only from them.
    assert source_uri(CONSOLE_SOURCE) == "urn:fedelta:ingest:console"


# --- who may call --------------------------------------------------------------------------


@pytest.fixture
async def ingest() -> AsyncIterator[httpx.AsyncClient]:
    app = service_app(
        "ingest",
        read_token_sha256=sha256_hex(READ_TOKEN),
        till_token_sha256=sha256_hex(TILL_TOKEN),
        console_token_sha256=sha256_hex(CONSOLE_TOKEN),
    )
    # No database here: every call below is refused before the use case would need one.
    app.state.runtime = object()
    async with client_of(app) as client:
        yield client


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


BODY = {"email": False, "sms": True}


async def test_a_read_token_or_a_till_may_not_set_consent(ingest: httpx.AsyncClient) -> None:
    for token in (READ_TOKEN, TILL_TOKEN):
        put = await ingest.put(PATH, json=BODY, headers=bearer(token))
        get = await ingest.get(PATH, headers=bearer(token))
        assert (put.status_code, get.status_code) == (403, 403), token
        assert put.json()["type"] == "urn:fedelta:problem:forbidden"


async def test_a_partner_s_key_is_no_service_token(ingest: httpx.AsyncClient) -> None:
    put = await ingest.put(PATH, json=BODY, headers=bearer("fk_live_partner-api-key-0123456789"))
    assert put.status_code == 401


async def test_the_console_must_name_who_acts(ingest: httpx.AsyncClient) -> None:
    put = await ingest.put(PATH, json=BODY, headers=bearer(CONSOLE_TOKEN))
    assert put.status_code == 400
    assert put.headers["content-type"].startswith("application/problem+json")


async def test_an_extra_field_is_a_422_before_anything_changes(ingest: httpx.AsyncClient) -> None:
    body = {**BODY, "email_address": "x@example.com"}
    put = await ingest.put(PATH, json=body, headers=bearer(ADMIN_TOKEN))
    assert put.status_code == 422


async def test_a_malformed_idempotency_key_is_a_400(ingest: httpx.AsyncClient) -> None:
    headers = bearer(CONSOLE_TOKEN, **{"Fedelta-Actor": "member:c-1", "Idempotency-Key": ""})
    put = await ingest.put(PATH, json=BODY, headers=headers)
    assert put.status_code == 400
