"""Members' feedback, given at a partner's POS or app."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.ingest.api.deps import PosCallDep
from services.ingest.api.replies import problem_responses
from services.ingest.api.schemas import AcceptedOut, FeedbackIn
from services.ingest.usecases import feedback
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/feedback", tags=["feedback"], route_class=StrictJsonRoute)


@router.post(
    "",
    status_code=202,
    response_model=AcceptedOut,
    responses=problem_responses(401, 404, 409, 422),
)
async def give_feedback(body: FeedbackIn, pos: PosCallDep) -> AcceptedOut | JSONResponse:
    return await feedback.give_feedback(pos.runtime, pos.partner, body, pos.idempotency, pos.now)
