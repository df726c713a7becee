"""Kafka clients that survive a broker that is down at start-up or goes away for a while."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer

log = logging.getLogger(__name__)


class ResilientProducer:
    """An idempotent, acks=all producer, created on first use and re-created after a failure.

    A service must start, answer HTTP and keep its outbox while Kafka is unreachable, so the
    client is not started in the lifespan; a failed send drops it and the caller retries.
    """

    def __init__(self, bootstrap_servers: str, client_id: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap_servers,
                    client_id=self._client_id,
                    enable_idempotence=True,
                    acks="all",
                    request_timeout_ms=15_000,
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        producer = await self._started()
        try:
            return await producer.send_and_wait(topic, value=value, key=key, headers=headers)
        except Exception:
            await self.close()
            raise

    async def send_batch(self, records: list[tuple[str, bytes, bytes]]) -> None:
        """Sends (topic, value, key) records in order and waits until the broker has them all.

        Pipelined rather than one round trip each; the idempotent producer keeps their order."""
        producer = await self._started()
        try:
            deliveries = [
                await producer.send(topic, value=value, key=key) for topic, value, key in records
            ]
            await asyncio.gather(*deliveries)
        except Exception:
            await self.close()
            raise

    async def close(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except Exception:  # a broken client is being thrown away anyway
                log.debug("producer stop failed", exc_info=True)
