"""`python -m services.insights [serve|migrate]`."""

import sys
from pathlib import Path

from services.insights.api.app import create_app
from services.insights.settings import load_settings
from shared.runtime.cli import run_service_cli


def main(argv: list[str]) -> None:
    run_service_cli(
        name="insights",
        load_settings=load_settings,
        create_app=create_app,
        migrations_dir=Path(__file__).resolve().parent / "migrations",
        argv=argv,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
