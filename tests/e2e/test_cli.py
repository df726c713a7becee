"""The `fedelta` command against the whole pipeline (four service processes, real Kafka,
PostgreSQL and SMTP), run as an operator runs it, reading the stack's dev.env.

A small `fedelta simulate` must exit 0, and the figures of its summary must be what the
services answer over HTTP for the simulated customers."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fedelta_client import Refused, StackClient
from tests.e2e.conftest import Pipeline
from tests.support.polling import eventually
from tests.support.stack import REPO

pytestmark = pytest.mark.e2e

CUSTOMERS = 20
PURCHASES = 100


async def fedelta(pipeline: Pipeline, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fedelta_cli.main",
        *args,
        cwd=REPO,
        env={
            **os.environ,
            "FEDELTA_DEV_ENV": str(pipeline.stack.state_dir / "dev.env"),
            "COLUMNS": "200",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_a_small_simulation_agrees_with_the_services(
    pipeline: Pipeline, pos: StackClient, tmp_path: Path
) -> None:
    summary_file = tmp_path / "summary.json"
    code, output = await fedelta(
        pipeline,
        "simulate",
        "--customers",
        str(CUSTOMERS),
        "--purchases",
        str(PURCHASES),
        "--rate",
        "40",
        "--seed",
        "11",
        "--wait",
        "240",
        "--summary-json",
        str(summary_file),
    )
    assert code == 0, output
    summary: dict[str, Any] = json.loads(summary_file.read_text())
    assert summary["ok"] is True
    calls = summary["calls"]
    assert calls["enrol"] == {"accepted": CUSTOMERS}
    assert calls["purchase"] == {"accepted": PURCHASES}
    for bad in ("bad-currency", "bad-signature", "unknown-customer", "over-redemption"):
        assert set(calls[bad]) == {"refused"}, calls[bad]
    assert "every accepted call had its effect" in output

    customer_ids = [f"sim-{summary['run_tag']}-c{n:05d}" for n in range(CUSTOMERS)]
    available = 0
    spend = Decimal(0)
    tiers: dict[str, int] = {}
    for customer_id in customer_ids:
        balance, tier = await pos.balance(customer_id), await pos.tier(customer_id)
        assert balance.status_code == 200 and tier.status_code == 200
        available += balance.json()["available"]
        spend += Decimal(tier.json()["qualifying_spend"])
        tiers[tier.json()["tier"]] = tiers.get(tier.json()["tier"], 0) + 1
    assert summary["points"]["available"] == available
    assert Decimal(summary["qualifying_spend"]) == spend
    assert summary["tiers"] == tiers
    assert summary["customers"] == CUSTOMERS


async def test_customer_show_partners_topics_and_jobs(pipeline: Pipeline, pos: StackClient) -> None:
    customer = f"cli-{os.urandom(4).hex()}"
    await pos.enrol(customer, f"{customer}@example.com")
    await pos.purchase(customer, "120.00")

    async def shown() -> str | None:
        _, output = await fedelta(pipeline, "customer", "show", customer)
        return output if "qualifying spend 120.00" in output and "earn" in output else None

    output = await eventually(shown, within=90, interval=1, what="the customer's whole view")
    assert "available" in output and "notifications" in output

    code, output = await fedelta(pipeline, "partners", "create", "--name", "CLI Shop")
    assert code == 0, output
    code, output = await fedelta(pipeline, "partners", "list", "--json")
    assert code == 0, output
    listed = json.loads(output)
    assert any(p["name"] == "CLI Shop" and p["active"] for p in listed)
    assert all("api_key" not in p and "signing_secret" not in p for p in listed)

    code, output = await fedelta(pipeline, "topics", "describe", "--json")
    assert code == 0, output
    names = {t["topic"] for t in json.loads(output)}
    assert {"fedelta.purchases.v1", "fedelta.purchases.v1.dlq"} <= names

    code, output = await fedelta(pipeline, "jobs", "run", "tiers", "all")
    assert code == 0, output
    assert "review-tiers" in output
    code, output = await fedelta(pipeline, "jobs", "run", "tiers", "no-such-job")
    assert code == 1 and "no job" in output


async def test_the_demo_ends_with_a_coupon_the_till_takes_once(pipeline: Pipeline) -> None:
    code, output = await fedelta(pipeline, "demo")
    assert code == 0, output
    assert "tier" in output and "balance: 200" in output
    assert "redeem 'Free coffee (demo)' at the till for 150 points" in output
    assert "the till takes the coupon: 200 redeemed" in output
    assert "and refuses it a second time: HTTP 409" in output


async def test_rewards_and_coupons_from_the_command_line(
    pipeline: Pipeline, pos: StackClient
) -> None:
    name = f"CLI cake {os.urandom(3).hex()}"
    code, output = await fedelta(
        pipeline, "rewards", "create", "--name", name, "--points-cost", "20", "--kind", "item",
        "--stock", "5", "--per-customer-limit", "1",
    )  # fmt: skip
    assert code == 0, output
    code, output = await fedelta(pipeline, "rewards", "list", "--json")
    assert code == 0, output
    (reward,) = [r for r in json.loads(output) if r["name"] == name]
    assert (reward["points_cost"], reward["stock"], reward["per_customer_limit"]) == (20, 5, 1)
    code, output = await fedelta(pipeline, "rewards", "create", "--name", "x", "--points-cost",
                                 "0", "--kind", "item")  # fmt: skip
    assert code != 0

    customer = f"cli-{os.urandom(4).hex()}"
    await pos.enrol(customer, None, consent=False)

    async def coupon() -> dict[str, Any] | None:
        try:
            answer = await pos.customer_rewards(customer)
        except Refused as refused:
            assert refused.status_code == 404  # points has not seen the enrolment yet
            return None
        mine = [r for r in answer["rewards"] if r["id"] == reward["id"]]
        if not mine or not mine[0]["redeemable"]:
            return None  # the welcome bonus is not there yet
        redeemed = await pos.redeem(customer, reward_id=reward["id"])
        issued: dict[str, Any] = redeemed.body["coupon"]
        return issued

    issued = await eventually(coupon, within=60, interval=0.5, what="the reward redeemable")
    code, output = await fedelta(pipeline, "coupon", "show", issued["coupon_id"])
    assert code == 0, output
    assert issued["code"] in output and "issued" in output and name in output
