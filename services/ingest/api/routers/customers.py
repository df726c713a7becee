"""Enrolment and profile changes, reported by a partner's POS."""

from typing import Annotated, TypeVar

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.ingest.adapters import tables
from services.ingest.adapters.repository import SqlIngestRepository
from services.ingest.api.deps import ClockDep, PartnerDep, RuntimeDep
from services.ingest.api.replies import accept, problem_responses, replay_or_conflict
from services.ingest.api.schemas import AcceptedOut, CustomerPatchIn, EnrolmentIn, Identifier
from services.ingest.domain.model import (
    Accepted,
    CustomerProfile,
    RuleViolation,
    ensure_not_self_referral,
    patched,
    request_hash,
)
from shared import events
from shared.events import new_event
from shared.idempotency import IdempotencyDep
from shared.problems import Problem

ProfileEvent = TypeVar("ProfileEvent", bound=events.CustomerProfile)

router = APIRouter(prefix="/v1/customers", tags=["customers"])


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
        source=f"ingest/{partner.partner_id}",
        subject=profile.customer_id,
        time=now,
    )
    async with runtime.engine.begin() as conn:
        if (replayed := await call.replay(conn, tables.idempotency_keys)) is not None:
            return replayed
        customers = SqlIngestRepository(conn)
        # A concurrent enrolment of the same id makes the insert do nothing: read what won.
        if not await customers.add_customer(profile, Accepted(fingerprint, event.id)):
            previous = await customers.enrolment(profile.customer_id)
            assert previous is not None
            return replay_or_conflict(
                previous,
                fingerprint,
                what=f"customer {profile.customer_id!r}",
                hint=f"change a profile with PATCH /v1/customers/{profile.customer_id}",
            )
        answer = await accept(conn, event, customer_id=profile.customer_id, call=call, clock=clock)
    runtime.relay.notify()
    return answer


@router.patch(
    "/{customer_id}",
    status_code=202,
    response_model=AcceptedOut,
    responses=problem_responses(401, 404, 422),
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
    now = clock.now()
    async with runtime.engine.begin() as conn:
        if (replayed := await call.replay(conn, tables.idempotency_keys)) is not None:
            return replayed
        customers = SqlIngestRepository(conn)
        # Locked so that concurrent patches apply one after the other, each event carrying
        # the profile as it then is, in the order they were applied.
        current = await customers.profile_for_update(customer_id)
        if current is None:
            raise Problem(
                404,
                "Not found",
                f"customer {customer_id!r} is not enrolled: enrol with POST /v1/customers",
                slug="unknown-customer",
            )
        profile = patched(current, changes)
        await customers.save_profile(profile, updated_at=now)
        event = new_event(
            # Any partner of the program may update a shared customer; partner_id stays
            # the enrolling one, the source says who made this change.
            _payload(events.CustomerUpdated, profile),
            source=f"ingest/{partner.partner_id}",
            subject=customer_id,
            time=now,
        )
        answer = await accept(conn, event, customer_id=customer_id, call=call, clock=clock)
    runtime.relay.notify()
    return answer


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
    )
