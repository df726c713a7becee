"""The command line every service has: `python -m services.<name> [serve|migrate]`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from shared.runtime.serving import serve
from shared.settings import ServiceSettings
from shared.storage.migrations import upgrade_to_head


def run_service_cli(
    *,
    name: str,
    load_settings: Callable[[], ServiceSettings],
    create_app: Callable[[ServiceSettings], FastAPI],
    migrations_dir: Path,
    argv: list[str] | None = None,
    app_factory: str | None = None,
) -> None:
    """`app_factory` ("module:function", no arguments, settings from the environment) lets
    uvicorn start `workers` processes, each of which builds its own app."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{name}")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    parser.add_argument("--port", type=_tcp_port, help="listen here instead of the configured port")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.port is not None:
        # The internal port comes from the environment only: so does each worker's app.
        if args.port == settings.internal_port:
            parser.error(f"--port {args.port} is the internal port")
        settings = settings.model_copy(update={"port": args.port})
    if args.command == "migrate":
        upgrade_to_head(migrations_dir, settings.database_url)
        print(f"{name}: database migrated to head")
        return
    if app_factory is None and settings.workers > 1:
        parser.error(f"{name} cannot run several workers: it has no app factory")
    serve(create_app(settings) if app_factory is None else app_factory, settings)


def _tcp_port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError("a port is between 1 and 65535")
    return port
