"""The front page: the way to the wallet and to the console."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.web.api.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request) -> HTMLResponse:
    return render(request, "home.html")
