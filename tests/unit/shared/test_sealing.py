"""Secrets at rest (`shared.sealing`): AES-256-GCM with the row as associated data, a
versioned format naming the key, rotation through previous keys, and settings that refuse a
malformed key at start."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.ingest.settings import IngestSettings
from services.notifications.settings import NotificationsSettings
from shared.sealing import (
    Keyring,
    SealingError,
    SealingKey,
    is_sealed,
    keyring_from_environment,
    seal,
    unseal,
)

KEY = SealingKey.from_bytes(b"k" * 32)
OTHER = SealingKey.from_bytes(b"o" * 32)
texts = st.text(max_size=300)
contexts = st.text(min_size=1, max_size=80)


@given(plaintext=texts, context=contexts)
def test_what_is_sealed_opens_with_its_key_and_context(plaintext: str, context: str) -> None:
    sealed = seal(plaintext, KEY, context)
    assert is_sealed(sealed)
    version, key_id, _, _ = sealed.split(":")
    assert (version, key_id) == ("v1", KEY.key_id)
    assert unseal(sealed, [KEY], context) == plaintext
    if len(plaintext) >= 8:
        assert plaintext not in sealed


@given(plaintext=texts, context=contexts, other=contexts)
def test_another_rows_context_does_not_open_it(plaintext: str, context: str, other: str) -> None:
    sealed = seal(plaintext, KEY, context)
    if other != context:
        with pytest.raises(SealingError):
            unseal(sealed, [KEY], other)


@given(plaintext=texts, position=st.integers(min_value=0), bit=st.integers(0, 5))
def test_a_tampered_value_does_not_open(plaintext: str, position: int, bit: int) -> None:
    sealed = seal(plaintext, KEY, "partners/p1")
    head, ciphertext = sealed.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(ciphertext + "=" * (-len(ciphertext) % 4)))
    raw[position % len(raw)] ^= 1 << bit
    tampered = f"{head}:{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"
    with pytest.raises(SealingError):
        unseal(tampered, [KEY], "partners/p1")


def test_the_same_secret_seals_differently_each_time() -> None:
    assert seal("s", KEY, "c") != seal("s", KEY, "c")


@pytest.mark.parametrize(
    "value", ["plain-secret", "v2:abc:def:ghi", "v1:nokey:AAAA:AAAA", "v1:a:b", ""]
)
def test_what_is_not_a_value_sealed_here_is_refused(value: str) -> None:
    with pytest.raises(SealingError):
        unseal(value, [KEY], "c")


def test_a_key_not_configured_is_named_and_the_secret_is_not() -> None:
    sealed = seal("top-secret-value", OTHER, "c")
    with pytest.raises(SealingError) as refused:
        unseal(sealed, [KEY], "c")
    assert OTHER.key_id in str(refused.value) and "top-secret" not in str(refused.value)


@given(plaintext=texts, context=contexts)
def test_a_rotation_reads_old_values_and_seals_new_ones_with_the_new_key(
    plaintext: str, context: str
) -> None:
    before = Keyring(OTHER)
    old = before.seal(plaintext, context)
    during = Keyring(KEY, (OTHER,))
    assert during.unseal(old, context) == plaintext
    assert during.needs_resealing(old)
    new = during.seal(plaintext, context)
    assert not during.needs_resealing(new)
    assert Keyring(KEY).unseal(new, context) == plaintext
    with pytest.raises(SealingError):
        Keyring(KEY).unseal(old, context)  # once the old key is dropped


def test_keys_parse_from_base64_of_32_bytes_in_either_alphabet() -> None:
    material = bytes(range(224, 256))  # '+' and '/' in standard base64
    standard = base64.b64encode(material).decode()
    urlsafe = base64.urlsafe_b64encode(material).decode().rstrip("=")
    assert (
        SealingKey.parse(standard)
        == SealingKey.parse(urlsafe)
        == SealingKey(SealingKey.from_bytes(material).key_id, material)
    )
    assert SealingKey.parse(SealingKey.parse(standard).encoded()).material == material
    assert SealingKey.generate() != SealingKey.generate()


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "short",
        base64.b64encode(b"x" * 31).decode(),
        base64.b64encode(b"x" * 33).decode(),
        "*" * 44,
    ],
)
def test_a_malformed_key_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        SealingKey.parse(bad)


def test_the_key_never_shows_in_a_repr() -> None:
    assert "kkkk" not in repr(KEY) and "kkkk" not in repr(Keyring(KEY))


REQUIRED = {
    "database_url": "postgresql+asyncpg://u:p@127.0.0.1:5432/x",
    "kafka_bootstrap_servers": "127.0.0.1:9092",
    "admin_token_sha256": "a" * 64,
}


@pytest.mark.parametrize("settings_class", [IngestSettings, NotificationsSettings])
def test_settings_refuse_a_malformed_key_at_start(settings_class: type[IngestSettings]) -> None:
    good = KEY.encoded()
    settings = settings_class(**REQUIRED, secrets_key=good, secrets_key_previous=OTHER.encoded())  # type: ignore[arg-type]
    keyring = settings.keyring()
    assert keyring is not None
    assert keyring.current == KEY and keyring.previous == (OTHER,)
    assert settings_class(**REQUIRED).keyring() is None  # type: ignore[arg-type]
    for bad in ({"secrets_key": "nope"}, {"secrets_key": good, "secrets_key_previous": "x,y"}):
        with pytest.raises(ValidationError, match="secrets_key"):
            settings_class(**REQUIRED, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="secrets_key"):
        settings_class(**REQUIRED, secrets_key_previous=good)  # type: ignore[arg-type]
    assert good not in repr(settings)


def test_a_migration_reads_the_same_keys_from_its_environment() -> None:
    env = {
        "FEDELTA_INGEST_SECRETS_KEY": KEY.encoded(),
        "FEDELTA_INGEST_SECRETS_KEY_PREVIOUS": f"{OTHER.encoded()}, ",
    }
    assert keyring_from_environment(env, "FEDELTA_INGEST_") == Keyring(KEY, (OTHER,))
    assert keyring_from_environment({}, "FEDELTA_INGEST_") is None
