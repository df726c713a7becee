"""The program's KPIs over a period."""

from typing import Annotated

from fastapi import APIRouter, Query

from services.insights.api.deps import ClockDep, ReadScope, RulesDep, RuntimeDep
from services.insights.api.schemas import KpisOut
from services.insights.usecases import kpis as usecases
from shared.bounds import InstantIn

router = APIRouter(prefix="/v1/kpis", tags=["kpis"])


@router.get("", response_model_by_alias=True)
async def program_kpis(
    runtime: RuntimeDep,
    clock: ClockDep,
    rules: RulesDep,
    _: ReadScope,
    start: Annotated[InstantIn | None, Query(alias="from")] = None,
    end: Annotated[InstantIn | None, Query(alias="to")] = None,
) -> KpisOut:
    """The program's KPIs over the period [`from`, `to`): `to` defaults to now, `from` to 30
    days before `to`; `from` must be before `to` and at most 1096 days (three years) before
    it, else 422. A ratio is a string of four decimals, null when what it divides by is 0;
    halves round away from zero. A purchase counts when it occurred in the period and is not
    wholly refunded by refunds made before `to`.

    - `active_members`: members with at least one such purchase.
    - `repeat_purchase_rate`: the share of the active members with two such purchases or more.
    - `average_basket`: the mean net amount (total less the refunds made before `to`) of those
      purchases, two decimals.
    - `points`: points moved in the period, each positive: `issued` (earned, imported and
      adjusted up), `redeemed`, `expired`, `reversed`, `adjusted_out` (adjusted down).
    - `breakage`: expired / issued; `redemption_rate`: redeemed / issued (the period's).
    - `liability_trend`: the points outstanding (the sum of every movement ever, of members
      not erased) at the end of each UTC day of the period, or of each week (from Monday)
      when the period is longer than 92 days (`liability_interval`); the last point is at
      `to`.
    - `tier_distribution`: members enrolled by `to`, each in the tier of their latest tier
      change by `to` (the program's entry tier without one); every tier listed.
    - `nps`: over the `nps` feedback with a score given in the period: promoters score 9-10,
      passives 7-8, detractors 0-6; `score` = 100 * (promoters - detractors) / responses,
      rounded to a whole number, null without a response.
    - `win_back`: `lapsed_at_start`, the members whose latest purchase before `from` (not
      wholly refunded by refunds before `from`) was the lifecycle's `lapsed_days` (90) or more
      before `from`; `won_back`, those of them active in the period; `rate`, won_back /
      lapsed_at_start.
    """
    return await usecases.program_kpis(runtime.engine, rules, start, end, clock.now())
