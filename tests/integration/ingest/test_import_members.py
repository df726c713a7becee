"""Member imports on the real PostgreSQL and Kafka (product §11): new members enrolled with
their profile, an opening balance and tier as events; an existing member reported and left
as they are; refused rows with their line and reason while the others go in; the same rows
again change nothing; an unknown partner changes nothing; only an admin may; and the route's
own body limit. Also the birthday of an enrolment and of a profile change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from fedelta_cli import imports as cli_imports
from fedelta_client import InternalClient, ServiceUrls
from services.ingest.adapters.tables import customers
from services.ingest.api.routers.imports import MAX_BODY_BYTES, PATH
from services.ingest.usecases.imports import enrolment_event_id, points_event_id
from shared.messaging import events, topics
from tests.integration.ingest.support import (
    Pos,
    assert_problem,
    count_rows,
    iso,
    published,
    published_until,
    unique,
)
from tests.support.services import ADMIN, READER
from tests.support.stack import Stack


@pytest.fixture(scope="module")
async def pos(client: httpx.AsyncClient) -> Pos:
    response = await client.post(
        "/v1/admin/partners", json={"name": "Importer", "partner_id": unique("p")}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Pos(client, body["partner_id"], body["api_key"], body["signing_secret"])


async def send(
    client: httpx.AsyncClient, partner_id: str, rows: list[dict[str, Any]], **fields: Any
) -> httpx.Response:
    return await client.post(
        PATH, json={"partner_id": partner_id, "rows": rows, **fields}, headers=ADMIN
    )


def outcomes(response: httpx.Response) -> list[tuple[int, str | None, str]]:
    assert response.status_code == 200, response.text
    return [(r["line"], r["customer_id"], r["outcome"]) for r in response.json()["results"]]


async def test_new_members_are_enrolled_with_their_opening_balance_and_tier(
    client: httpx.AsyncClient, pos: Pos, stack: Stack, db: AsyncEngine
) -> None:
    rich, plain = unique("imp"), unique("imp")
    expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(days=120)
    rows = [
        {
            "line": 2,
            "customer_id": rich,
            "email": "ada@example.com",
            "locale": "fi-FI",
            "time_zone": "Europe/Helsinki",
            "consent_email": True,
            "birthday": "1990-04-23",
            "points": 1500,
            "points_expire_at": iso(expiry),
            "tier": "gold",
            "tier_since": "2025-03-01T00:00:00Z",
        },
        {"line": 3, "customer_id": plain},
    ]
    response = await send(client, pos.partner_id, rows)
    assert outcomes(response) == [(2, rich, "imported"), (3, plain, "imported")]

    [enrolled] = await published(stack, topics.CUSTOMERS, rich, 1)
    assert enrolled.id == enrolment_event_id(rich)
    profile = enrolled.data_as(events.CustomerEnrolled)
    assert (profile.imported, profile.welcome, profile.version) == (True, False, 1)
    assert (profile.partner_id, profile.email, profile.locale) == (
        pos.partner_id,
        "ada@example.com",
        "fi-FI",
    )
    assert profile.consent.email is True and profile.birthday is not None
    assert profile.birthday.isoformat() == "1990-04-23"
    [opening] = await published(stack, topics.PURCHASES, rich, 1)
    assert opening.id == points_event_id(rich)
    imported = opening.data_as(events.PointsImported)
    assert imported.lots == [events.ImportedLot(points=1500, expires_at=expiry)]
    assert (imported.tier, imported.tier_since) == ("gold", datetime(2025, 3, 1, tzinfo=UTC))
    assert imported.partner_id == pos.partner_id

    # A member with nothing to bring gets an enrolment and no opening.
    await published(stack, topics.CUSTOMERS, plain, 1)
    marker = await pos.purchase(plain, unique("buy"))
    assert marker.status_code == 202, marker.text
    on_purchases = await published_until(stack, topics.PURCHASES, plain, marker.json()["event_id"])
    assert [e.type for e in on_purchases] == [events.PURCHASE_COMPLETED]
    async with db.connect() as conn:
        stored = (
            await conn.execute(sa.select(customers).where(customers.c.customer_id == rich))
        ).one()
    assert (stored.birthday.isoformat(), stored.version, stored.request_hash) == (
        "1990-04-23",
        1,
        "imported",
    )


async def test_the_same_rows_again_change_nothing_and_an_existing_member_is_left_alone(
    client: httpx.AsyncClient, pos: Pos, stack: Stack, db: AsyncEngine
) -> None:
    enrolled_by_pos, imported = unique("imp"), unique("imp")
    assert (await pos.enrol(enrolled_by_pos, email="pos@example.com")).status_code == 202
    rows = [
        {"line": 2, "customer_id": enrolled_by_pos, "email": "other@example.com", "points": 9},
        {"line": 3, "customer_id": imported, "points": 10},
    ]
    assert outcomes(await send(client, pos.partner_id, rows, welcome=True)) == [
        (2, enrolled_by_pos, "exists"),
        (3, imported, "imported"),
    ]
    assert outcomes(await send(client, pos.partner_id, rows, welcome=True)) == [
        (2, enrolled_by_pos, "exists"),
        (3, imported, "exists"),
    ]
    async with db.connect() as conn:
        email = await conn.scalar(
            sa.select(customers.c.email).where(customers.c.customer_id == enrolled_by_pos)
        )
    assert email == "pos@example.com"

    # Markers after both imports: each member's events up to them hold one of each, at most.
    for customer_id, expected in (
        (enrolled_by_pos, [events.PURCHASE_COMPLETED]),
        (imported, [events.POINTS_IMPORTED, events.PURCHASE_COMPLETED]),
    ):
        marker = await pos.purchase(customer_id, unique("buy"))
        assert marker.status_code == 202, marker.text
        found = await published_until(
            stack, topics.PURCHASES, customer_id, marker.json()["event_id"]
        )
        assert [e.type for e in found] == expected
    on_customers = await published(stack, topics.CUSTOMERS, imported, 1)
    assert len(on_customers) == 1
    assert on_customers[0].data_as(events.CustomerEnrolled).welcome is True
    # A POS enrolment of an imported id: taken, not a retry.
    assert_problem(await pos.enrol(imported), 409)


async def test_refused_rows_are_reported_and_the_others_go_in(
    client: httpx.AsyncClient, pos: Pos, db: AsyncEngine
) -> None:
    good, twice, late = unique("imp"), unique("imp"), unique("imp")
    past = iso(datetime.now(UTC) - timedelta(days=1))
    future = iso(datetime.now(UTC) + timedelta(days=1))
    rows = [
        {"line": 2, "customer_id": good, "consent_sms": True, "phone": "+358401234567"},
        {"line": 3, "customer_id": "not an id"},
        {"line": 4, "customer_id": unique("imp"), "email": "nope"},
        {"line": 5, "customer_id": late, "points": 5, "points_expire_at": past},
        {"line": 6, "customer_id": unique("imp"), "tier": "gold", "tier_since": future},
        {"line": 7, "customer_id": twice},
        {"line": 8, "customer_id": twice, "points": 3},
        {"line": 9, "customer_id": unique("imp"), "colour": "blue"},
    ]
    response = await send(client, pos.partner_id, rows)
    results = response.json()["results"]
    assert [(r["line"], r["outcome"]) for r in results] == [
        (2, "imported"),
        (3, "refused"),
        (4, "refused"),
        (5, "refused"),
        (6, "refused"),
        (7, "imported"),
        (8, "refused"),
        (9, "refused"),
    ]
    reasons = {r["line"]: r.get("reason") for r in results}
    assert reasons[3].startswith("customer_id:")
    assert reasons[4] == "email: not an email address"
    assert reasons[5].startswith("points_expire_at: must be in the future")
    assert reasons[6] == "tier_since: must not be in the future"
    assert reasons[8] == "duplicate in this file (first on line 7)"
    assert reasons[9].startswith("colour: not a column")
    assert results[1]["customer_id"] == "not an id"
    assert await count_rows(db, customers, customers.c.customer_id == late) == 0
    assert await count_rows(db, customers, customers.c.customer_id.in_([good, twice])) == 2


async def test_an_unknown_partner_or_a_malformed_call_changes_nothing(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    customer_id = unique("imp")
    rows = [{"line": 2, "customer_id": customer_id}]
    problem = assert_problem(await send(client, unique("nobody"), rows), 422)
    assert "partner" in problem["detail"]
    assert_problem(await send(client, "p-1", [{"customer_id": customer_id}]), 422)  # no line
    assert_problem(await send(client, "p-1", []), 422)
    assert await count_rows(db, customers, customers.c.customer_id == customer_id) == 0


async def test_only_an_admin_may_import(client: httpx.AsyncClient, pos: Pos) -> None:
    body = {"partner_id": pos.partner_id, "rows": [{"line": 2, "customer_id": unique("imp")}]}
    assert (await client.post(PATH, json=body)).status_code == 401
    assert (await client.post(PATH, json=body, headers=READER)).status_code == 403


async def test_the_route_takes_500_rows_within_its_own_limit(
    client: httpx.AsyncClient, pos: Pos
) -> None:
    run = unique("imp")
    rows = [
        {
            "line": n + 2,
            "customer_id": f"{run}-{n:03d}",
            "time_zone": "Europe/Helsinki",
            "points": n + 1,
            "tier": "silver",
            "tier_since": "2025-01-01T00:00:00Z",
        }
        for n in range(500)
    ]
    response = await send(client, pos.partner_id, rows)
    assert len(response.request.content) > 65536  # beyond every other route's limit
    assert {o for _, _, o in outcomes(response)} == {"imported"}
    oversized = await client.post(
        PATH,
        content=b'{"partner_id": "p", "rows": [' + b" " * MAX_BODY_BYTES + b"]}",
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert_problem(oversized, 413)
    # Every other route keeps the service's limit.
    assert_problem(await pos.enrol(unique("c"), locale="en" + " " * 70_000), 413)


async def test_a_birthday_travels_with_an_enrolment_and_a_change(pos: Pos, stack: Stack) -> None:
    customer_id = unique("c")
    assert (await pos.enrol(customer_id, birthday="1985-07-01")).status_code == 202
    changed = await pos.send("PATCH", f"/v1/customers/{customer_id}", {"birthday": "1985-07-02"})
    assert changed.status_code == 202, changed.text
    enrolled, updated = await published(stack, topics.CUSTOMERS, customer_id, 2)
    assert enrolled.data_as(events.CustomerEnrolled).birthday is not None
    assert str(enrolled.data["birthday"]) == "1985-07-01"
    assert enrolled.data_as(events.CustomerEnrolled).imported is False
    assert updated.data["birthday"] == "1985-07-02"
    tomorrow_and_more = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    assert_problem(await pos.enrol(unique("c"), birthday=tomorrow_and_more), 422)
    assert_problem(await pos.enrol(unique("c"), birthday="1899-12-31"), 422)


async def test_the_commands_code_path_imports_a_file_and_a_second_run_imports_nothing(
    client: httpx.AsyncClient, pos: Pos, tmp_path: Path
) -> None:
    run = unique("imp")
    path = tmp_path / "members.csv"
    # Without email consent: these 1,200 members' lots would otherwise bring 1,200 expiry
    # warnings whenever another test of the shared stack runs points' jobs a year ahead, and
    # hold the notifications of the tests after it behind them.
    lines = [f"{run}-{n},member{n}@example.com,no,{n * 10}" for n in range(1, 1201)]
    lines[6] += ",one too many"
    path.write_text("customer_id,email,consent_email,points\n" + "\n".join(lines) + "\n")
    admin = InternalClient(
        client, urls=ServiceUrls(*["http://service"] * 4), token=ADMIN["Authorization"][7:]
    )
    send = cli_imports.sender(admin, pos.partner_id, welcome=False)

    async def import_once() -> cli_imports.Summary:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return await cli_imports.import_rows(
                cli_imports.read_rows(handle, "csv"),
                send,
                batch=500,
                in_flight=3,
                on_result=lambda *_: None,
            )

    first = await import_once()
    assert (first.imported, first.exists, first.refused) == (1199, 0, 1)
    [refused] = first.shown_refusals
    assert (refused.line, refused.customer_id) == (8, f"{run}-7")
    again = await import_once()
    assert (again.imported, again.exists, again.refused) == (0, 1199, 1)
