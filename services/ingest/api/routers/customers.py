"""Enrolment and profile changes, reported by a partner's POS."""

from dataclasses import replace
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.adapters import tables
from services.ingest.adapters.repository import SqlIngestRepository
from services.ingest.api.deps import ClockDep, PartnerDep, RuntimeDep
from services.ingest.api.replies import accept, problem_responses
from services.ingest.api.schemas import AcceptedOut, CustomerPatchIn, EnrolmentIn, Identifier
from services.ingest.domain.model import (
    Accepted,
    CustomerProfile,
    RuleViolation,
    ensure_not_self_referral,
    erased,
    is_retry,
    patched,
    request_hash,
)
from shared.messaging import events
from shared.messaging.events import derived_event_id, new_event
from shared.messaging.outbox import Outbox
from shared.storage.transactions import in_transaction
from shared.web.idempotency import IdempotencyDep
from shared.web.problems import PROBLEM_JSON, Problem
from shared.web.strict_json import StrictJsonRoute

ProfileEvent = TypeVar("ProfileEvent", bound=events.CustomerProfile)

router = APIRouter(prefix="/v1/customers", tags=["customers"], route_class=StrictJsonRoute)


@router.post(
    "", status_code=202, response_model=AcceptedOut, responses=problem_responses(401, 409, 422)
)
async def enrol_customer(
    enrolment: EnrolmentIn,
    partner: PartnerDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    call: IdempotencyDep,
) -> AcceptedOut | JSONResponse:
    ensure_not_self_referral(enrolment.customer_id, enrolment.referred_by)
    # The partner is part of the call: the same body from another partner is another call.
    fingerprint = request_hash(
        {"partner_id": partner.partner_id, **enrolment.model_dump(mode="json")}
    )
    now = clock.now()
    profile = CustomerProfile(
        customer_id=enrolment.customer_id,
        partner_id=partner.partner_id,
        enrolled_at=now,
        locale=enrolment.locale,
        time_zone=enrolment.time_zone,
        email=enrolment.email,
        phone=enrolment.phone,
        consent_email=enrolment.consent.email,
        consent_sms=enrolment.consent.sms,
        referred_by=enrolment.referred_by,
    )
    event = new_event(
        _payload(events.CustomerEnrolled, profile),
        source=f"ingest/partner/{partner.partner_id}",
        subject=profile.customer_id,
        time=now,
    )

    async def decide(conn: AsyncConnection) -> AcceptedOut | JSONResponse:
        if (replayed := await call.replay(conn, tables.idempotency_keys)) is not None:
            return replayed
        customers = SqlIngestRepository(conn)
        # A concurrent enrolment of the same id makes the insert do nothing: read what won.
        if not await customers.add_customer(profile, Accepted(fingerprint, event.id)):
            previous = await customers.enrolment(profile.customer_id)
            assert previous is not None
            if is_retry(previous, fingerprint):  # same body, same partner: the first answer
                return AcceptedOut(event_id=previous.event_id)
            raise already_enrolled(profile.customer_id)
        return await accept(conn, event, customer_id=profile.customer_id, call=call, clock=clock)

    answer = await in_transaction(runtime.engine, decide)
    runtime.relay.notify()  # a replay wakes the relay for nothing, which costs nothing
    return answer


@router.patch(
    "/{customer_id}",
    status_code=202,
    response_model=AcceptedOut,
    responses=problem_responses(401, 403, 404, 422),
)
async def update_customer(
    customer_id: Annotated[Identifier, Path()],
    patch: CustomerPatchIn,
    partner: PartnerDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    call: IdempotencyDep,
) -> AcceptedOut | JSONResponse:
    changes = patch.changes()
    if not changes:
        raise RuleViolation(
            "the patch changes nothing: send at least one of email, phone, locale, "
            "time_zone, consent"
        )

    async def decide(conn: AsyncConnection) -> AcceptedOut | JSONResponse:
        if (replayed := await call.replay(conn, tables.idempotency_keys)) is not None:
            return replayed
        customers = SqlIngestRepository(conn)
        # Locked so that concurrent patches apply one after the other: each gets the next
        # version, and its time is read once the lock is held, so versions and times of one
        # customer's changes rise together.
        current = await customers.profile_for_update(customer_id)
        if current is None:
            raise Problem(
                404,
                "Not found",
                f"customer {customer_id!r} is not enrolled: enrol with POST /v1/customers",
                slug="unknown-customer",
            )
        ensure_enrolling_partner(current, partner.partner_id)
        if current.erased_at is not None:
            raise erased_customer(customer_id)
        now = clock.now()
        profile = replace(patched(current, changes), version=current.version + 1)
        await customers.save_profile(profile, updated_at=now)
        event = new_event(
            # partner_id stays the enrolling one (the only one who may change it); the source
            # says who made this change.
            _payload(events.CustomerUpdated, profile),
            source=f"ingest/partner/{partner.partner_id}",
            subject=customer_id,
            time=now,
        )
        return await accept(conn, event, customer_id=customer_id, call=call, clock=clock)

    answer = await in_transaction(runtime.engine, decide)
    runtime.relay.notify()  # a replay wakes the relay for nothing, which costs nothing
    return answer


@router.delete(
    "/{customer_id}",
    status_code=202,
    response_model=AcceptedOut,
    responses={
        400: {"description": "A malformed Idempotency-Key", "content": {PROBLEM_JSON: {}}},
        **problem_responses(401, 403, 404, 409, 422),
    },
)
async def erase_customer(
    customer_id: Annotated[Identifier, Path()],
    partner: PartnerDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    call: IdempotencyDep,
) -> AcceptedOut | JSONResponse:
    """The right to be forgotten (contract §2): the contact data leave ingest's table at once
    (the id row stays, pseudonymous, so that purchases still resolve), then every service
    learns it from `customer.erased`, and a tombstone lets compaction remove the profiles from
    the customers topic. Erasing an erased customer answers with the same event id."""

    async def decide(conn: AsyncConnection) -> AcceptedOut | JSONResponse:
        if (replayed := await call.replay(conn, tables.idempotency_keys)) is not None:
            return replayed
        customers = SqlIngestRepository(conn)
        current = await customers.profile_for_update(customer_id)
        if current is None:
            raise Problem(
                404,
                "Not found",
                f"customer {customer_id!r} is not enrolled",
                slug="unknown-customer",
            )
        ensure_enrolling_partner(current, partner.partner_id)
        enrolment = await customers.enrolment(customer_id)
        assert enrolment is not None  # the row is locked
        # Derived from the enrolment: one erasure per customer, whoever asks again.
        event_id = derived_event_id(enrolment.event_id, "erased")
        now = clock.now()
        if current.erased_at is not None:
            answer = AcceptedOut(event_id=event_id)
            await call.remember(conn, tables.idempotency_keys, 202, answer, now)
            return answer
        await customers.erase_profile(erased(current, now))
        event = new_event(
            events.CustomerErased(customer_id=customer_id),
            source=f"ingest/partner/{partner.partner_id}",
            subject=customer_id,
            time=now,
            event_id=event_id,
        )
        answer = await accept(conn, event, customer_id=customer_id, call=call, clock=clock)
        await Outbox(conn, tables.outbox, clock).add_tombstone(
            row_id=derived_event_id(event_id, "tombstone"), key=customer_id, topic=event.topic
        )
        return answer

    answer = await in_transaction(runtime.engine, decide)
    runtime.relay.notify()  # a replay wakes the relay for nothing, which costs nothing
    return answer


def erased_customer(customer_id: str) -> Problem:
    return Problem(
        404,
        "Not found",
        f"customer {customer_id!r} was erased: their profile is gone for good",
        slug="erased-customer",
    )


def already_enrolled(customer_id: str) -> Problem:
    """The same answer whoever enrolled the id and whatever they sent: a partner learns that
    the id is taken (which it must, to pick another), never by whom nor with what profile."""
    return Problem(
        409,
        "Conflict",
        f"customer id {customer_id!r} is already enrolled in the program; a retry of an "
        "enrolment must send the same body from the same partner, and only the enrolling "
        "partner changes a profile (PATCH /v1/customers/{id})",
        slug="customer-already-enrolled",
    )


def ensure_enrolling_partner(profile: CustomerProfile, partner_id: str) -> None:
    """The coalition's rule (contract §4): any partner reports purchases for any member, only
    the enrolling partner changes or erases the profile. The 403 names neither the enrolling
    partner nor anything of the profile."""
    if profile.partner_id != partner_id:
        raise Problem(
            403,
            "Forbidden",
            f"customer {profile.customer_id!r} was enrolled by another partner of the "
            "program: only the enrolling partner may change or erase the profile",
            slug="not-enrolling-partner",
        )


def _payload(kind: type[ProfileEvent], profile: CustomerProfile) -> ProfileEvent:
    return kind(
        customer_id=profile.customer_id,
        partner_id=profile.partner_id,
        enrolled_at=profile.enrolled_at,
        locale=profile.locale,
        time_zone=profile.time_zone,
        email=profile.email,
        phone=profile.phone,
        consent=events.Consent(email=profile.consent_email, sms=profile.consent_sms),
        referred_by=profile.referred_by,
        version=profile.version,
    )
