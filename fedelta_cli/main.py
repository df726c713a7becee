"""The `fedelta` command. Every command reads the stack's addresses and credentials from
.fedelta/dev.env (written by `make up`), the file in FEDELTA_DEV_ENV, or the environment."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from fedelta_cli import dlq as dead_letters
from fedelta_cli import imports as member_imports
from fedelta_cli import operations
from fedelta_cli.demo import demo
from fedelta_cli.kafka_admin import kafka_connection
from fedelta_cli.simulate import simulate as run_simulation
from fedelta_client import FedeltaError, StackClient
from fedelta_client.devenv import SERVICES, DevEnv, load_values

app = typer.Typer(
    name="fedelta",
    help="Operate a Fedelta stack: simulate traffic, inspect customers, partners, topics, "
    "dead letters; run migrations and jobs.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
partners_app = typer.Typer(
    help="Partners: create, list, rotate keys, revoke.", no_args_is_help=True
)
topics_app = typer.Typer(
    help="Kafka topics: create the missing ones, describe them.", no_args_is_help=True
)
dlq_app = typer.Typer(help="Dead letters: list, show, replay.", no_args_is_help=True)
customer_app = typer.Typer(help="One customer across the services.", no_args_is_help=True)
jobs_app = typer.Typer(help="Time-driven jobs, on demand.", no_args_is_help=True)
rewards_app = typer.Typer(help="The reward catalogue: list, create.", no_args_is_help=True)
coupon_app = typer.Typer(help="Coupons issued for rewards.", no_args_is_help=True)
import_app = typer.Typer(
    help="Bring a program over: members, balances and tiers.", no_args_is_help=True
)
app.add_typer(partners_app, name="partners")
app.add_typer(topics_app, name="topics")
app.add_typer(dlq_app, name="dlq")
app.add_typer(customer_app, name="customer")
app.add_typer(jobs_app, name="jobs")
app.add_typer(rewards_app, name="rewards")
app.add_typer(coupon_app, name="coupon")
app.add_typer(import_app, name="import")

console = Console()
errors = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    errors.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


@app.command("simulate")
def simulate_command(
    customers: Annotated[int, typer.Option(min=1, max=1_000_000, help="customers to enrol")] = 50,
    purchases: Annotated[int, typer.Option(min=0, max=10_000_000, help="purchases")] = 500,
    rate: Annotated[float, typer.Option(min=0.1, max=100_000, help="calls per second")] = 50.0,
    seed: Annotated[int, typer.Option(help="the same seed gives the same traffic")] = 1,
    # 24 in flight keep 200 calls/s going on 2 cores; httpx's pool costs more per request the
    # more connections it holds (64 halved the rate: 97/s against 193/s, measured).
    concurrency: Annotated[int, typer.Option(min=1, max=1000, help="calls in flight")] = 24,
    wait: Annotated[
        float | None,
        typer.Option(help="seconds to wait for processing (default: 60 + calls / 20)"),
    ] = None,
    summary_json: Annotated[
        Path | None, typer.Option(help="also write the summary to this file, as JSON")
    ] = None,
) -> None:
    """Realistic signed POS traffic through ingest, then a check that every accepted call had
    its effect (exit 1 when one did not, or a refused call had one)."""
    env = DevEnv.load()
    summary = asyncio.run(
        run_simulation(
            env,
            customers=customers,
            purchases=purchases,
            rate=rate,
            seed=seed,
            concurrency=concurrency,
            within=wait,
            console=console,
        )
    )
    if summary_json is not None:
        summary_json.write_text(json.dumps(summary.as_json(), indent=2))
    if not summary.ok:
        raise typer.Exit(1)


@app.command("demo")
def demo_command() -> None:
    """Enrol a customer, two purchases, then balance, tier and mail."""

    async def run() -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            await demo(StackClient(DevEnv.load(), http))

    try:
        asyncio.run(run())
    except FedeltaError as failure:
        raise _fail(f"ingest answered {failure}") from None


# --- customer -------------------------------------------------------------------------------


@customer_app.command("show")
def customer_show(
    customer_id: str,
    ledger: Annotated[int, typer.Option(min=1, max=200, help="ledger entries to show")] = 10,
) -> None:
    """Balance, ledger tail, tier and progress, notifications, engagement and insights."""
    view = asyncio.run(operations.customer_view(DevEnv.load(), customer_id, ledger))
    operations.render_customer(customer_id, view, console)


# --- partners -------------------------------------------------------------------------------


@partners_app.command("create")
def partners_create(
    name: Annotated[str, typer.Option(help="the partner's display name")],
    partner_id: Annotated[str | None, typer.Option("--id", help="default: generated")] = None,
) -> None:
    """A new partner; its API key and signing secret are shown once."""
    env = DevEnv.load()
    try:
        answer = asyncio.run(
            operations.admin_call(env, lambda admin: admin.create_partner(name, partner_id))
        )
    except operations.CommandFailed as failure:
        raise _fail(str(failure)) from None
    operations.render_credentials(answer, console)


@partners_app.command("list")
def partners_list(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Every partner (never its credentials)."""
    try:
        items = asyncio.run(operations.admin_call(DevEnv.load(), lambda admin: admin.partners()))
    except operations.CommandFailed as failure:
        raise _fail(str(failure)) from None
    if as_json:
        print(json.dumps(items, indent=2))
    else:
        operations.render_partners(items, console)


@partners_app.command("rotate-key")
def partners_rotate_key(partner_id: str) -> None:
    """New API key and signing secret; the old ones stop working."""
    env = DevEnv.load()
    try:
        answer = asyncio.run(
            operations.admin_call(env, lambda admin: admin.rotate_partner_key(partner_id))
        )
    except operations.CommandFailed as failure:
        raise _fail(str(failure)) from None
    operations.render_credentials(answer, console)
    if partner_id == env.partner_id:
        errors.print(
            "[yellow]this is the partner in dev.env: put the new key and secret there "
            "(FEDELTA_PARTNER_KEY, FEDELTA_PARTNER_SECRET) for `fedelta simulate` and demo[/]"
        )


@partners_app.command("revoke")
def partners_revoke(partner_id: str) -> None:
    """Refuse the partner's calls from now on; what it reported stays."""
    try:
        answer = asyncio.run(
            operations.admin_call(DevEnv.load(), lambda admin: admin.revoke_partner(partner_id))
        )
    except operations.CommandFailed as failure:
        raise _fail(str(failure)) from None
    operations.render_partners([answer], console)


# --- rewards and coupons --------------------------------------------------------------------


@rewards_app.command("list")
def rewards_list(
    include_ended: Annotated[
        bool, typer.Option("--all", help="ended and retired rewards too")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """The catalogue: price in points, kind, partner, limits, window."""
    try:
        items = asyncio.run(
            operations.admin_call(DevEnv.load(), lambda admin: admin.rewards(include_ended))
        )
    except operations.CommandFailed as failure:
        raise _fail(str(failure)) from None
    if as_json:
        print(json.dumps(items, indent=2))
    else:
        operations.render_rewards(items, console)


@rewards_app.command("create")
def rewards_create(
    name: Annotated[str, typer.Option(help="what the member sees")],
    points_cost: Annotated[int, typer.Option(min=1, help="its price in points")],
    kind: Annotated[operations.RewardKind, typer.Option(help="coupon, item or discount")],
    value: Annotated[str | None, typer.Option(help='a discount\'s amount, e.g. "5.00"')] = None,
    partner: Annotated[
        str | None, typer.Option(help="the partner that honours and funds it (default: any)")
    ] = None,
    min_tier: Annotated[str | None, typer.Option(help="bronze, silver, gold, platinum")] = None,
    stock: Annotated[int | None, typer.Option(min=0, help="coupons it may issue")] = None,
    per_customer_limit: Annotated[int | None, typer.Option(min=1, help="per member")] = None,
    starts_at: Annotated[str | None, typer.Option(help="RFC 3339, e.g. 2026-12-01T00:00Z")] = None,
    ends_at: Annotated[str | None, typer.Option(help="RFC 3339")] = None,
    coupon_validity_days: Annotated[int | None, typer.Option(min=1, max=3650)] = None,
    description: Annotated[str | None, typer.Option()] = None,
) -> None:
    """A new reward in the catalogue (points checks every field; a refusal says which)."""
    reward = operations.reward_body(
        name=name,
        points_cost=points_cost,
        kind=kind.value,
        value=value,
        partner_id=partner,
        min_tier=min_tier,
        stock=stock,
        per_customer_limit=per_customer_limit,
        starts_at=starts_at,
        ends_at=ends_at,
        coupon_validity_days=coupon_validity_days,
        description=description,
    )
    try:
        answer = asyncio.run(
            operations.admin_call(DevEnv.load(), lambda admin: admin.create_reward(reward))
        )
    except operations.CommandFailed as failure:
        raise _fail(str(failure)) from None
    operations.render_rewards([answer], console)


@coupon_app.command("show")
def coupon_show(coupon_id: str) -> None:
    """A coupon: its reward, state, expiry, and its code as text and as a QR code."""
    try:
        answer = asyncio.run(
            operations.admin_call(DevEnv.load(), lambda admin: admin.coupon(coupon_id))
        )
    except operations.CommandFailed as failure:
        raise _fail(str(failure)) from None
    operations.render_coupon(answer, console)


# --- import ---------------------------------------------------------------------------------


@import_app.command("members")
def import_members_command(
    file: Annotated[Path, typer.Argument(help="CSV with a header row, or NDJSON")],
    partner: Annotated[
        str | None, typer.Option(help="the importing partner (default: dev.env's)")
    ] = None,
    welcome: Annotated[
        bool, typer.Option("--welcome", help="give the welcome bonus and message too")
    ] = False,
    batch: Annotated[int, typer.Option(min=1, max=500, help="rows per call")] = 500,
    in_flight: Annotated[int, typer.Option(min=1, max=16, help="calls in flight")] = 4,
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv or ndjson (default: by extension)")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="write every refused row here, as CSV")
    ] = None,
) -> None:
    """Enrol a program's members with their consent, an opening balance and tier
    (docs/import.md). Exit 1 when a row was refused, 2 when the file cannot be read."""
    env = DevEnv.load()
    options = member_imports.ImportOptions(
        partner_id=partner or env.partner_id,
        welcome=welcome,
        fmt=file_format,
        batch=batch,
        in_flight=in_flight,
        report=report,
    )
    try:
        summary = asyncio.run(member_imports.import_file(env, file, options, console))
    except member_imports.ImportFileError as failure:
        raise _fail(str(failure), 2) from None
    except member_imports.ImportRefused as refused:
        raise _fail(f"ingest refused the import: {refused}", 2) from None
    except (FedeltaError, httpx.TransportError) as failure:
        raise _fail(
            f"ingest did not answer ({failure or type(failure).__name__}); what went in is "
            "kept: run the same command again to import the rest",
            2,
        ) from None
    member_imports.render_summary(summary, console, report)
    if summary.refused:
        raise typer.Exit(1)


# --- topics ---------------------------------------------------------------------------------


@topics_app.command("create")
def topics_create(
    partitions: Annotated[
        int | None, typer.Option(min=1, help="default: $FEDELTA_TOPIC_PARTITIONS")
    ] = None,
    replication_factor: Annotated[
        int | None, typer.Option(min=1, help="default: $FEDELTA_TOPIC_REPLICATION_FACTOR")
    ] = None,
    min_insync_replicas: Annotated[
        int | None, typer.Option(min=1, help="default: $FEDELTA_TOPIC_MIN_ISR")
    ] = None,
) -> None:
    """Create the topics that do not exist yet (with their dead-letter topics); report the
    existing ones that are weaker than asked (exit 3)."""
    _, values = load_values()
    try:
        settings = operations.topic_settings(
            values,
            partitions=partitions,
            replication_factor=replication_factor,
            min_insync_replicas=min_insync_replicas,
        )
    except ValueError as error:
        raise _fail(str(error), 2) from None
    result = asyncio.run(operations.create_topics(kafka_connection(), settings))
    created = result.created
    console.print(
        f"topics: {len(created)} created"
        + (f": {', '.join(created)}" if created else "")
        + f" (replication factor {settings.replication_factor}, "
        f"min.insync.replicas {settings.min_insync_replicas})"
    )
    for name in result.altered:
        console.print(f"topics: {name}: erasure configs tightened (docs/operations.md)")
    for name, found in sorted(result.weaker.items()):
        errors.print(f"[yellow]{name} is weaker than asked:[/] {'; '.join(found)}")
    if result.weaker:
        raise typer.Exit(3)


@topics_app.command("describe")
def topics_describe(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Partitions, replication, in-sync replicas and non-default configuration."""
    topics = asyncio.run(operations.describe_topics(kafka_connection()))
    if as_json:
        print(json.dumps(topics, indent=2))
    else:
        operations.render_topics(topics, console)


# --- migrate --------------------------------------------------------------------------------


@app.command("migrate")
def migrate_command(
    service: Annotated[
        list[str] | None, typer.Option("--service", help="only these (default: every service)")
    ] = None,
) -> None:
    """Bring every service's database to its newest migration."""
    chosen = service or list(SERVICES)
    unknown = [s for s in chosen if s not in SERVICES]
    if unknown:
        raise _fail(f"unknown service(s) {', '.join(unknown)}: {', '.join(SERVICES)}", 2)
    path, values = load_values()
    operations.migrate(operations.database_urls(path, values), chosen, console)


# --- jobs -----------------------------------------------------------------------------------


@jobs_app.command("run")
def jobs_run(
    service: str,
    name: Annotated[str, typer.Argument(help="a job of that service, or `all`")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="RFC 3339 instant (default: now)")
    ] = None,
) -> None:
    """Run a time-driven job now, as of an instant."""
    if service not in SERVICES:
        raise _fail(f"unknown service {service!r}: {', '.join(SERVICES)}", 2)
    try:
        answer = asyncio.run(operations.run_job(DevEnv.load(), service, name, as_of))
    except operations.CommandFailed as failure:
        raise _fail(str(failure)) from None
    console.print_json(json.dumps(answer))


# --- dead letters ---------------------------------------------------------------------------

TopicOption = Annotated[
    str | None,
    typer.Option(help="purchases, fedelta.purchases.v1 or fedelta.purchases.v1.dlq (default: all)"),
]
SinceOption = Annotated[
    str | None, typer.Option(help="dead-lettered since: 30m, 2h, 7d or an ISO 8601 time")
]


def _since(value: str | None) -> datetime | None:
    try:
        return dead_letters.parse_since(value, datetime.now(UTC))
    except ValueError as error:
        raise _fail(str(error), 2) from None


@dlq_app.command("list")
def dlq_list(topic: TopicOption = None, since: SinceOption = None) -> None:
    """What was dead-lettered and why (headers only)."""
    letters = asyncio.run(
        dead_letters.list_dead_letters(
            kafka_connection(), dead_letters.dead_letter_topics(topic), _since(since)
        )
    )
    table = Table(
        "dead letter", "when", "error", "consumer", "original", "attempts", "key", "replayed"
    )
    for letter in letters:
        h = letter.headers
        table.add_row(
            letter.ref,
            letter.dead_lettered_at.isoformat(timespec="seconds"),
            letter.error,
            h.get("fedelta-consumer", "?"),
            f"{letter.original_topic}[{h.get('fedelta-original-partition', '?')}]"
            f"@{h.get('fedelta-original-offset', '?')}",
            h.get("fedelta-attempts", "?"),
            letter.key or "",
            "yes" if letter.replayed else "no",
        )
    console.print(table)
    console.print(f"{len(letters)} dead letter(s)")


@dlq_app.command("show")
def dlq_show(
    ref: Annotated[str, typer.Argument(help="<dlq topic>:<partition>:<offset>, as listed")],
    show_body: Annotated[
        bool, typer.Option("--show-body", help="print the body (it may hold personal data)")
    ] = False,
) -> None:
    """One dead letter: its headers and event id and type; the body only with --show-body."""
    try:
        letter = asyncio.run(dead_letters.find_dead_letter(kafka_connection(), ref))
    except ValueError as error:
        raise _fail(str(error), 2) from None
    if letter is None:
        raise _fail(f"no dead letter at {ref}")
    table = Table("field", "value", show_header=False)
    table.add_row("dead letter", letter.ref)
    table.add_row("dead-lettered at", letter.dead_lettered_at.isoformat())
    table.add_row("key", letter.key or "")
    table.add_row("replayed", "yes" if letter.replayed else "no")
    for name, value in sorted(letter.headers.items()):
        table.add_row(f"header {name}", value)
    for name, value in letter.event_summary().items():
        table.add_row(f"event {name}", value)
    console.print(table)
    if show_body:
        console.print(letter.value.decode(errors="replace") if letter.value else "")


@dlq_app.command("replay")
def dlq_replay(
    topic: TopicOption = None,
    since: SinceOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list, send nothing")] = False,
) -> None:
    """Re-publish what was dead-lettered (and not replayed before) to its topic; the
    consumers' inboxes apply each event at most once."""
    report = asyncio.run(
        dead_letters.replay(
            kafka_connection(),
            dead_letters.dead_letter_topics(topic),
            _since(since),
            dry_run=dry_run,
        )
    )
    verb = "would replay" if dry_run else "replayed"
    for letter in report.replayed:
        console.print(f"{verb} {letter.ref} ({letter.error}) to {letter.original_topic}")
    console.print(
        f"{verb} {len(report.replayed)} dead letter(s)"
        + (f"; {report.passed_over} older than --since passed over" if report.passed_over else "")
    )


def run() -> None:
    app()


if __name__ == "__main__":
    run()
