"""Liveness, readiness and metrics: the same three endpoints on every service."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.runtime.process import Runtime
from shared.web.deps import RuntimeDep
from shared.web.problems import problem_response

probes = APIRouter(tags=["probes"])


@probes.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@probes.get("/readyz", response_model=None)
async def readyz(runtime: RuntimeDep) -> Any:
    checks = {
        "database": await _database_ok(runtime),
        "kafka": await _kafka_ok(runtime.kafka_bootstrap_servers),
    }
    if all(checks.values()):
        return {"status": "ready", "checks": checks}
    failing = ", ".join(name for name, ok in checks.items() if not ok)
    return problem_response(
        503, "Not ready", f"unreachable: {failing}", slug="not-ready", checks=checks
    )


@probes.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _database_ok(runtime: Runtime) -> bool:
    try:
        async with asyncio.timeout(2):
            async with runtime.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:
        return False


async def _kafka_ok(bootstrap_servers: str) -> bool:
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            async with asyncio.timeout(2):
                _, writer = await asyncio.open_connection(host, int(port))
            writer.close()
            await writer.wait_closed()
            return True
        except (OSError, TimeoutError):
            continue
    return False
