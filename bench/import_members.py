"""A program brought over: 100,000 members through `fedelta import members` (issue 23).

    python -m bench.import_members [--members 100000] [--sample 50] [--deadline 600]

Writes a CSV of `--members` fresh members (ids `bench-imp-<run>-NNNNNN`, every one with an
email and consent; every second one with an opening balance of 100-999 points expiring a
year ahead, every fourth one with an opening tier, silver, gold or platinum, since 30 days
ago), then imports it with the command itself (`python -m fedelta_cli.main import members`,
a subprocess: the code path an operator runs, with its default batches and calls in flight,
for dev.env's partner) and reports rows/s and the time. Then it checks `--sample` members
spread over the file over HTTP, polling until `--deadline`: points' available balance is the
member's imported points (no welcome bonus: the import does not ask for one), and tiers'
tier is the imported one (bronze without one). Last, the raw limit of the same run:
PostgreSQL's multi-row insert rate on ingest's database (`raw_postgres` of
`bench.consume_throughput`: 1,000-row INSERTs into a TEMP table), and the import's rate as a
fraction of it.

Exits 1 when the command fails or refuses a row, or a sampled member's balance or tier is
not the imported one by the deadline. The members stay in the stack (`make clean`).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.consume_throughput import raw_postgres
from fedelta_client import InternalClient
from fedelta_client.devenv import REPO, DevEnv

PREFIX = "bench-imp-"
TIERS = ("silver", "gold", "platinum")
COLUMNS = (
    "customer_id",
    "email",
    "consent_email",
    "locale",
    "time_zone",
    "birthday",
    "points",
    "points_expire_at",
    "tier",
    "tier_since",
)


def member_id(run: str, n: int) -> str:
    return f"{PREFIX}{run}-{n:06d}"


def expected(n: int) -> tuple[int, str]:
    """Member n's imported points (0: none) and tier (bronze: none)."""
    points = 100 + n % 900 if n % 2 == 0 else 0
    tier = TIERS[(n // 4) % len(TIERS)] if n % 4 == 0 else "bronze"
    return points, tier


def write_file(path: Path, run: str, members: int, now: datetime) -> None:
    expiry = (now + timedelta(days=365)).isoformat().replace("+00:00", "Z")
    since = (now - timedelta(days=30)).isoformat().replace("+00:00", "Z")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for n in range(1, members + 1):
            points, tier = expected(n)
            writer.writerow(
                [
                    member_id(run, n),
                    f"member.{n}@example.com",
                    "yes",
                    "en",
                    "Europe/Helsinki",
                    f"19{50 + n % 50}-0{1 + n % 9}-1{n % 10}",
                    points or "",
                    expiry if points else "",
                    tier if tier != "bronze" else "",
                    since if tier != "bronze" else "",
                ]
            )


def run_command(path: Path) -> tuple[float, int, str]:
    """Seconds, exit status and the last lines of the command's output."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603  # our own command, arguments built here
        [sys.executable, "-m", "fedelta_cli.main", "import", "members", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "120"},
        check=False,
    )
    elapsed = time.perf_counter() - started
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
    return elapsed, done.returncode, tail


async def check_sample(
    env: DevEnv, run: str, members: int, sample: int, deadline_s: float
) -> tuple[list[str], float]:
    """What is still wrong with the sampled members at the deadline, and when all were right
    (seconds after the command ended)."""
    step = max(members // sample, 1)
    wanted = {member_id(run, n): expected(n) for n in range(1, members + 1, step)}
    started = time.perf_counter()
    wrong: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        reader = InternalClient.from_dev_env(http, env)
        while True:
            wrong = {}
            for customer_id, (points, tier) in wanted.items():
                problem = await _wrong(reader, customer_id, points, tier)
                if problem:
                    wrong[customer_id] = problem
            if not wrong or time.perf_counter() - started > deadline_s:
                break
            for customer_id in [c for c in wanted if c not in wrong]:
                del wanted[customer_id]
            await asyncio.sleep(0.5)
    return [f"{c}: {p}" for c, p in wrong.items()], time.perf_counter() - started


async def _wrong(reader: InternalClient, customer_id: str, points: int, tier: str) -> str:
    balance = await reader.balance(customer_id)
    if balance.status_code != 200:
        return f"points answers {balance.status_code}"
    if balance.json()["available"] != points:
        return f"balance {balance.json()['available']}, imported {points}"
    answer = await reader.tier(customer_id)
    if answer.status_code != 200:
        return f"tiers answers {answer.status_code}"
    if answer.json()["tier"] != tier:
        return f"tier {answer.json()['tier']}, imported {tier}"
    return ""


def ingest_dsn(dev_env: Path) -> str:
    path = dev_env.parent / "services.env"
    if not path.exists():
        raise SystemExit(f"{path} not found: start the stack first with `make up`")
    values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return values["FEDELTA_INGEST_DATABASE_URL"].replace(
        "postgresql+asyncpg://", "postgresql://", 1
    )


async def run(args: argparse.Namespace) -> int:
    dev_env = Path(os.environ.get("FEDELTA_DEV_ENV", REPO / ".fedelta" / "dev.env"))
    env = DevEnv.load(dev_env)
    run_tag = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory(prefix="fedelta-import-") as folder:
        path = Path(folder) / "members.csv"
        write_file(path, run_tag, args.members, datetime.now(UTC))
        size = path.stat().st_size
        print(f"import {run_tag}: {args.members:,} members, {size / 2**20:.1f} MiB of CSV")
        elapsed, status, tail = await asyncio.to_thread(run_command, path)
    print(tail)
    print(
        f"imported in {elapsed:.1f} s: {args.members / elapsed:,.0f} rows/s "
        f"(the command's exit status {status})"
    )
    failures = [f"the command exited {status}"] if status != 0 else []
    if not failures:
        wrong, waited = await check_sample(env, run_tag, args.members, args.sample, args.deadline)
        failures += wrong
        print(
            f"sample of {args.sample}: "
            + ("all right" if not wrong else f"{len(wrong)} wrong")
            + f", {waited:.1f} s after the command ended"
        )
    raw = await raw_postgres(ingest_dsn(dev_env), args.raw_rows)
    print(
        f"raw postgres (ingest's database, 1,000-row INSERTs): {raw:,.0f} rows/s; the import "
        f"{args.members / elapsed / raw:.1%} of it"
    )
    for failure in failures:
        print(f"WRONG: {failure}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.import_members",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument(
        "--deadline", type=float, default=600.0, help="seconds for the sample to be right"
    )
    parser.add_argument("--raw-rows", type=int, default=15_000)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
