"""Where the broker is and who we are to it: the connection options every Kafka client of ours
takes (bootstrap servers, security protocol, SASL mechanism, principal and password)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256"]
SECURITY_PROTOCOLS: tuple[SecurityProtocol, ...] = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: tuple[SaslMechanism, ...] = ("SCRAM-SHA-512", "SCRAM-SHA-256")


class KafkaCredentialsMissing(ValueError):
    pass


@dataclass(frozen=True)
class KafkaConnection:
    """Where the broker is and who we are to it: the one place every Kafka client of ours
    (services, the fedelta command, tests, bench, chaos) takes its connection options from.

    PLAINTEXT carries no principal (a stack started before the broker required SASL); a SASL
    protocol needs a username and a password and fails fast without them. Production adds TLS
    (SASL_SSL, the system's trust store); the local stack's loopback broker is SASL_PLAINTEXT.
    """

    bootstrap_servers: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ValueError(f"kafka security protocol {self.security_protocol!r} is unknown")
        if self.sasl_mechanism not in SASL_MECHANISMS:
            raise ValueError(f"kafka SASL mechanism {self.sasl_mechanism!r} is unknown")
        if self.sasl and not (self.username and self.password):
            raise KafkaCredentialsMissing(
                f"kafka security protocol {self.security_protocol} needs a username and a password"
            )

    @property
    def sasl(self) -> bool:
        return self.security_protocol != "PLAINTEXT"

    def options(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.sasl:
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        if self.security_protocol == "SASL_SSL":
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context()
        return options

    def as_user(self, username: str, password: str) -> KafkaConnection:
        """The same broker as another principal (SASL_PLAINTEXT unless already SASL)."""
        protocol: SecurityProtocol = self.security_protocol if self.sasl else "SASL_PLAINTEXT"
        return KafkaConnection(
            self.bootstrap_servers, protocol, self.sasl_mechanism, username, password
        )

    def env(self, prefix: str = "KAFKA_") -> dict[str, str]:
        """The variables `from_env` reads this connection back from."""
        env = {
            f"{prefix}BOOTSTRAP_SERVERS": self.bootstrap_servers,
            f"{prefix}SECURITY_PROTOCOL": self.security_protocol,
        }
        if self.sasl:
            env[f"{prefix}SASL_MECHANISM"] = self.sasl_mechanism
            env[f"{prefix}USERNAME"] = self.username or ""
            env[f"{prefix}PASSWORD"] = self.password or ""
        return env

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, prefix: str = "KAFKA_"
    ) -> KafkaConnection:
        """From <prefix>BOOTSTRAP_SERVERS, <prefix>SECURITY_PROTOCOL, <prefix>SASL_MECHANISM,
        <prefix>USERNAME and <prefix>PASSWORD (dev.env carries them for the admin principal).
        Without a protocol: SASL_PLAINTEXT when a username is given, PLAINTEXT otherwise."""
        env = os.environ if environ is None else environ
        username = env.get(f"{prefix}USERNAME") or None
        protocol = env.get(f"{prefix}SECURITY_PROTOCOL") or (
            "SASL_PLAINTEXT" if username else "PLAINTEXT"
        )
        return cls(
            bootstrap_servers=env[f"{prefix}BOOTSTRAP_SERVERS"],
            security_protocol=protocol,  # type: ignore[arg-type]  # checked in __post_init__
            sasl_mechanism=env.get(f"{prefix}SASL_MECHANISM") or "SCRAM-SHA-512",  # type: ignore[arg-type]
            username=username,
            password=env.get(f"{prefix}PASSWORD") or None,
        )


def connection_of(target: str | KafkaConnection) -> KafkaConnection:
    """A bare bootstrap string is a PLAINTEXT connection (no principal)."""
    return target if isinstance(target, KafkaConnection) else KafkaConnection(target)


def client_options(target: str | KafkaConnection) -> dict[str, Any]:
    return connection_of(target).options()
