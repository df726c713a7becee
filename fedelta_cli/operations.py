"""The operator's smaller commands: partners, rewards, coupons, topics, migrations, jobs, one
customer's view."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import io
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import segno
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from fedelta_client import FedeltaError, InternalClient, internal
from fedelta_client.devenv import REPO, SERVICES, DevEnv, DevEnvError, read_env_file
from shared.messaging.kafka import KafkaConnection, client_options
from shared.messaging.topics import EnsureResult, TopicSettings, ensure_topic_layout


class CommandFailed(Exception):
    """A service refused or failed: the message is for the operator."""


T = TypeVar("T")


async def admin_call(
    env: DevEnv, work: Callable[[InternalClient], Awaitable[T]], *, http_timeout_s: float = 20
) -> T:
    """`work` done with the admin token; a refusal or failure becomes CommandFailed, whose
    message (`HTTP <status>: <detail>`) is for the operator."""
    async with httpx.AsyncClient(timeout=http_timeout_s) as http:
        try:
            return await work(InternalClient.from_dev_env(http, env, admin=True))
        except FedeltaError as failure:
            raise CommandFailed(str(failure)) from None


def render_credentials(answer: Mapping[str, Any], console: Console) -> None:
    """Shown once: the key is stored hashed, the secret only where ingest needs it."""
    console.print(
        Panel(
            f"partner id      {answer['partner_id']}\n"
            f"name            {answer['name']}\n"
            f"API key         {answer['api_key']}\n"
            f"signing secret  {answer['signing_secret']}",
            title="credentials: shown this once, store them now",
            border_style="yellow",
        )
    )


def render_partners(items: Sequence[Mapping[str, Any]], console: Console) -> None:
    table = Table("partner id", "name", "created", "active")
    for item in items:
        table.add_row(
            item["partner_id"],
            item["name"],
            str(item["created_at"]),
            "yes" if item["active"] else "[red]revoked[/]",
        )
    console.print(table)


# --- rewards and coupons ------------------------------------------------------------------


class RewardKind(enum.StrEnum):
    COUPON = "coupon"
    ITEM = "item"
    DISCOUNT = "discount"


def reward_body(**fields: object) -> dict[str, object]:
    """The create-reward body: the options given, none of those left out."""
    return {name: value for name, value in fields.items() if value is not None}


def render_rewards(items: Sequence[Mapping[str, Any]], console: Console) -> None:
    table = Table("id", "name", "points", "kind", "partner", "min tier", "stock", "per member")
    for item in items:
        stock = item.get("stock")
        table.add_row(
            item["id"],
            item["name"],
            str(item["points_cost"]),
            item["kind"] + (f" {item['value']}" if item.get("value") else ""),
            item.get("partner_id") or "any",
            item.get("min_tier") or "-",
            "unlimited" if stock is None else f"{item.get('redeemed', 0)}/{stock}",
            str(item.get("per_customer_limit") or "-"),
        )
    console.print(table)


def render_coupon(coupon: Mapping[str, Any], console: Console) -> None:
    """The coupon's facts, then its code as text and as a QR code a till can scan."""
    lines = [
        f"coupon id   {coupon['coupon_id']}",
        f"customer    {coupon['customer_id']}",
        f"reward      {coupon.get('reward', coupon.get('reward_id'))}",
        f"status      {coupon['status']}",
        f"expires at  {coupon['expires_at']}",
        f"code        {coupon['code']}",
    ]
    console.print(Panel("\n".join(lines), title="coupon"))
    qr = io.StringIO()
    segno.make(coupon["code"], error="m").terminal(out=qr, compact=True)
    console.print(qr.getvalue(), markup=False, highlight=False)


# --- topics -------------------------------------------------------------------------------


def topic_settings(values: Mapping[str, str], **chosen: int | None) -> TopicSettings:
    """FEDELTA_TOPIC_* from dev.env or the environment (a local stack writes one broker's),
    with the command's options over them."""
    from_env = TopicSettings.from_env(values)
    return dataclasses.replace(
        from_env, **{name: value for name, value in chosen.items() if value is not None}
    )


async def create_topics(
    bootstrap_servers: str | KafkaConnection, settings: TopicSettings
) -> EnsureResult:
    return await ensure_topic_layout(bootstrap_servers, settings)


async def describe_topics(
    bootstrap_servers: str | KafkaConnection, prefix: str = "fedelta."
) -> list[dict[str, Any]]:
    """Every topic of the platform: partitions with leader, replicas and in-sync replicas,
    and the topic's configuration that differs from the broker's defaults."""
    admin = AIOKafkaAdminClient(**client_options(bootstrap_servers))
    await admin.start()
    try:
        names = sorted(t for t in await admin.list_topics() if t.startswith(prefix))
        if not names:
            return []
        described = {t["topic"]: t for t in await admin.describe_topics(names)}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
        configs: dict[str, dict[str, str]] = {}
        for response in responses:
            for resource in response.resources:
                _, _, _, name, entries = resource[:5]
                configs[name] = {
                    entry[0]: str(entry[1])
                    for entry in entries
                    # (name, value, read_only, config_source or is_default, is_sensitive, ...)
                    if not _is_default(entry)
                }
        return [
            {
                "topic": name,
                "partitions": [
                    {
                        "partition": p["partition"],
                        "leader": p["leader"],
                        "replicas": list(p["replicas"]),
                        "isr": list(p["isr"]),
                    }
                    for p in sorted(described[name]["partitions"], key=lambda p: p["partition"])
                ],
                "config": configs.get(name, {}),
            }
            for name in names
            if name in described
        ]
    finally:
        await admin.close()


def _is_default(entry: Any) -> bool:
    # v0 answers carry is_default (bool) at index 3; v1+ carry config_source (5: default).
    marker = entry[3]
    if isinstance(marker, bool):
        return marker
    return bool(marker == 5)


def render_topics(topics: list[dict[str, Any]], console: Console) -> None:
    table = Table("topic", "partitions", "replication", "min ISR", "in sync", "configuration")
    for topic in topics:
        partitions = topic["partitions"]
        replication = {len(p["replicas"]) for p in partitions}
        under = sum(1 for p in partitions if len(p["isr"]) < len(p["replicas"]))
        config = dict(topic["config"])
        min_isr = config.pop("min.insync.replicas", "default")
        table.add_row(
            topic["topic"],
            str(len(partitions)),
            "/".join(str(r) for r in sorted(replication)),
            min_isr,
            "all" if not under else f"[red]{under} under-replicated[/]",
            ", ".join(f"{k}={v}" for k, v in sorted(config.items())),
        )
    console.print(table)


# --- migrations ---------------------------------------------------------------------------


def database_urls(env_file: Path, values: Mapping[str, str]) -> dict[str, str]:
    """FEDELTA_<SERVICE>_DATABASE_URL from the environment or dev.env, else from the
    services.env that `make up` keeps beside dev.env."""
    urls = {
        s: values[f"FEDELTA_{s.upper()}_DATABASE_URL"]
        for s in SERVICES
        if values.get(f"FEDELTA_{s.upper()}_DATABASE_URL")
    }
    services_env = env_file.parent / "services.env"
    if len(urls) < len(SERVICES) and services_env.exists():
        beside = read_env_file(services_env)
        for service in SERVICES:
            name = f"FEDELTA_{service.upper()}_DATABASE_URL"
            if service not in urls and beside.get(name):
                urls[service] = beside[name]
    return urls


def migrate(urls: Mapping[str, str], services: list[str], console: Console) -> None:
    from shared.storage.migrations import upgrade_to_head

    missing = [s for s in services if s not in urls]
    if missing:
        names = ", ".join(f"FEDELTA_{s.upper()}_DATABASE_URL" for s in missing)
        raise DevEnvError(f"set {names} (dev.env, services.env beside it, or the environment)")
    for service in services:
        with console.status(f"migrating {service}"):
            upgrade_to_head(REPO / "services" / service / "migrations", urls[service])
        console.print(f"{service}: at the newest migration")


# --- jobs ---------------------------------------------------------------------------------


async def run_job(env: DevEnv, service: str, name: str, as_of: str | None) -> dict[str, Any]:
    if service not in internal.SERVICES:  # the web: pages for browsers, no jobs API
        raise CommandFailed(f"{service} has no jobs")
    return await admin_call(
        env, lambda admin: admin.run_job(service, name, as_of), http_timeout_s=300
    )


# --- one customer -------------------------------------------------------------------------


async def customer_view(env: DevEnv, customer_id: str, ledger_tail: int) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=20) as http:
        reader = InternalClient.from_dev_env(http, env)
        responses, insights = await asyncio.gather(
            asyncio.gather(
                reader.balance(customer_id),
                reader.ledger(customer_id, limit=ledger_tail),
                reader.tier(customer_id),
                reader.notifications(customer_id),
                reader.stamp_cards(customer_id),
                reader.challenges(customer_id),
                reader.badges(customer_id),
            ),
            insights_of(reader, customer_id),
        )
    balance, ledger, tier, notifications, cards, challenges, badges = responses

    def body(response: httpx.Response) -> Any:
        return response.json() if response.status_code == 200 else None

    return {
        "balance": body(balance),
        "ledger": (body(ledger) or {}).get("entries", []),
        "tier": body(tier),
        "notifications": (body(notifications) or {}).get("items", []),
        "stamp_cards": (body(cards) or {}).get("items", []),
        "challenges": (body(challenges) or {}).get("items", []),
        "badges": (body(badges) or {}).get("items", []),
        **insights,
    }


NOT_KNOWN_TO_INSIGHTS = "insights does not know this customer (yet)"


async def insights_of(reader: InternalClient, customer_id: str) -> dict[str, Any]:
    """`insights`: the member's insights, or None with `insights_note` saying why. A stack
    whose insights is down or not started yet still shows the rest of the member."""
    try:
        response = await reader.insights().customer_insights(customer_id)
    except httpx.HTTPError as error:
        note = f"insights is unreachable ({type(error).__name__})"
        return {"insights": None, "insights_note": note}
    if response.status_code == 200:
        return {"insights": response.json()}
    if response.status_code == 404:
        return {"insights": None, "insights_note": NOT_KNOWN_TO_INSIGHTS}
    return {"insights": None, "insights_note": f"insights answered {response.status_code}"}


def _shown(value: Any) -> str:
    return "-" if value is None else str(value)


def insights_panel(view: Mapping[str, Any]) -> Any:
    """The member's lifecycle stage, RFM scores, loyalty types with their reasons and
    segments (insights); a dim line saying why when there is nothing to show."""
    insights = view.get("insights")
    if insights is None:
        return f"[dim]{view.get('insights_note', NOT_KNOWN_TO_INSIGHTS)}[/]"
    rfm = insights.get("rfm") or {}
    recency = rfm.get("recency_days")
    reason = f" ({insights['lifecycle_reason']})" if insights.get("lifecycle_reason") else ""
    summary = (
        f"lifecycle [bold]{_shown(insights.get('lifecycle'))}[/]{reason}  "
        f"RFM r {_shown(rfm.get('r'))} f {_shown(rfm.get('f'))} m {_shown(rfm.get('m'))}  "
        f"(last purchase {'never' if recency is None else f'{recency} days ago'}, "
        f"{_shown(rfm.get('frequency'))} purchases, {_shown(rfm.get('monetary'))} spent)  "
        f"as of {str(insights.get('as_of') or '')[:19]}"
    )
    types: Any = "loyalty types: none"
    if insights.get("loyalty_types"):
        types = Table("loyalty type", "why", box=None)
        for kind in insights["loyalty_types"]:
            types.add_row(kind["type"], "; ".join(kind.get("reasons") or []))
    # A segment may come as its name or as an object naming it.
    names = [
        s if isinstance(s, str) else s.get("name", s.get("segment", "?"))
        for s in insights.get("segments") or []
    ]
    return Group(summary, types, f"segments: {', '.join(names) or 'none'}")


def engagement_panel(view: Mapping[str, Any]) -> Table:
    """The member's stamp cards, challenges and badges (engagement), one row each."""
    rows = Table("engagement", "name", "where", "done", box=None)
    for card in view.get("stamp_cards", []):
        stamps = f"{card['stamps']}/{card['stamps_required']} stamps"
        rows.add_row("stamp card", card["name"], stamps, f"{card['completed_count']} completed")
    for challenge in view.get("challenges", []):
        done = str(challenge["completed_at"])[:10] if challenge["completed_at"] else ""
        where = f"{challenge['progress']}/{challenge['target']} {challenge['goal']['kind']}"
        rows.add_row("challenge", challenge["name"], where, done)
    for badge in view.get("badges", []):
        rows.add_row("badge", badge["badge"], "", str(badge["earned_at"])[:10])
    return rows


def tier_text_of(tier: Mapping[str, Any] | None) -> Any:
    """The tier lines: the tier, its spend and routes, the progress and what keeps it."""
    if tier is None:
        return "[dim]tiers does not know this customer (yet)[/]"
    else:

        def by_routes(kind: str, match: Any, amount: Any) -> str:
            # Each route's gap (issue 25): "2 more friends or 340.00 more"; spend alone as before.
            parts = [
                f"{tier[f'{route}_{kind}']} more {word}"
                for route, word in (("referrals", "friends"), ("visits", "visits"))
                if tier.get(f"{route}_{kind}") is not None
            ]
            parts += [] if amount is None else [f"{amount} more"]
            return (" and " if match == "all" else " or ").join(parts)

        progress = (
            by_routes("to_next_tier", tier.get("next_tier_match"), tier["amount_to_next_tier"])
            + f" to {tier['next_tier']}"
            if tier.get("next_tier")
            else "top tier"
        )
        routes = ""
        if any(
            tier.get(f"{r}_to_{k}_tier") is not None
            for r in ("referrals", "visits")
            for k in ("next", "keep")
        ):
            routes = f", {tier['qualifying_referrals']} friends, {tier['qualifying_visits']} visits"
        keep = by_routes(
            "to_keep_tier", tier.get("tier_match"), tier.get("amount_to_keep_tier", "0")
        )
        return (
            f"[bold]{tier['tier']}[/] since {str(tier['since'])[:10]}  "
            f"qualifying spend {tier['qualifying_spend']}{routes}  ({progress})\n"
            f"review {str(tier['review_at'])[:10]}, "
            f"{keep} keeps the tier"
        )


def render_customer(customer_id: str, view: Mapping[str, Any], console: Console) -> None:
    balance = view["balance"]
    if balance is None:
        points: Any = "[dim]points does not know this customer (yet)[/]"
    else:
        expiries = ", ".join(
            f"{e['points']} on {str(e['expires_at'])[:10]}" for e in balance["next_expiries"][:3]
        )
        points = (
            f"available [bold]{balance['available']}[/]  pending {balance['pending']}  "
            f"debt {balance['debt']}  lifetime earned {balance['lifetime_earned']}\n"
            f"next expiries: {expiries or 'none'}"
        )
    tier_text = tier_text_of(view["tier"])
    ledger = Table("when", "kind", "points", "reason", "purchase", box=None)
    for entry in view["ledger"]:
        ledger.add_row(
            str(entry["occurred_at"])[:19],
            entry["kind"],
            str(entry["points"]),
            entry.get("reason", ""),
            entry.get("purchase_id") or "",
        )
    notes = Table("created", "template", "channel", "status", "attempts", box=None)
    for item in view["notifications"][:10]:
        notes.add_row(
            str(item["created_at"])[:19],
            item["template"],
            item["channel"],
            item["status"],
            str(item["attempts"]),
        )
    console.print(
        Panel(
            Group(
                Panel(points, title="points", title_align="left"),
                Panel(tier_text, title="tier", title_align="left"),
                Panel(ledger, title="ledger (newest first)", title_align="left"),
                Panel(notes, title="notifications", title_align="left"),
                Panel(engagement_panel(view), title="engagement", title_align="left"),
                Panel(insights_panel(view), title="insights", title_align="left"),
            ),
            title=f"customer {customer_id}",
        )
    )
