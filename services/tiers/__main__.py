"""`python -m services.tiers [serve|migrate]`, and `replay` to rebuild every customer's tier
under a changed program (see docs/tiers.md)."""

import argparse
import asyncio
import sys
from pathlib import Path

from services.tiers.api.app import create_app
from services.tiers.domain.model import Program
from services.tiers.settings import TiersSettings, load_settings
from shared.runtime.cli import run_service_cli


def replay_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.tiers replay",
        description="Rebuild every customer's tier under PROGRAM from the purchase history in "
        "Kafka, then switch to it in one transaction. Run again to resume after a crash.",
    )
    parser.add_argument("--program", type=Path, help="the new program (default: the service's)")
    parser.add_argument(
        "--fresh", action="store_true", help="abandon an unfinished replay and start anew"
    )
    return parser


def replay_command(argv: list[str]) -> int:
    # Imported here: serving never needs the replay's Kafka reader.
    from services.tiers.adapters.program_file import load_program

    parser = replay_parser()
    args = parser.parse_args(argv)
    settings = load_settings()
    program_file = args.program or settings.program_file
    try:
        program = load_program(program_file)
    except (OSError, ValueError) as error:
        parser.error(f"{program_file}: {error}")
    return asyncio.run(run_replay(settings, program, program_file, fresh=args.fresh))


async def run_replay(
    settings: TiersSettings, program: Program, program_file: Path, *, fresh: bool
) -> int:
    from services.tiers.usecases.replay import Replay, ReplayRefused
    from shared.clock import SystemClock
    from shared.runtime.process import kafka_connection
    from shared.storage.db import create_engine

    engine = create_engine(settings.database_url, pool_size=2)
    try:
        replay = Replay(
            engine=engine,
            bootstrap_servers=kafka_connection(settings),
            program=program,
            clock=SystemClock(),
            report=lambda line: print(line, flush=True),
        )
        result = await replay.run(fresh=fresh)
    except ReplayRefused as refused:
        print(f"replay refused: {refused}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    print(
        f"replay {result.replay_id}: done, {result.events} events, "
        f"{result.changed} tier change(s) published. Every tiers instance applies "
        f"{program_file} from now on, without a restart; make it the service's program "
        "file too, or the service warns at start that the two differ.",
        flush=True,
    )
    return 0


def main(argv: list[str]) -> None:
    if argv[:1] == ["replay"]:
        sys.exit(replay_command(argv[1:]))
    run_service_cli(
        name="tiers",
        load_settings=load_settings,
        create_app=create_app,
        migrations_dir=Path(__file__).resolve().parent / "migrations",
        argv=argv,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
