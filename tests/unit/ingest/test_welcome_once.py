"""One welcome per email address (issue 19): the key an address is remembered by, and the
enrolment without its welcome."""

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from services.ingest.api.schemas import EnrolmentIn
from services.ingest.domain.welcomes import normalised_email, welcome_key
from services.ingest.usecases.customers import _enrolled_profile, profile_payload, without_welcome
from shared.messaging import events
from shared.messaging.events import new_event

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)

local_parts = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=20)


def test_case_and_surrounding_spaces_make_no_other_address() -> None:
    assert welcome_key(" Ada.Lovelace@Example.COM ") == welcome_key("ada.lovelace@example.com")
    assert normalised_email("  MIA@cafe.IT\t") == "mia@cafe.it"


def test_the_key_is_a_hash_not_the_address() -> None:
    key = welcome_key("ada@example.com")
    assert len(key) == 64 and "ada" not in key
    assert key != welcome_key("ada@example.org")


@given(local=local_parts, domain=local_parts, upper=st.booleans(), pad=st.text(" \t", max_size=3))
def test_every_spelling_of_an_address_has_one_key(
    local: str, domain: str, upper: bool, pad: str
) -> None:
    address = f"{local}@{domain}.com"
    spelled = f"{pad}{address.upper() if upper else address}{pad}"
    assert welcome_key(spelled) == welcome_key(address)


@given(first=local_parts, second=local_parts)
def test_two_addresses_have_two_keys(first: str, second: str) -> None:
    if first.casefold() != second.casefold():
        assert welcome_key(f"{first}@x.com") != welcome_key(f"{second}@x.com")


def test_an_enrolment_without_its_welcome_differs_in_that_alone() -> None:
    profile = _enrolled_profile(EnrolmentIn(customer_id="c1", email="ada@example.com"), "p1", NOW)
    event = new_event(
        profile_payload(events.CustomerEnrolled, profile),
        source="ingest/p1",
        subject="c1",
        time=NOW,
    )
    plain = without_welcome(event, profile)
    assert (plain.id, plain.source, plain.subject, plain.time) == (
        event.id,
        event.source,
        event.subject,
        event.time,
    )
    assert event.data["welcome"] is True
    assert {k: v for k, v in plain.data.items() if event.data[k] != v} == {"welcome": False}
