"""`fedelta demo`: the demo partner's till (`fedelta_client.StackClient`) enrols a customer and
reports two purchases, then shows balance, tier and notifications, and the mail sent; then
the member spends points on a reward of the catalogue at the till, gets its coupon (code and
QR code), and the till takes the coupon once. Last, where to see it all in a browser: the
member's wallet link and the program console."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console

from fedelta_cli.operations import render_coupon
from fedelta_client import DevEnv, Refused, StackClient

DEMO_REWARD = {
    "name": "Free coffee (demo)",
    "points_cost": 150,
    "kind": "coupon",
    "coupon_validity_days": 30,
    "description": "Any coffee at any partner's till",
}
DEMO_STORE = "demo-store"


async def show(pos: StackClient, customer_id: str) -> None:
    for name, response in (
        ("balance", await pos.balance(customer_id)),
        ("tier", await pos.tier(customer_id)),
        ("notifications", await pos.notifications(customer_id)),
    ):
        print(f"{name}: {response.status_code} {json.dumps(response.json(), indent=2)}")


# Spread round the world, so that in one of them it is day whenever the demo runs.
DEMO_TIME_ZONES = ("Europe/Rome", "America/New_York", "America/Los_Angeles", "Asia/Tokyo")


def time_zone_in_daytime(now: datetime) -> str:
    """A time zone where it is between 09:00 and 19:00 now: notifications never writes to a
    customer in their quiet hours (21:00-08:00 by default), and the demo wants its emails now."""
    for name in DEMO_TIME_ZONES:
        if 9 <= now.astimezone(ZoneInfo(name)).hour < 19:
            return name
    return DEMO_TIME_ZONES[0]


async def demo(pos: StackClient) -> None:
    """Enrol a customer where it is daytime, two purchases, then balance, tier and mail."""
    customer = f"demo-{uuid.uuid4().hex[:8]}"
    email = f"{customer}@example.com"
    zone = time_zone_in_daytime(datetime.now(UTC))
    print(
        f"enrol {customer} <{email}> in {zone}, where it is daytime (quiet hours are respected), "
        "with email consent:",
        (await pos.enrol(customer, email, time_zone=zone)).event_id,
    )
    print("purchase 300.00 EUR:", (await pos.purchase(customer, "300.00")).event_id)
    answer = await pos.purchase_answer(customer, "250.00")
    print("purchase 250.00 EUR:", answer["event_id"])
    deadline = time.monotonic() + 60
    mails: list[Path] = []
    while time.monotonic() < deadline:
        balance, tier = await pos.balance(customer), await pos.tier(customer)
        mails = [p for p in sorted(pos.env.mail_dir.glob("*.eml")) if email in p.read_text()]
        if (
            balance.status_code == 200
            and balance.json()["available"] == 650
            and tier.status_code == 200
            and tier.json()["tier"] == "silver"
            and len(mails) >= 2
        ):
            break
        await asyncio.sleep(0.3)
    await show(pos, customer)
    print(f"mail to {email}: {len(mails)} message(s)")
    for path in mails:
        print(f"  {path}")
    await spend_on_a_reward(pos, customer)
    print_web_links(pos.env, answer.get("wallet_url"))


async def demo_reward(pos: StackClient) -> dict[str, Any]:
    """The catalogue's demo reward, created the first time (an administrator's call)."""
    for reward in await pos.admin.rewards():
        if reward["name"] == DEMO_REWARD["name"]:
            return reward
    return await pos.admin.create_reward(DEMO_REWARD)


async def spend_on_a_reward(pos: StackClient, customer: str) -> None:
    """At the till, through ingest: the reward redeemed, its coupon shown, then taken once."""
    reward = await demo_reward(pos)
    redeemed = await pos.redeem(customer, reward_id=reward["id"], store_id=DEMO_STORE)
    coupon = redeemed.body["coupon"]
    print(
        f"redeem {reward['name']!r} at the till for {redeemed.body['points']} points: "
        f"{redeemed.body['available_after']} left"
    )
    render_coupon(
        {
            "coupon_id": coupon["coupon_id"],
            "customer_id": customer,
            "reward": reward["name"],
            "status": "issued",
            "expires_at": coupon["expires_at"],
            "code": coupon["code"],
        },
        Console(),
    )
    used = await pos.redeem_coupon(coupon["code"], store_id=DEMO_STORE)
    print(f"the till takes the coupon: {used.status_code} {used.body['status']}")
    try:
        await pos.redeem_coupon(coupon["code"], store_id=DEMO_STORE)
    except Refused as again:
        print(f"and refuses it a second time: {again}")


def web_links(env: DevEnv, wallet_url: str | None) -> list[str]:
    """The member's wallet link (the receipt's QR link of the last purchase, when ingest gives
    one; else the wallet's sign-in page) and the console's address with its user name; never
    the password, only where it is."""
    console_user = env.console_user or "admin"
    return [
        f"the member's wallet: {wallet_url or env.wallet_sign_in_url}",
        f"the program console: {env.console_url}  (user {console_user}; the password is "
        "FEDELTA_CONSOLE_PASSWORD in .fedelta/dev.env)",
    ]


def print_web_links(env: DevEnv, wallet_url: str | None) -> None:
    print()
    for line in web_links(env, wallet_url):
        print(line)
