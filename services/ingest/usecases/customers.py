"""Enrolment, profile changes and erasure, reported by a partner's POS.

Each call is one transaction through `answers.keyed` (run_keyed: its Idempotency-Key
replayed or kept), which wakes the relay once it committed. A profile change and an erasure
have no id of their own: their signature is remembered in the same transaction, and the same
signed call under another key or without one is refused (`domain/till_replays.py`, 409
`signature-replayed`) before it changes anything. An enrolment is deduplicated by its id.
A member's consent, set in the wallet through the console's credential, changes the profile
the way a partner's change does (`update_profile`)."""

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.adapters import tables
from services.ingest.adapters.repositories import till_signatures
from services.ingest.adapters.repositories.api import customer_repository
from services.ingest.adapters.repositories.welcomes import claim_welcome
from services.ingest.api.schemas import (
    AcceptedOut,
    ConsentOut,
    ConsentPutIn,
    CustomerPatchIn,
    EnrolmentIn,
)
from services.ingest.domain.model import (
    Accepted,
    CustomerProfile,
    Partner,
    RuleViolation,
    ensure_birthday_in_range,
    ensure_not_self_referral,
    erased,
    is_retry,
    patched,
    request_hash,
)
from services.ingest.domain.till_replays import REPLAYED_DETAIL, Signature, SignedCall
from services.ingest.domain.welcomes import welcome_key
from services.ingest.usecases.answers import Answer, accept, keyed, source_of
from services.ingest.usecases.feedback_erasure import erase_feedback
from shared.clock import Clock
from shared.messaging import events
from shared.messaging.events import CloudEvent, derived_event_id, new_event
from shared.messaging.outbox import Outbox
from shared.messaging.topics import dead_letter_topic
from shared.runtime.process import Runtime
from shared.storage.transactions import in_transaction
from shared.web.idempotency import IdempotentCall, run_keyed
from shared.web.problems import Problem

log = logging.getLogger(__name__)

ProfileEvent = TypeVar("ProfileEvent", bound=events.CustomerProfile)
# The source of a change made through the console's credential (a member in their wallet):
# urn:fedelta:ingest:console, beside the partners' urn:fedelta:ingest:partner:<id>.
CONSOLE_SOURCE = "ingest/console"


async def enrol(
    runtime: Runtime, partner: Partner, enrolment: EnrolmentIn, call: IdempotentCall
) -> Answer:
    ensure_not_self_referral(enrolment.customer_id, enrolment.referred_by)
    ensure_birthday_in_range(enrolment.birthday, runtime.clock.now())
    # The partner is part of the call: the same body from another partner is another call.
    # Without a birthday the body hashes as before birthdays existed: a retry of an enrolment
    # accepted before the upgrade still gets its first answer.
    unset = {"birthday"} if enrolment.birthday is None else None
    fingerprint = request_hash(
        {"partner_id": partner.partner_id, **enrolment.model_dump(mode="json", exclude=unset)}
    )
    now = runtime.clock.now()
    profile = _enrolled_profile(enrolment, partner.partner_id, now)
    event = new_event(
        _payload(events.CustomerEnrolled, profile),
        source=source_of(partner.partner_id),
        subject=profile.customer_id,
        time=now,
    )

    async def work(conn: AsyncConnection) -> AcceptedOut:
        customers = customer_repository(conn)
        # A concurrent enrolment of the same id makes the insert do nothing: read what won.
        if not await customers.add_customer(profile, Accepted(fingerprint, event.id)):
            previous = await customers.enrolment(profile.customer_id)
            assert previous is not None
            if is_retry(previous, fingerprint):  # same body, same partner: the first answer
                return AcceptedOut(event_id=previous.event_id)
            raise already_enrolled(profile.customer_id)
        # One welcome per email address (domain/welcomes.py), taken in this transaction.
        welcomed = profile.email is None or await claim_welcome(
            conn, welcome_key(profile.email), now
        )
        enrolled = event if welcomed else without_welcome(event, profile)
        return await accept(conn, enrolled, customer_id=profile.customer_id, clock=runtime.clock)

    return await keyed(runtime, call, work)


def without_welcome(event: CloudEvent, profile: CustomerProfile) -> CloudEvent:
    """The same enrolment (same id, source and time) with `welcome: false`."""
    payload = _payload(events.CustomerEnrolled, profile).model_copy(update={"welcome": False})
    return new_event(
        payload, source=event.source, subject=event.subject, time=event.time, event_id=event.id
    )


async def change_profile(
    runtime: Runtime,
    partner: Partner,
    customer_id: str,
    patch: CustomerPatchIn,
    call: IdempotentCall,
    signature: Signature,
) -> Answer:
    changes = patch.changes()
    if not changes:
        raise RuleViolation(
            "the patch changes nothing: send at least one of email, phone, locale, "
            "time_zone, consent, birthday"
        )
    ensure_birthday_in_range(changes.get("birthday"), runtime.clock.now())

    async def work(conn: AsyncConnection) -> AcceptedOut:
        await ensure_signed_once(conn, partner, signature, call)
        customers = customer_repository(conn)
        # Locked so that concurrent patches apply one after the other: each gets the next
        # version, and its time is read once the lock is held, so versions and times of one
        # customer's changes rise together.
        current = await customers.profile_for_update(customer_id)
        if current is None:
            raise unknown_customer(
                f"customer {customer_id!r} is not enrolled: enrol with POST /v1/customers"
            )
        ensure_enrolling_partner(current, partner.partner_id)
        if current.erased_at is not None:
            raise erased_customer(customer_id)
        _, accepted = await update_profile(
            conn, runtime.clock, current, changes, source=source_of(partner.partner_id)
        )
        return accepted

    return await keyed(runtime, call, work)


async def update_profile(
    conn: AsyncConnection,
    clock: Clock,
    current: CustomerProfile,
    changes: Mapping[str, Any],
    *,
    source: str,
) -> tuple[CustomerProfile, AcceptedOut]:
    """The one way a profile changes (a partner's PATCH, a member's consent): `changes`
    applied, the next version stored, and `customer.updated` with all of it to the outbox, in
    the caller's transaction. Call with the row locked (`profile_for_update`), so that each
    change gets the next version and its time is read once the lock is held: versions and
    times of one customer's changes rise together."""
    now = clock.now()
    profile = replace(patched(current, changes), version=current.version + 1)
    await customer_repository(conn).save_profile(profile, updated_at=now)
    event = new_event(
        # partner_id stays the enrolling one (the only partner who may change it); the source
        # says who made this change.
        _payload(events.CustomerUpdated, profile),
        source=source,
        subject=profile.customer_id,
        time=now,
    )
    return profile, await accept(conn, event, customer_id=profile.customer_id, clock=clock)


async def change_consent(
    runtime: Runtime, customer_id: str, consent: ConsentPutIn, call: IdempotentCall, *, actor: str
) -> ConsentOut | JSONResponse:
    """A member's consent as they set it in the wallet (the console's credential, `actor`
    naming them): a change is a profile change like a partner's (`update_profile`), the same
    consent again changes and publishes nothing. 404 for an unknown or erased customer."""
    changed: list[int] = []

    async def work(conn: AsyncConnection) -> ConsentOut:
        current = await _live_profile(conn, customer_id)
        changes = consent_changes(current, email=consent.email, sms=consent.sms)
        if changes:
            current, _ = await update_profile(
                conn, runtime.clock, current, changes, source=CONSOLE_SOURCE
            )
            changed.append(current.version)
        return consent_of(current)

    answer = await run_keyed(
        runtime.engine,
        call,
        tables.idempotency_keys,
        status_code=200,
        clock=runtime.clock,
        work=work,
    )
    if changed:
        runtime.relay.notify()
        # Ids only: the actor is a label such as console:member:c-1, never a name or address.
        log.info(
            "consent of customer %s changed by %s (version %d)", customer_id, actor, changed[0]
        )
    return answer


async def consent_now(runtime: Runtime, customer_id: str) -> ConsentOut:
    """The customer's consent and profile version; 404 for an unknown or erased customer.
    Read with the row locked for a moment: the repository's only read of a profile."""

    async def work(conn: AsyncConnection) -> ConsentOut:
        return consent_of(await _live_profile(conn, customer_id))

    return await in_transaction(runtime.engine, work)


async def _live_profile(conn: AsyncConnection, customer_id: str) -> CustomerProfile:
    current = await customer_repository(conn).profile_for_update(customer_id)
    if current is None:
        raise unknown_customer(f"customer {customer_id!r} is not enrolled")
    if current.erased_at is not None:
        raise erased_customer(customer_id)
    return current


def consent_changes(profile: CustomerProfile, *, email: bool, sms: bool) -> dict[str, bool]:
    """The profile's fields a consent changes: none when it is the profile's already."""
    wanted = {"consent_email": email, "consent_sms": sms}
    now = {"consent_email": profile.consent_email, "consent_sms": profile.consent_sms}
    return {} if wanted == now else wanted


def consent_of(profile: CustomerProfile) -> ConsentOut:
    return ConsentOut(email=profile.consent_email, sms=profile.consent_sms, version=profile.version)


async def erase(
    runtime: Runtime,
    partner: Partner,
    customer_id: str,
    call: IdempotentCall,
    signature: Signature,
) -> Answer:
    """The right to be forgotten (contract §2): the contact data leave ingest's table at once
    (the id row stays, pseudonymous, so that purchases still resolve), then every service
    learns it from `customer.erased`, and tombstones let compaction remove the profiles from
    the customers topic and its dead-letter topic (within the topics' max.compaction.lag.ms,
    docs/operations.md). Erasing an erased customer answers with the same event id."""

    async def work(conn: AsyncConnection) -> AcceptedOut:
        await ensure_signed_once(conn, partner, signature, call)
        customers = customer_repository(conn)
        current = await customers.profile_for_update(customer_id)
        if current is None:
            raise unknown_customer(f"customer {customer_id!r} is not enrolled")
        ensure_enrolling_partner(current, partner.partner_id)
        enrolment = await customers.enrolment(customer_id)
        assert enrolment is not None  # the row is locked
        # Derived from the enrolment: one erasure per customer, whoever asks again.
        event_id = derived_event_id(enrolment.event_id, "erased")
        if current.erased_at is not None:
            return AcceptedOut(event_id=event_id)
        now = runtime.clock.now()
        await customers.erase_profile(erased(current, now))
        event = new_event(
            events.CustomerErased(customer_id=customer_id),
            source=source_of(partner.partner_id),
            subject=customer_id,
            time=now,
            event_id=event_id,
        )
        answer = await accept(conn, event, customer_id=customer_id, clock=runtime.clock)
        outbox = Outbox(conn, tables.outbox, runtime.clock)
        # The dead-letter copies keep the original record's key: the same tombstone removes them.
        for topic, cause in erasure_tombstones(event.topic):
            await outbox.add_tombstone(
                row_id=derived_event_id(event_id, cause), key=customer_id, topic=topic
            )
        # Each feedback comment of the member leaves the feedback topic the same way.
        await erase_feedback(conn, outbox, customer_id, event_id)
        return answer

    return await keyed(runtime, call, work)


def erasure_tombstones(topic: str) -> list[tuple[str, str]]:
    """(topic, cause of the outbox row's id) of each tombstone an erasure writes after
    `customer.erased`: on the customers topic and on its dead-letter topic."""
    return [(topic, "tombstone"), (dead_letter_topic(topic), "dlq-tombstone")]


async def ensure_signed_once(
    conn: AsyncConnection, partner: Partner, signature: Signature, call: IdempotentCall
) -> None:
    """Remembers the call's signature with its key in the call's transaction (a call that
    fails forgets it with the rest); a 409 when the same signed call came before under
    another key or without one, or comes again without one. Run after run_keyed found no
    kept answer: a retry with the first key is answered from that."""
    signed = SignedCall(partner.partner_id, signature.digest, signature.signed_at, call.key)
    if not await till_signatures.remember(conn, signed):
        log.warning("a signed call came again, partner %s", partner.partner_id)
        raise Problem(409, "Signature replayed", REPLAYED_DETAIL, slug="signature-replayed")


def unknown_customer(detail: str) -> Problem:
    return Problem(404, "Not found", detail, slug="unknown-customer")


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


def _enrolled_profile(enrolment: EnrolmentIn, partner_id: str, now: datetime) -> CustomerProfile:
    return CustomerProfile(
        customer_id=enrolment.customer_id,
        partner_id=partner_id,
        enrolled_at=now,
        locale=enrolment.locale,
        time_zone=enrolment.time_zone,
        email=enrolment.email,
        phone=enrolment.phone,
        consent_email=enrolment.consent.email,
        consent_sms=enrolment.consent.sms,
        referred_by=enrolment.referred_by,
        birthday=enrolment.birthday,
    )


def profile_payload(kind: type[ProfileEvent], profile: CustomerProfile) -> ProfileEvent:
    """The event of a profile (`customer.enrolled` or `customer.updated`), all of it."""
    return _payload(kind, profile)


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
        birthday=profile.birthday,
        version=profile.version,
    )
