"""Ingest's edge against a hostile partner or observer (issue 6): partner scoping in the
coalition, signatures bound to method, path and query, profile versions assigned under the
row lock, and no personal data in logs or on the command line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from deploy.local.mailcatcher import MailDirHandler
from services.ingest.adapters import tables
from services.ingest.api.app import create_app
from services.ingest.settings import IngestSettings
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.observability.logs import WithoutExceptionMessages
from shared.web.auth import SIGNATURE_HEADER, sign
from tests.integration.ingest.support import assert_problem, iso, unique
from tests.support.kafka import events_for
from tests.support.polling import eventually
from tests.support.services import ADMIN, running
from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.integration


class Partner:
    """A partner's POS: signs `"<t>.<METHOD>.<path?query>.<raw body>"` as the contract says."""

    def __init__(self, client: httpx.AsyncClient, created: dict[str, Any]) -> None:
        self.client = client
        self.partner_id: str = created["partner_id"]
        self.api_key: str = created["api_key"]
        self.secret: str = created["signing_secret"]

    def headers(self, signature: str | bytes) -> dict[str, Any]:
        return {
            "Authorization": f"Bearer {self.api_key}",
            SIGNATURE_HEADER: signature,
            "Content-Type": "application/json",
        }

    def signature(self, method: str, target: str, body: bytes, at: int | None = None) -> str:
        return sign(self.secret, int(time.time()) if at is None else at, method, target, body)

    async def send(self, method: str, target: str, body: Any) -> httpx.Response:
        raw = json.dumps(body).encode()
        return await self.client.request(
            method, target, content=raw, headers=self.headers(self.signature(method, target, raw))
        )

    async def enrol(self, customer_id: str, **fields: Any) -> httpx.Response:
        body = {"customer_id": customer_id, "email": f"{customer_id}@example.com", **fields}
        return await self.send("POST", "/v1/customers", body)

    async def patch(self, customer_id: str, changes: dict[str, Any]) -> httpx.Response:
        return await self.send("PATCH", f"/v1/customers/{customer_id}", changes)

    async def purchase(self, customer_id: str, purchase_id: str) -> httpx.Response:
        body = {
            "purchase_id": purchase_id,
            "customer_id": customer_id,
            "occurred_at": iso(datetime.now(UTC) - timedelta(minutes=1)),
            "currency": "EUR",
            "total": "40.00",
        }
        return await self.send("POST", "/v1/purchases", body)

    async def refund(self, purchase_id: str, amount: str) -> httpx.Response:
        body = {"refund_id": unique("r"), "amount": amount, "occurred_at": iso(datetime.now(UTC))}
        return await self.send("POST", f"/v1/purchases/{purchase_id}/refunds", body)


async def new_partner(client: httpx.AsyncClient, name: str) -> Partner:
    response = await client.post("/v1/admin/partners", json={"name": name}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return Partner(client, response.json())


@pytest.fixture(scope="module")
async def alpha(client: httpx.AsyncClient) -> Partner:
    return await new_partner(client, "Alpha Café")


@pytest.fixture(scope="module")
async def beta(client: httpx.AsyncClient) -> Partner:
    return await new_partner(client, "Beta Books")


@pytest.fixture
async def alphas_customer(alpha: Partner) -> str:
    customer_id = unique("cust")
    response = await alpha.enrol(customer_id, consent={"email": True, "sms": False})
    assert response.status_code == 202, response.text
    return customer_id


async def stored_profile(db: AsyncEngine, customer_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        row = (
            await conn.execute(
                sa.select(tables.customers).where(tables.customers.c.customer_id == customer_id)
            )
        ).one()
    return dict(row._mapping)


async def published(stack: Stack, customer_id: str, count: int) -> list[CloudEvent]:
    async def probe() -> list[CloudEvent] | None:
        found = await events_for(stack.kafka, topics.CUSTOMERS, customer_id)
        return found if len(found) >= count else None

    return await eventually(probe, what=f"{count} event(s) of {customer_id}")


class TestPartnerScoping:
    """Contract §4: a coalition. Any partner reports purchases for any member; only the
    enrolling partner changes the profile; refunds only of one's own purchases."""

    async def test_another_partner_cannot_change_a_profile_and_learns_nothing_of_it(
        self, alpha: Partner, beta: Partner, alphas_customer: str, db: AsyncEngine
    ) -> None:
        before = await stored_profile(db, alphas_customer)
        response = await beta.patch(
            alphas_customer, {"email": "mallory@example.com", "consent": {"email": True}}
        )
        problem = assert_problem(response, 403)
        assert problem["type"] == "urn:fedelta:problem:not-enrolling-partner"
        assert alpha.partner_id not in response.text
        assert before["email"] not in response.text
        assert await stored_profile(db, alphas_customer) == before

    async def test_the_enrolling_partner_can_change_its_profile(
        self, alpha: Partner, alphas_customer: str, db: AsyncEngine
    ) -> None:
        response = await alpha.patch(alphas_customer, {"email": "new@example.com"})
        assert response.status_code == 202, response.text
        assert (await stored_profile(db, alphas_customer))["email"] == "new@example.com"

    async def test_enrolling_a_taken_id_gets_the_same_409_whoever_enrolled_it(
        self, alpha: Partner, beta: Partner, alphas_customer: str
    ) -> None:
        by_other = assert_problem(await beta.enrol(alphas_customer, locale="fr"), 409)
        by_owner = assert_problem(await alpha.enrol(alphas_customer, locale="fr"), 409)
        assert by_other == by_owner  # nothing tells the other partner whose id it is
        assert alpha.partner_id not in json.dumps(by_other)
        assert f"{alphas_customer}@example.com" not in json.dumps(by_other)

    async def test_any_partner_reports_purchases_for_any_member(
        self, beta: Partner, alphas_customer: str
    ) -> None:
        response = await beta.purchase(alphas_customer, unique("p"))
        assert response.status_code == 202, response.text

    async def test_refunds_only_of_ones_own_purchases(
        self, alpha: Partner, beta: Partner, alphas_customer: str, db: AsyncEngine
    ) -> None:
        purchase_id = unique("p")
        assert (await alpha.purchase(alphas_customer, purchase_id)).status_code == 202
        refused = assert_problem(await beta.refund(purchase_id, "10.00"), 422)
        assert refused["type"] == "urn:fedelta:problem:unknown-purchase"
        async with db.connect() as conn:
            refunded = await conn.scalar(
                sa.select(tables.purchases.c.refunded).where(
                    tables.purchases.c.partner_id == alpha.partner_id,
                    tables.purchases.c.purchase_id == purchase_id,
                )
            )
        assert refunded == 0
        assert (await alpha.refund(purchase_id, "10.00")).status_code == 202


class TestSignatureCoversTheRequest:
    async def test_a_signed_patch_replayed_on_another_customer_is_refused(
        self, alpha: Partner, db: AsyncEngine
    ) -> None:
        first, second = unique("cust"), unique("cust")
        for customer in (first, second):
            assert (await alpha.enrol(customer)).status_code == 202
        body = json.dumps({"email": "attacker@example.com"}).encode()
        captured = alpha.signature("PATCH", f"/v1/customers/{first}", body)
        replayed = await alpha.client.patch(
            f"/v1/customers/{second}", content=body, headers=alpha.headers(captured)
        )
        assert_problem(replayed, 401)
        assert (await stored_profile(db, second))["email"] == f"{second}@example.com"

    async def test_another_method_or_an_added_query_is_refused(
        self, alpha: Partner, alphas_customer: str
    ) -> None:
        body = json.dumps({"locale": "it"}).encode()
        path = f"/v1/customers/{alphas_customer}"
        as_post = await alpha.client.post(
            path, content=body, headers=alpha.headers(alpha.signature("PATCH", path, body))
        )
        assert as_post.status_code in (401, 405)  # never accepted under another verb
        with_query = await alpha.client.patch(
            f"{path}?x=1", content=body, headers=alpha.headers(alpha.signature("PATCH", path, body))
        )
        assert_problem(with_query, 401)

    async def test_the_query_is_signed_exactly_as_sent(
        self, alpha: Partner, alphas_customer: str
    ) -> None:
        body = json.dumps({"locale": "de"}).encode()
        target = f"/v1/customers/{alphas_customer}?b=2&a=%41"
        response = await alpha.client.patch(
            target, content=body, headers=alpha.headers(alpha.signature("PATCH", target, body))
        )
        assert response.status_code == 202, response.text

    async def test_the_old_form_over_time_and_body_is_refused(self, alpha: Partner) -> None:
        import hashlib
        import hmac

        body = json.dumps({"customer_id": unique("cust")}).encode()
        t = int(time.time())
        old = hmac.new(alpha.secret.encode(), f"{t}.".encode() + body, hashlib.sha256)
        response = await alpha.client.post(
            "/v1/customers", content=body, headers=alpha.headers(f"t={t},v1={old.hexdigest()}")
        )
        assert_problem(response, 401)

    @pytest.mark.parametrize(
        "timestamp",
        [b"9" * 400, b"1" * 13, b"17\xb200000000", b"\xd9\xa1\xd9\xa7", b"-1", b"1e9"],
        ids=["hundreds-of-digits", "too-long", "superscript-two", "arabic-digits", "sign", "exp"],
    )
    async def test_a_malformed_timestamp_is_a_401_not_a_500(
        self, alpha: Partner, timestamp: bytes
    ) -> None:
        body = json.dumps({"customer_id": unique("cust")}).encode()
        header = b"t=" + timestamp + b",v1=" + b"0" * 64
        response = await alpha.client.post(
            "/v1/customers", content=body, headers=alpha.headers(header)
        )
        assert_problem(response, 401)


class TestProfileVersions:
    async def test_versions_count_the_profiles_states_in_the_order_they_were_applied(
        self, stack: Stack, alpha: Partner, db: AsyncEngine
    ) -> None:
        customer_id = unique("cust")
        assert (await alpha.enrol(customer_id)).status_code == 202
        answers = await asyncio.gather(
            alpha.patch(customer_id, {"consent": {"email": True}}),
            alpha.patch(customer_id, {"consent": {"email": False}}),
            alpha.patch(customer_id, {"locale": "it"}),
        )
        assert all(answer.status_code == 202 for answer in answers), [a.text for a in answers]
        found = await published(stack, customer_id, 4)
        profiles = [events.CustomerProfile.model_validate(event.data) for event in found]
        assert [profile.version for profile in profiles] == [1, 2, 3, 4]
        assert found[0].type == events.CUSTOMER_ENROLLED
        # Applied one after the other under the lock: times rise with versions.
        assert [event.time for event in found] == sorted(event.time for event in found)
        stored = await stored_profile(db, customer_id)
        newest = profiles[-1]
        assert stored["version"] == 4
        assert (stored["consent_email"], stored["locale"]) == (newest.consent.email, newest.locale)
        assert stored["updated_at"] == found[-1].time


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.kept: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.kept.append(record)


class TestNothingPersonalInLogs:
    async def test_a_failing_statement_with_an_email_leaves_no_trace_of_it_in_the_log(
        self, settings: IngestSettings, db: AsyncEngine
    ) -> None:
        email = f"{unique('leak')}@log-leak.example"
        function, trigger = unique("refuse_leak").replace("-", "_"), unique("t").replace("-", "_")
        async with db.begin() as conn:
            await conn.execute(
                sa.text(
                    f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN IF NEW.email LIKE '%@log-leak.example' THEN "
                    "RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END $$"
                )
            )
            await conn.execute(
                sa.text(
                    f"CREATE TRIGGER {trigger} BEFORE INSERT ON customers "
                    f"FOR EACH ROW EXECUTE FUNCTION {function}()"
                )
            )
        try:
            # An app of its own, so its lifespan configures logging as `serve` does.
            async with running(create_app, settings) as (_, client):
                written = io.StringIO()
                for handler in logging.getLogger().handlers:
                    if isinstance(handler.formatter, WithoutExceptionMessages):
                        assert isinstance(handler, logging.StreamHandler)
                        handler.setStream(written)
                records = Records()
                logging.getLogger().addHandler(records)
                partner = await new_partner(client, "Leaky Deli")
                response = await partner.enrol(unique("cust"), email=email)
                assert_problem(response, 500)
                assert email not in response.text
                logged = written.getvalue()
                assert "unhandled database error" in logged  # it was logged, through our format
                assert email not in logged
                # And the exception itself (as a DLQ header or another handler would render
                # it) does not quote the statement's values either.
                logging.getLogger().removeHandler(records)
                failures = [r.exc_info[1] for r in records.kept if r.exc_info and r.exc_info[1]]
                assert failures
                for error in failures:
                    assert email not in str(error)
        finally:
            async with db.begin() as conn:
                await conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {trigger} ON customers"))
                await conn.execute(sa.text(f"DROP FUNCTION IF EXISTS {function}()"))


class TestSecretsOffTheCommandLineAndDisk:
    @pytest.fixture
    def provision(self, stack: Stack) -> Iterator[Any]:
        env = {**stack.script_env(), **stack.service_env("ingest", port=18000)}
        env.pop("FEDELTA_PARTNER_KEY", None)
        env.pop("FEDELTA_PARTNER_SECRET", None)

        def run(
            *args: str, extra: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "services.ingest", "provision-partner", *args],
                cwd=REPO,
                env={**env, **(extra or {})},
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )

        yield run

    def test_provisioning_takes_no_credentials_as_arguments(self, provision: Any) -> None:
        secret = uuid.uuid4().hex
        result = provision(
            "--partner-id",
            unique("p"),
            "--name",
            "X",
            "--api-key",
            secret,
            "--signing-secret",
            secret,
        )
        assert result.returncode == 2
        assert "unrecognized arguments" in result.stderr

    def test_provisioning_without_credentials_in_the_environment_is_refused(
        self, provision: Any
    ) -> None:
        result = provision("--partner-id", unique("p"), "--name", "X")
        assert result.returncode == 2
        assert "FEDELTA_PARTNER_KEY" in result.stderr

    def test_the_stack_script_passes_no_secret_as_an_argument(self) -> None:
        script = (REPO / "deploy" / "local" / "stack.sh").read_text()
        assert "--api-key" not in script and "--signing-secret" not in script
        compose = (REPO / "docker-compose.yml").read_text()
        assert "--api-key" not in compose and "change-me" not in compose
        published = [
            port
            for service in yaml.safe_load(compose)["services"].values()
            for port in service.get("ports", [])
        ]
        assert published and all(str(port).startswith("127.0.0.1:") for port in published)

    def test_the_state_dir_logs_kafka_data_and_mail_are_owner_only(self, stack: Stack) -> None:
        # Others may pass through the state dir (PostgreSQL's OS user reaches its cluster
        # there), never list, read or write it.
        state = stat.S_IMODE(stack.state_dir.stat().st_mode)
        assert state & 0o066 == 0, oct(state)
        for name in ("logs", "run", "kafka", "mail"):
            mode = stat.S_IMODE((stack.state_dir / name).stat().st_mode)
            assert mode & 0o077 == 0, f"{name} is {oct(mode)}"
        for path in (stack.state_dir / "logs").iterdir():
            if not path.is_symlink():
                mode = stat.S_IMODE(path.stat().st_mode)
                assert mode & 0o077 == 0, f"{path} is {oct(mode)}"

    def test_caught_mail_is_owner_only(self, tmp_path: Path) -> None:
        old = os.umask(0o022)  # the most permissive usual umask
        try:
            stored = MailDirHandler(tmp_path).store(
                "shop@example.com", ["ada@example.com"], b"Subject: hi\r\n\r\nhello\r\n"
            )
        finally:
            os.umask(old)
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
