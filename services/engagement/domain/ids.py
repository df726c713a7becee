"""Ids derived from what they name: the same inputs give the same id on every redelivery and
replay, distinct inputs give distinct ids. Pure Python: no framework, no I/O."""

from __future__ import annotations

import hashlib
import json

PREFIX = "g-"
HEX_DIGITS = 32  # 128 bits of sha256: an accidental collision is out of reach


def derived_id(kind: str, *parts: str) -> str:
    """`g-` and 32 hex digits of the sha256 of `kind` and `parts`, encoded without ambiguity
    (as a JSON list, so no part can be mistaken for two): at most 64 characters of
    [A-Za-z0-9._:-], fit for a Kafka key, a URL path and `bounds.Identifier`."""
    encoded = json.dumps([kind, *parts], ensure_ascii=True, separators=(",", ":"))
    return PREFIX + hashlib.sha256(encoded.encode("ascii")).hexdigest()[:HEX_DIGITS]
