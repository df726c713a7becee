"""`python -m services.web [serve|migrate]`."""

import sys
from pathlib import Path

from services.web.api.app import create_app
from services.web.settings import load_settings
from shared.runtime.cli import run_service_cli


def main(argv: list[str]) -> None:
    run_service_cli(
        name="web",
        load_settings=load_settings,
        create_app=create_app,
        migrations_dir=Path(__file__).resolve().parent / "migrations",
        argv=argv,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
