"""Segments: built in and custom (admin), their members a page at a time."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse

from services.insights.api.deps import AdminScope, ClockDep, IdempotencyDep, ReadScope, RuntimeDep
from services.insights.api.schemas import (
    SegmentIn,
    SegmentListOut,
    SegmentMembersOut,
    SegmentOut,
    SegmentPatchIn,
)
from services.insights.usecases import segments as usecases
from shared.bounds import Identifier
from shared.messaging.events import SegmentName
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/segments", tags=["segments"], route_class=StrictJsonRoute)

Name = Annotated[SegmentName, Path()]


@router.get("")
async def list_segments(runtime: RuntimeDep, _: ReadScope) -> SegmentListOut:
    return await usecases.list_segments(runtime.engine)


@router.post("", status_code=201, response_model=SegmentOut)
async def create_segment(
    body: SegmentIn, runtime: RuntimeDep, clock: ClockDep, call: IdempotencyDep, _: AdminScope
) -> SegmentOut | JSONResponse:
    """A custom segment: filled by the next run of the `segments` job."""
    return await usecases.create_segment(runtime.engine, clock, call, body)


@router.get("/{name}")
async def get_segment(name: Name, runtime: RuntimeDep, _: ReadScope) -> SegmentOut:
    return await usecases.get_segment(runtime.engine, name)


@router.patch("/{name}")
async def update_segment(
    name: Name, patch: SegmentPatchIn, runtime: RuntimeDep, _: AdminScope
) -> SegmentOut:
    """A new description or criteria: members follow at the next run of the job."""
    return await usecases.update_segment(runtime.engine, name, patch)


@router.delete("/{name}", status_code=204, response_class=Response)
async def delete_segment(name: Name, runtime: RuntimeDep, _: AdminScope) -> None:
    """Its members leave it (each a `segment.left`) at the next run of the job."""
    await usecases.delete_segment(runtime.engine, name)


@router.get("/{name}/members")
async def segment_members(
    name: Name,
    runtime: RuntimeDep,
    _: ReadScope,
    cursor: Annotated[Identifier | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=usecases.MAX_PAGE)] = 100,
) -> SegmentMembersOut:
    return await usecases.segment_members(runtime.engine, name, cursor, limit)
