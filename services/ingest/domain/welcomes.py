"""One welcome per email address (issue 19): an enrolment whose email, normalised, was
welcomed before (another member's, erased since or not) is enrolled without the welcome
(`welcome: false` on its `customer.enrolled`: points grants no bonus, notifications sends no
welcome message). Per email address, not per human: one person with two addresses gets two
welcomes; an enrolment without an email is welcomed. Pure Python: no I/O.

Ingest keeps only a SHA-256 of the normalised address, with no link to the member: enough to
tell that an address was welcomed, nothing to say by whom."""

from __future__ import annotations

import hashlib

_DOMAIN = b"fedelta/welcome-email/v1\x00"


def normalised_email(email: str) -> str:
    """What makes two spellings of an address one: surrounding spaces and case."""
    return email.strip().casefold()


def welcome_key(email: str) -> str:
    """The hex SHA-256 of the normalised address, under a prefix of its own (the same address
    hashed for another purpose gives another value)."""
    return hashlib.sha256(_DOMAIN + normalised_email(email).encode()).hexdigest()
