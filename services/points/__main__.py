from pathlib import Path

from services.points.api.app import create_app
from services.points.settings import load_settings
from shared.runtime.cli import run_service_cli

if __name__ == "__main__":
    run_service_cli(
        name="points",
        load_settings=load_settings,
        create_app=create_app,
        migrations_dir=Path(__file__).resolve().parent / "migrations",
    )
