"""Segments: the built-in ones and the custom ones an admin defines, with their member counts,
and a segment's members a page at a time. A custom segment is filled (and emptied, once
deleted) by the next run of the `segments` job, which publishes each entry and exit."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.insights.adapters import tables
from services.insights.adapters.repositories.api import api_repository
from services.insights.api.schemas import (
    CriteriaIn,
    SegmentIn,
    SegmentListOut,
    SegmentMemberOut,
    SegmentMembersOut,
    SegmentOut,
    SegmentPatchIn,
)
from services.insights.domain.segments import built_in_segments
from shared.clock import Clock
from shared.storage.transactions import in_transaction, read_snapshot
from shared.web.idempotency import IdempotentCall, run_keyed
from shared.web.problems import Problem

MAX_PAGE = 500


def _document(criteria: CriteriaIn) -> dict[str, Any]:
    return criteria.model_dump(mode="json", exclude_defaults=True)


def _unknown(name: str) -> Problem:
    return Problem(404, "Not found", f"no segment {name!r}", slug="unknown-segment")


def _custom_out(name: str, description: str, criteria: dict[str, Any], members: int) -> SegmentOut:
    return SegmentOut(
        name=name, kind="custom", description=description, criteria=criteria, members=members
    )


async def list_segments(engine: AsyncEngine) -> SegmentListOut:
    async with read_snapshot(engine) as conn:
        repository = api_repository(conn)
        counts = await repository.member_counts()
        custom = await repository.custom_segments()
        criteria = await repository.segment_criteria()
    items = [
        SegmentOut(name=name, kind="built_in", description=text, members=counts.get(name, 0))
        for name, text in built_in_segments().items()
    ]
    items += [
        _custom_out(s.name, s.description, criteria[s.name], counts.get(s.name, 0)) for s in custom
    ]
    return SegmentListOut(items=items)


async def get_segment(engine: AsyncEngine, name: str) -> SegmentOut:
    for segment in (await list_segments(engine)).items:
        if segment.name == name:
            return segment
    raise _unknown(name)


async def create_segment(
    engine: AsyncEngine, clock: Clock, call: IdempotentCall, body: SegmentIn
) -> SegmentOut | JSONResponse:
    criteria = _document(body.criteria)

    async def work(conn: AsyncConnection) -> SegmentOut:
        added = await api_repository(conn).add_segment(
            body.name, body.description, criteria, clock.now()
        )
        if not added:
            raise Problem(
                409, "Segment exists", f"a segment {body.name!r} exists", slug="segment-exists"
            )
        return _custom_out(body.name, body.description, criteria, 0)

    return await run_keyed(
        engine, call, tables.idempotency_keys, status_code=201, clock=clock, work=work
    )


async def update_segment(engine: AsyncEngine, name: str, patch: SegmentPatchIn) -> SegmentOut:
    async def work(conn: AsyncConnection) -> SegmentOut:
        repository = api_repository(conn)
        current = await repository.segment(name, for_update=True)
        if current is None:
            raise _unknown(name)
        description = current.description if patch.description is None else patch.description
        criteria = await repository.criteria_document(name) or {}
        if patch.criteria is not None:
            criteria = _document(patch.criteria)
        await repository.replace_segment(name, description, criteria)
        members = (await repository.member_counts()).get(name, 0)
        return _custom_out(name, description, criteria, members)

    return await in_transaction(engine, work)


async def delete_segment(engine: AsyncEngine, name: str) -> None:
    async def work(conn: AsyncConnection) -> None:
        if not await api_repository(conn).delete_segment(name):
            raise _unknown(name)

    await in_transaction(engine, work)


async def segment_members(
    engine: AsyncEngine, name: str, cursor: str | None, limit: int
) -> SegmentMembersOut:
    if name not in built_in_segments():
        async with read_snapshot(engine) as conn:
            if await api_repository(conn).segment(name) is None:
                raise _unknown(name)
    async with read_snapshot(engine) as conn:
        rows = await api_repository(conn).members_page(name, cursor or "", min(limit, MAX_PAGE))
    items = [SegmentMemberOut(customer_id=c, since=s, reasons=r) for c, s, r in rows]
    full = len(items) == min(limit, MAX_PAGE)
    return SegmentMembersOut(items=items, next_cursor=items[-1].customer_id if full else None)
