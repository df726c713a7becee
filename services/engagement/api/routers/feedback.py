"""Feedback: the feedback reward, set and read by a program manager, and
the NPS report (admin)."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.engagement.api.deps import AdminScope, ClockDep, RuntimeDep
from services.engagement.api.schemas import FeedbackRewardIn, FeedbackRewardOut, NpsOut
from services.engagement.usecases import feedback as usecases
from shared.bounds import Identifier, InstantIn
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(tags=["feedback"], route_class=StrictJsonRoute)


@router.put("/v1/feedback-reward")
async def put_feedback_reward(
    body: FeedbackRewardIn, runtime: RuntimeDep, clock: ClockDep, _: AdminScope
) -> FeedbackRewardOut:
    """Sets what a member gets for feedback that names a purchase (`points` or a catalogue
    `reward_id`), once per purchase, for the `kinds` given (all when left out)."""
    return await usecases.put_feedback_reward(runtime.engine, clock, body)


@router.get("/v1/feedback-reward")
async def get_feedback_reward(runtime: RuntimeDep, _: AdminScope) -> FeedbackRewardOut:
    return await usecases.get_feedback_reward(runtime.engine)


@router.delete("/v1/feedback-reward", status_code=204, response_class=Response)
async def stop_feedback_reward(runtime: RuntimeDep, _: AdminScope) -> None:
    """No feedback reward from now on (204 also when none was set)."""
    await usecases.stop_feedback_reward(runtime.engine)


@router.get("/v1/reports/nps", response_model_by_alias=True)
async def nps_report(
    runtime: RuntimeDep,
    _: AdminScope,
    partner_id: Annotated[Identifier | None, Query()] = None,
    store_id: Annotated[Identifier | None, Query()] = None,
    start: Annotated[InstantIn | None, Query(alias="from")] = None,
    end: Annotated[InstantIn | None, Query(alias="to")] = None,
) -> NpsOut:
    """The NPS of the `nps` feedback given at the partner and store (each when named) from
    `from` (included) to `to` (excluded)."""
    return await usecases.nps_report(runtime.engine, partner_id, store_id, start, end)
