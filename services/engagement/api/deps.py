"""Every dependency the engagement routers take, as Annotated aliases."""

from shared.web.deps import AdminScope, ClockDep, ReadScope, RuntimeDep
from shared.web.idempotency import IdempotencyDep

__all__ = ["AdminScope", "ClockDep", "IdempotencyDep", "ReadScope", "RuntimeDep"]
