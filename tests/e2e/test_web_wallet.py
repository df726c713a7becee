"""The member wallet end to end, in Debian's headless Chromium on a phone-sized screen, through
the real stack: a member enrolled at the till (email, consent) who bought enough for a reward of
the catalogue asks for a sign-in link, reads it in the mail catcher, signs in, sees their points
and tier, redeems the reward and gets its coupon's code and QR code; the same link a second time
is refused; axe finds no serious violation on the home, rewards and coupon pages; one page in
Finnish. Then a receipt's QR link signs its member in, and an altered one is refused.
Screenshots of every step: <test state dir>/artifacts/test_web_wallet.*/."""

from __future__ import annotations

import email
import re
import uuid
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from playwright.async_api import Page, expect

from fedelta_client import StackClient
from tests.e2e.conftest import Pipeline
from tests.support.browser import PageOptions, accessibility, snap
from tests.support.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

WITHIN = 90  # seconds: two cores shared with the whole stack and a browser
COST = 150  # the reward's price: below the welcome bonus and a 300.00 purchase's earning
CODE = re.compile(r"^[A-Z0-9]{4}(-[A-Z0-9]{4}){3}$")
PHONE = PageOptions(viewport="phone", locale="en-GB")


@pytest.fixture
def page_options() -> PageOptions:
    """The wallet is phone first: every page of this module on a phone-sized screen."""
    return PHONE


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def create_reward(pos: StackClient, name: str) -> str:
    response = await pos.admin_post(
        f"{pos.env.points_url}/v1/rewards",
        {"name": name, "points_cost": COST, "kind": "coupon"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text
    reward_id: str = response.json()["id"]
    return reward_id


async def member_who_can_afford_it(pos: StackClient, mail_dir: Path) -> tuple[str, str]:
    """A member enrolled with an email and its consent, whose purchase earned enough points,
    and whose welcome mail went out (notifications knows their address: a link can reach
    them)."""
    customer = unique("wallet")
    address = f"{customer}@example.com"
    await pos.enrol(customer, address, consent=True)
    await pos.purchase(customer, "300.00")

    async def rich() -> bool:
        response = await pos.balance(customer)
        return response.status_code == 200 and response.json()["available"] >= COST

    async def tiered() -> bool:
        return (await pos.tier(customer)).status_code == 200

    await eventually(rich, within=WITHIN, what=f"{COST} points for {customer}")
    await eventually(tiered, within=WITHIN, what=f"a tier for {customer}")

    async def welcomed() -> bool:
        return bool(mails_to(mail_dir, address))

    await eventually(welcomed, within=WITHIN, what=f"the welcome mail to {customer}")
    return customer, address


def mails_to(mail_dir: Path, address: str) -> list[EmailMessage]:
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        assert isinstance(message, EmailMessage)
        if address in str(message["To"]):
            found.append(message)
    return found


def sign_in_link(mail_dir: Path, address: str, web_url: str) -> str | None:
    """The wallet link in the member's sign-in mail, once it is there."""
    pattern = re.compile(re.escape(web_url) + r"/wallet/sign-in/[A-Za-z0-9_-]{20,100}")
    for message in mails_to(mail_dir, address):
        body = message.get_body(("plain",))
        found = pattern.search(body.get_content()) if body is not None else None
        if found:
            return found.group(0)
    return None


async def assert_accessible(page: Page, what: str) -> None:
    violations = await accessibility(page)
    assert not violations, f"{what}: " + "; ".join(str(v) for v in violations)


async def test_a_member_signs_in_by_the_emailed_link_and_redeems_a_reward(
    pipeline: Pipeline,
    pos: StackClient,
    page: Page,
    new_page: Callable[[PageOptions], Awaitable[Page]],
) -> None:
    web, mail_dir = pipeline.env.web_url, pipeline.env.mail_dir
    reward = unique("Wallet espresso")
    await create_reward(pos, reward)
    customer, address = await member_who_can_afford_it(pos, mail_dir)

    await page.goto(f"{web}/wallet/sign-in")
    await page.get_by_label("Your email address").fill(address)
    await snap(page, "sign-in-form")
    await page.get_by_role("button", name="Email me a sign-in link").click()
    await expect(page.get_by_role("status")).to_contain_text("sign-in link is on its way")
    await snap(page, "link-asked-for")

    async def mailed() -> str | None:
        return sign_in_link(mail_dir, address, web)

    link = await eventually(mailed, within=WITHIN, what="the sign-in mail")
    await page.goto(link)
    await snap(page, "link-opened")
    await page.get_by_role("button", name="Continue to your wallet").click()
    await expect(page).to_have_url(f"{web}/wallet")
    await expect(page.get_by_role("heading", name="Your points")).to_be_visible()
    available = page.locator(".figures dd.figure")
    await expect(available).to_have_text(re.compile(r"^[0-9][0-9,]*$"))
    await expect(page.get_by_role("heading", name="Your tier")).to_be_visible()
    await expect(page.locator("#tier-heading + p.figure")).not_to_be_empty()
    await snap(page, "home")
    await assert_accessible(page, "home")

    await page.get_by_role("link", name="Rewards", exact=True).click()
    await expect(page.get_by_role("heading", name=reward)).to_be_visible()
    await snap(page, "rewards")
    await assert_accessible(page, "rewards")
    await page.get_by_role("button", name=f"Redeem {reward} for {COST} points").click()

    await expect(page).to_have_url(re.compile(r"/wallet/coupons/[^/?]+\?done=wallet\.redeemed$"))
    await expect(page.get_by_role("status")).to_contain_text("Reward redeemed")
    code = (await page.locator("p.code").inner_text()).strip()
    assert CODE.fullmatch(code), code
    qr = page.get_by_role("img", name=f"QR code of the coupon code {code}")
    await expect(qr).to_be_visible()
    assert await qr.evaluate("(img) => img.complete && img.naturalWidth > 0")
    await snap(page, "coupon")
    await assert_accessible(page, "coupon")

    # The member's own coupon is in their list; points says it is theirs.
    coupons = await pos.read(f"{pos.env.points_url}/v1/customers/{customer}/coupons")
    assert code in {c["code"] for c in coupons.json()["coupons"]}

    await page.goto(f"{web}/wallet?lang=fi")
    await expect(page.locator("html")).to_have_attribute("lang", "fi")
    await expect(page.get_by_role("heading", name="Pisteesi")).to_be_visible()
    await snap(page, "home-in-finnish")

    again = await new_page(PHONE)
    await again.goto(link)
    await again.get_by_role("button", name="Continue to your wallet").click()
    await expect(again.get_by_role("alert")).to_contain_text("expired or was already used")
    await snap(again, "link-used-twice")
    assert urlsplit(again.url).path.startswith("/wallet/sign-in/")


async def test_a_receipt_s_qr_link_signs_its_member_in_and_an_altered_one_is_refused(
    pipeline: Pipeline, pos: StackClient, page: Page
) -> None:
    customer = unique("receipt")
    await pos.enrol(customer, f"{customer}@example.com", consent=True)
    answer = await pos.purchase_answer(customer, "42.00")
    wallet_url = answer.get("wallet_url")
    assert wallet_url, f"ingest gave no receipt link: {answer}"
    params = dict(parse_qsl(urlsplit(wallet_url).query))
    assert params["c"] == customer

    altered = {**params, "c": unique("someone-else")}
    await page.goto(f"{pipeline.env.web_url}/wallet/receipt?{urlencode(altered)}")
    await expect(page.get_by_role("alert")).to_contain_text("receipt's link has expired")
    await expect(page.get_by_role("link", name="Email me a sign-in link")).to_be_visible()
    await snap(page, "receipt-link-altered")

    await page.goto(wallet_url)
    await expect(page).to_have_url(f"{pipeline.env.web_url}/wallet")
    await expect(page.get_by_role("heading", name="Your points")).to_be_visible()
    await snap(page, "receipt-signed-in")
