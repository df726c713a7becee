"""Unsubscribe tokens, the footer of every email and the RFC 8058 headers."""

from datetime import UTC, datetime

import pytest

from services.notifications.adapters.smtp import OutgoingEmail, build_message
from services.notifications.domain.templates import SAMPLE_PARAMS, render
from services.notifications.domain.unsubscribe import (
    customer_of,
    derived_secret,
    unsubscribe_token,
)

SECRET = b"a-secret-of-sixteen-bytes-or-more"
URL = "https://fedelta.example/v1/unsubscribe/abc.def"


def test_a_token_names_its_customer() -> None:
    assert customer_of(unsubscribe_token("cust-42", SECRET), SECRET) == "cust-42"


def test_a_token_under_another_secret_is_refused() -> None:
    assert customer_of(unsubscribe_token("cust-42", SECRET), b"another-secret-entirely") is None


def test_a_token_for_one_customer_cannot_be_turned_into_another() -> None:
    mine = unsubscribe_token("cust-42", SECRET)
    theirs = unsubscribe_token("cust-43", SECRET)
    forged = f"{theirs.split('.')[0]}.{mine.split('.')[1]}"
    assert customer_of(forged, SECRET) is None


@pytest.mark.parametrize("token", ["", "cust-42", ".", "abc.", ".abc", "!!!.abc", "Y3VzdA.x"])
def test_malformed_tokens_are_refused(token: str) -> None:
    assert customer_of(token, SECRET) is None


def test_the_token_is_not_the_bare_id() -> None:
    token = unsubscribe_token("cust-42", SECRET)
    assert "cust-42" not in token
    assert len(token.split(".")[1]) >= 40


def test_a_derived_secret_differs_from_its_root() -> None:
    assert derived_secret(SECRET) != SECRET
    assert derived_secret(SECRET) == derived_secret(SECRET)


@pytest.mark.parametrize(
    ("locale", "line"),
    [
        ("en", "Unsubscribe:"),
        ("it", "Annulla l'iscrizione:"),
        ("fi", "Peru tilaus:"),
        ("pl", "Wypisz się:"),
    ],
)
def test_every_email_ends_with_the_unsubscribe_link_in_its_language(locale: str, line: str) -> None:
    message = render("tier_up", locale, SAMPLE_PARAMS, unsubscribe_url=URL)
    assert message.body.rstrip().endswith(f"{line} {URL}")
    assert f'<a href="{URL}">' in message.html


def test_without_a_url_there_is_no_footer() -> None:
    message = render("welcome", "en", {})
    assert "nsubscribe" not in message.body + message.html


def test_the_email_carries_the_one_click_headers() -> None:
    email = OutgoingEmail(
        notification_id="n-1",
        to="ada@example.com",
        subject="Hi",
        body="Hello\n",
        html="<p>Hello</p>",
        locale="en",
        date=datetime(2026, 11, 22, 10, tzinfo=UTC),
        unsubscribe_url=URL,
    )
    message = build_message(email, "Fedelta <no-reply@fedelta.localhost>")
    assert message["List-Unsubscribe"] == f"<{URL}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(("html",))
    assert html is not None
    assert "<p>Hello</p>" in str(html.get_content())


def test_an_email_without_a_url_has_no_unsubscribe_headers() -> None:
    email = OutgoingEmail(
        notification_id="n-1",
        to="ada@example.com",
        subject="Hi",
        body="Hello\n",
        locale="en",
        date=datetime(2026, 11, 22, 10, tzinfo=UTC),
    )
    message = build_message(email, "Fedelta <no-reply@fedelta.localhost>")
    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None
