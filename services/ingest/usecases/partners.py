"""Partner administration: onboarding, the list, key rotation and revocation (an operator with
the admin token, over HTTP), and provisioning with given credentials (the command line's
`provision-partner`, for scripted set-ups). Credentials are shown once, in the answer that
makes them, and never logged.

A partner made or provisioned is announced (`fedelta.partner.provisioned.v1` on the compacted
partners topic) in the same transaction: the consumers refuse events of partners they were
never told of (shared.messaging.partners)."""

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.ingest.adapters import tables
from services.ingest.adapters.repositories.api import partner_repository
from services.ingest.api.schemas import PartnerCreatedOut, PartnerIn, PartnerListOut, PartnerOut
from services.ingest.domain.model import (
    Partner,
    PartnerCredentials,
    hash_api_key,
    new_credentials,
    new_partner_id,
)
from shared.clock import Clock
from shared.messaging import events
from shared.messaging.outbox import Outbox
from shared.runtime.process import Runtime
from shared.storage.transactions import in_transaction, read_snapshot
from shared.web.problems import Problem


async def create(runtime: Runtime, body: PartnerIn) -> PartnerCreatedOut:
    partner_id = body.partner_id or new_partner_id()
    credentials = new_credentials()
    partner = Partner(
        partner_id=partner_id,
        name=body.name,
        api_key_hash=hash_api_key(credentials.api_key),
        signing_secret=credentials.signing_secret,
        created_at=runtime.clock.now(),
        rate_limit_per_second=body.rate_limit_per_second,
    )

    async def add(conn: AsyncConnection) -> bool:
        if not await partner_repository(conn).add_partner(partner):
            return False
        await announce(conn, partner, runtime.clock)
        return True

    if not await in_transaction(runtime.engine, add):
        raise Problem(
            409, "Conflict", f"partner {partner_id!r} already exists", slug="partner-exists"
        )
    return _with_credentials(partner, credentials)


async def list_all(runtime: Runtime) -> PartnerListOut:
    async with read_snapshot(runtime.engine) as conn:
        found = await partner_repository(conn).partners()
    return PartnerListOut(items=[_out(p) for p in found])


async def rotate_key(runtime: Runtime, partner_id: str) -> PartnerCreatedOut:
    """New API key and signing secret; the old ones stop working (within the partner cache's
    few seconds in each ingest process). A revoked partner stays revoked."""
    credentials = new_credentials()
    partner = await in_transaction(
        runtime.engine,
        lambda conn: partner_repository(conn).replace_credentials(
            partner_id, hash_api_key(credentials.api_key), credentials.signing_secret
        ),
    )
    if partner is None:
        raise _unknown(partner_id)
    return _with_credentials(partner, credentials)


async def revoke(runtime: Runtime, partner_id: str) -> PartnerOut:
    """The partner's calls are refused (401) from now on; what it reported stays. Revoking
    twice is harmless."""
    partner = await in_transaction(
        runtime.engine, lambda conn: partner_repository(conn).deactivate_partner(partner_id)
    )
    if partner is None:
        raise _unknown(partner_id)
    return _out(partner)


async def set_rate_limit(runtime: Runtime, partner_id: str, per_second: float | None) -> PartnerOut:
    """The partner's calls per second (None: the default), in force in each ingest process
    once its partner cache renews (`partner_cache_seconds`)."""
    partner = await in_transaction(
        runtime.engine,
        lambda conn: partner_repository(conn).set_rate_limit(partner_id, per_second),
    )
    if partner is None:
        raise _unknown(partner_id)
    return _out(partner)


async def provision(
    engine: AsyncEngine,
    clock: Clock,
    *,
    partner_id: str,
    name: str,
    api_key: str,
    signing_secret: str,
) -> None:
    """Creates the partner, or resets its name and credentials to these. Idempotent: running
    it again with the same arguments changes nothing."""
    partner = Partner(
        partner_id=partner_id,
        name=name,
        api_key_hash=hash_api_key(api_key),
        signing_secret=signing_secret,
        created_at=clock.now(),
    )

    async def put(conn: AsyncConnection) -> None:
        await partner_repository(conn).put_partner(partner)
        await announce(conn, partner, clock)

    await in_transaction(engine, put)


async def announce(conn: AsyncConnection, partner: Partner, clock: Clock) -> None:
    """The partner's record on the partners topic, through the outbox (again for a partner
    provisioned again: the topic is compacted, and a consumer only adds to its set)."""
    payload = events.PartnerProvisioned(
        partner_id=partner.partner_id, provisioned_at=partner.created_at
    )
    event = events.new_event(payload, source="ingest", subject=partner.partner_id, time=clock.now())
    await Outbox(conn, tables.outbox, clock).add(event, key=partner.partner_id)


def _with_credentials(partner: Partner, credentials: PartnerCredentials) -> PartnerCreatedOut:
    return PartnerCreatedOut(
        partner_id=partner.partner_id,
        name=partner.name,
        api_key=credentials.api_key,
        signing_secret=credentials.signing_secret,
    )


def _out(partner: Partner) -> PartnerOut:
    return PartnerOut(
        partner_id=partner.partner_id,
        name=partner.name,
        created_at=partner.created_at,
        active=partner.active,
        rate_limit_per_second=partner.rate_limit_per_second,
    )


def _unknown(partner_id: str) -> Problem:
    return Problem(404, "Not found", f"no partner {partner_id!r}", slug="unknown-partner")
