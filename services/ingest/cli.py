"""`python -m services.ingest provision-partner`: creates or resets a partner with given
credentials, for scripted set-ups (`make up`). This module parses the command line and calls
one use case (`usecases.partners.provision`, the command side of partner administration).

The credentials come from the environment (FEDELTA_PARTNER_KEY, FEDELTA_PARTNER_SECRET), never
from the command line: any local user can read another process's arguments (`ps`), while its
environment is readable by its owner only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from collections.abc import Mapping

from services.ingest.adapters.sealed_secrets import use_keyring
from services.ingest.settings import IngestSettings
from services.ingest.usecases import partners
from shared.clock import Clock, SystemClock
from shared.storage.db import create_engine

API_KEY_VARIABLE = "FEDELTA_PARTNER_KEY"
SIGNING_SECRET_VARIABLE = "FEDELTA_PARTNER_SECRET"  # noqa: S105 (a variable name)

_PARTNER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")


async def provision_partner(
    settings: IngestSettings,
    *,
    partner_id: str,
    name: str,
    api_key: str,
    signing_secret: str,
    clock: Clock | None = None,
) -> None:
    """`usecases.partners.provision` on an engine of its own, for this one command."""
    use_keyring(settings.keyring())  # the signing secret is stored sealed
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        await partners.provision(
            engine,
            clock or SystemClock(),
            partner_id=partner_id,
            name=name,
            api_key=api_key,
            signing_secret=signing_secret,
        )
    finally:
        await engine.dispose()


def _partner_id(value: str) -> str:
    if not _PARTNER_ID.fullmatch(value):
        raise argparse.ArgumentTypeError("letters, digits and . _ : - only, at most 64")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def run_provision_partner(
    argv: list[str], settings: IngestSettings, environ: Mapping[str, str] | None = None
) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.ingest provision-partner",
        description=(
            "Create the partner, or reset its name and credentials to these. The API key "
            f"(stored hashed) and the signing secret are read from ${API_KEY_VARIABLE} and "
            f"${SIGNING_SECRET_VARIABLE}: never pass secrets as arguments, `ps` shows them."
        ),
    )
    parser.add_argument("--partner-id", required=True, type=_partner_id)
    parser.add_argument("--name", required=True, type=_not_blank)
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    api_key = environ.get(API_KEY_VARIABLE, "").strip()
    signing_secret = environ.get(SIGNING_SECRET_VARIABLE, "").strip()
    if not api_key or not signing_secret:
        parser.error(
            f"set {API_KEY_VARIABLE} (a long random token) and {SIGNING_SECRET_VARIABLE} "
            "in the environment"
        )
    asyncio.run(
        provision_partner(
            settings,
            partner_id=args.partner_id,
            name=args.name,
            api_key=api_key,
            signing_secret=signing_secret,
        )
    )
    # Never the credentials: this output ends up in logs.
    print(f"ingest: partner {args.partner_id!r} provisioned")
