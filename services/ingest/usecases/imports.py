"""Members brought over from another program (product §11, `fedelta import members`): an
admin sends a partner's members, at most 500 rows a call.

Each row is checked alone (an enrolment's bounds, then domain.imports' rules); a refused row
is reported with its line and why, and the others still go in. One transaction per call: the
new customers in one statement (a member already enrolled is left as they are and reported
as `exists`), and for each new one its `customer.enrolled` (imported, with or without its
welcome) and, when it brings points or a tier, its `points.imported`, in one outbox write.
Both events' ids derive from the customer's id, so the same file again changes nothing."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.adapters import tables
from services.ingest.adapters.repositories.imports import member_imports
from services.ingest.api.schemas import (
    ImportResultOut,
    ImportRowEnvelope,
    ImportRowIn,
    MembersImportIn,
    MembersImportOut,
    import_row,
)
from services.ingest.domain import imports
from services.ingest.domain.imports import ImportRow, Refusal
from services.ingest.domain.model import Accepted, CustomerProfile
from services.ingest.usecases.answers import source_of
from services.ingest.usecases.customers import profile_payload
from shared.messaging import events
from shared.messaging.events import CloudEvent, derived_event_id, new_event
from shared.messaging.outbox import Outbox
from shared.runtime.process import Runtime
from shared.storage.transactions import in_transaction
from shared.web.problems import Problem

log = logging.getLogger(__name__)

# What a refused row's answer echoes of an id that was not one: no more than this.
_ECHOED_ID_LENGTH = 128


def enrolment_event_id(customer_id: str) -> str:
    return derived_event_id(customer_id, "imported-enrolment")


def points_event_id(customer_id: str) -> str:
    return derived_event_id(customer_id, "points-imported")


async def import_members(runtime: Runtime, body: MembersImportIn) -> MembersImportOut:
    now = runtime.clock.now()
    decided = imports.decide((_row(envelope, body.partner_id, now) for envelope in body.rows), now)
    members = imports.kept(decided)

    async def work(conn: AsyncConnection) -> set[str]:
        store = member_imports(conn)
        partner = await store.partner(body.partner_id)
        if partner is None or not partner.active:
            raise Problem(
                422,
                "Unknown partner",
                f"no active partner {body.partner_id!r}: the members are imported for a "
                "partner of the program (fedelta partners list)",
                slug="unknown-partner",
            )
        # In id order: concurrent calls with ids in common take their locks in one order, so
        # they wait for each other rather than deadlock.
        inserted = await store.add_members(
            [
                (
                    m.profile,
                    Accepted(imports.IMPORTED_REQUEST_HASH, enrolment_event_id(m.customer_id)),
                )
                for m in sorted(members, key=lambda m: m.customer_id)
            ]
        )
        new = [m for m in members if m.customer_id in inserted]
        await Outbox(conn, tables.outbox, runtime.clock).add_all(
            member_events(new, welcome=body.welcome, now=now)
        )
        return inserted

    inserted = await in_transaction(runtime.engine, work)
    if inserted:
        runtime.relay.notify()
    results = imports.outcomes(decided, inserted)
    counts = Counter(result.outcome for result in results)
    log.info(
        "members imported for partner %s: %d imported, %d exist, %d refused",
        body.partner_id,
        counts["imported"],
        counts["exists"],
        counts["refused"],
    )
    return MembersImportOut(
        results=[
            ImportResultOut(
                line=r.line, customer_id=r.customer_id, outcome=r.outcome, reason=r.reason
            )
            for r in results
        ]
    )


def _row(envelope: ImportRowEnvelope, partner_id: str, now: datetime) -> ImportRow | Refusal:
    fields = envelope.fields()
    checked = import_row(fields)
    if isinstance(checked, str):
        return Refusal(envelope.line, _echoed_id(fields.get("customer_id")), checked)
    return _import_row(envelope.line, checked, partner_id, now)


def _echoed_id(value: Any) -> str | None:
    return value[:_ECHOED_ID_LENGTH] if isinstance(value, str) else None


def _import_row(line: int, row: ImportRowIn, partner_id: str, now: datetime) -> ImportRow:
    return ImportRow(
        line=line,
        profile=CustomerProfile(
            customer_id=row.customer_id,
            partner_id=partner_id,
            enrolled_at=now,
            locale=row.locale,
            time_zone=row.time_zone,
            email=row.email,
            phone=row.phone,
            consent_email=row.consent_email,
            consent_sms=row.consent_sms,
            referred_by=None,
            birthday=row.birthday,
        ),
        points=row.points or 0,
        points_expire_at=row.points_expire_at,
        tier=row.tier,
        tier_since=row.tier_since,
    )


def member_events(
    members: Sequence[ImportRow], *, welcome: bool, now: datetime
) -> list[tuple[str, str, CloudEvent]]:
    """Each new member's enrolment, then (when they bring any) their opening points and tier:
    (topic, key, event) in the order the relay publishes them."""
    out: list[tuple[str, str, CloudEvent]] = []
    for member in members:
        enrolled = _enrolled(member, welcome=welcome, now=now)
        out.append((enrolled.topic, member.customer_id, enrolled))
        if member.has_opening:
            opening = _opening(member, now=now)
            out.append((opening.topic, member.customer_id, opening))
    return out


def _enrolled(member: ImportRow, *, welcome: bool, now: datetime) -> CloudEvent:
    profile = profile_payload(events.CustomerEnrolled, member.profile)
    return new_event(
        profile.model_copy(update={"imported": True, "welcome": welcome}),
        source=source_of(member.profile.partner_id),
        subject=member.customer_id,
        time=now,
        event_id=enrolment_event_id(member.customer_id),
    )


def _opening(member: ImportRow, *, now: datetime) -> CloudEvent:
    lots = (
        [events.ImportedLot(points=member.points, expires_at=member.points_expire_at)]
        if member.points > 0
        else []
    )
    return new_event(
        events.PointsImported(
            customer_id=member.customer_id,
            partner_id=member.profile.partner_id,
            lots=lots,
            tier=member.tier,
            tier_since=member.tier_since,
            imported_at=now,
        ),
        source=source_of(member.profile.partner_id),
        subject=member.customer_id,
        time=now,
        event_id=points_event_id(member.customer_id),
    )
