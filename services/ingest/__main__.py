import sys
from pathlib import Path

from services.ingest.api.app import create_app
from services.ingest.cli import run_provision_partner
from services.ingest.settings import load_settings
from shared.runtime.cli import run_service_cli


def main(argv: list[str]) -> None:
    if argv[:1] == ["provision-partner"]:
        run_provision_partner(argv[1:], load_settings())
        return
    run_service_cli(
        name="ingest",
        load_settings=load_settings,
        create_app=create_app,
        migrations_dir=Path(__file__).resolve().parent / "migrations",
        argv=argv,
        app_factory="services.ingest.api.app:create_app_from_environment",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
