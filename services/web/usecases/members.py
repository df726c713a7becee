"""Member sign-in: a one-time link by email (15 minutes, single use) and the signed link of a
receipt's QR code. Web keeps each link's token as its SHA-256 only; notifications finds the
members with the address typed and sends each their own link. Whatever the address, the
member is told the same thing (no one learns from the page whether an address is known)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.web.adapters.repositories.api import web_repository
from services.web.domain.model import SIGN_IN_LINK_LIFE, SessionPolicy, SignInToken
from services.web.ports import Services
from services.web.usecases.sessions import SignedIn, new_token, open_session, token_hash
from shared.clock import Clock
from shared.storage.transactions import in_transaction

SIGN_IN_ACTOR = "member-sign-in"
# At most this many members share an address (a family card, a shop's till account).
MAX_MEMBERS_PER_ADDRESS = 10


async def request_sign_in_link(
    engine: AsyncEngine, services: Services, clock: Clock, *, email: str, public_url: str
) -> int:
    """Sends each member with that email a link of their own; how many (never shown)."""
    found = await services.get(
        "notifications", "/v1/contacts", actor=SIGN_IN_ACTOR, params={"email": email}
    )
    customers = (found.body or {}).get("customer_ids", []) if found.ok else []
    sent = 0
    for customer_id in customers[:MAX_MEMBERS_PER_ADDRESS]:
        token = await _new_link(engine, clock, customer_id)
        expires_at = clock.now() + SIGN_IN_LINK_LIFE
        answer = await services.send(
            "POST",
            "notifications",
            f"/v1/customers/{customer_id}/sign-in-link",
            actor=SIGN_IN_ACTOR,
            body={
                "url": f"{public_url.rstrip('/')}/wallet/sign-in/{token}",
                "expires_at": expires_at.isoformat(),
            },
        )
        sent += answer.ok
    return sent


async def _new_link(engine: AsyncEngine, clock: Clock, customer_id: str) -> str:
    token = new_token()
    now = clock.now()

    async def work(conn: AsyncConnection) -> None:
        link = SignInToken(customer_id, now + SIGN_IN_LINK_LIFE, None)
        await web_repository(conn).add_sign_in_token(token_hash(token), link, now)

    await in_transaction(engine, work)
    return token


async def sign_in_with_link(
    engine: AsyncEngine, clock: Clock, policy: SessionPolicy, token: str
) -> SignedIn | None:
    """A member's session for a usable link, which is used up; None for any other."""
    if not token or len(token) > 100:
        return None

    async def work(conn: AsyncConnection) -> SignedIn | None:
        used = await web_repository(conn).use_sign_in_token(token_hash(token), clock.now())
        if used is None:
            return None
        return await open_session(conn, clock, policy, kind="member", subject=used.customer_id)

    return await in_transaction(engine, work)


async def sign_in_member(
    engine: AsyncEngine, clock: Clock, policy: SessionPolicy, customer_id: str
) -> SignedIn:
    """A member's session once something else proved who they are (a receipt's signed link)."""

    async def work(conn: AsyncConnection) -> SignedIn:
        return await open_session(conn, clock, policy, kind="member", subject=customer_id)

    return await in_transaction(engine, work)
