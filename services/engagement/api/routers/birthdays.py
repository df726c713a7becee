"""The birthday reward: one, set and read by a program manager (admin)."""

from fastapi import APIRouter, Response

from services.engagement.api.deps import AdminScope, ClockDep, RuntimeDep
from services.engagement.api.schemas import BirthdayRewardIn, BirthdayRewardOut
from services.engagement.usecases import birthdays as usecases
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/birthday-reward", tags=["birthdays"], route_class=StrictJsonRoute)


@router.put("")
async def put_birthday_reward(
    body: BirthdayRewardIn, runtime: RuntimeDep, clock: ClockDep, _: AdminScope
) -> BirthdayRewardOut:
    """Sets what members get on their birthday (`points` or a catalogue `reward_id`, to those
    of at least `min_tier`), granted by the job `birthday-rewards`."""
    return await usecases.put_birthday_reward(runtime.engine, clock, body)


@router.get("")
async def get_birthday_reward(runtime: RuntimeDep, _: AdminScope) -> BirthdayRewardOut:
    return await usecases.get_birthday_reward(runtime.engine)


@router.delete("", status_code=204, response_class=Response)
async def stop_birthday_reward(runtime: RuntimeDep, _: AdminScope) -> None:
    """No birthday reward from now on (204 also when none was set)."""
    await usecases.stop_birthday_reward(runtime.engine)
