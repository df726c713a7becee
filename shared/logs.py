"""One log format for every service. Logs carry ids, never message bodies or personal data."""

from __future__ import annotations

import logging


def configure_logging(service: str, level: str) -> None:
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s [{service}] %(name)s: %(message)s",
        force=True,
    )
    for noisy in ("aiokafka", "kafka", "sqlalchemy.engine", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
