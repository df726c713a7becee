"""The outbox relay's wake-up logic on fakes: no notification is lost, listening comes first.

The batches themselves (SQL, Kafka) are the integration tests' business: here a scripted
`publish_pending` stands in for them, so each test says what happens during a batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from shared.messaging.relay import OutboxRelay
from shared.storage.db import define_outbox
from tests.support.fakes.messaging import FakeWakeSource

# Long enough that a test finishing in time proves the relay was woken, not polled.
NEVER = 3600.0
DEADLINE = 5.0


class ScriptedRelay(OutboxRelay):
    """Each call of `publish_pending` runs the next step of the script (what happens while
    that batch is published) and returns how many rows it "published"; past the script,
    the relay is stopped."""

    script: list[Callable[[], int]]
    log: list[str]
    polled: asyncio.Event

    async def publish_pending(self) -> int:
        self.log.append("poll")
        self.polled.set()
        if not self.script:
            await self.stop()
            return 0
        return self.script.pop(0)()


def relay(log: list[str], wake_source: FakeWakeSource | None = None) -> ScriptedRelay:
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    scripted = ScriptedRelay(
        engine,
        define_outbox(sa.MetaData()),
        producer=None,  # type: ignore[arg-type]  # publish_pending is scripted
        poll_interval=NEVER,
        batch_size=100,
        wake_source=wake_source,
    )
    scripted.log = log
    scripted.script = []
    scripted.polled = asyncio.Event()
    return scripted


async def test_a_notification_while_a_batch_is_published_is_not_lost() -> None:
    log: list[str] = []
    wakes = FakeWakeSource(log)
    subject = relay(log, wakes)

    def notified_mid_batch() -> int:
        wakes.on_wake()  # a commit lands while this batch is on its way to Kafka
        return 3

    subject.script = [notified_mid_batch]

    await asyncio.wait_for(subject.run(), timeout=DEADLINE)

    assert log == ["listen", "poll", "poll"]


async def test_the_in_process_notify_wakes_the_relay() -> None:
    log: list[str] = []
    subject = relay(log)

    def notified_by_this_process() -> int:
        subject.notify()
        return 1

    subject.script = [notified_by_this_process]

    await asyncio.wait_for(subject.run(), timeout=DEADLINE)

    assert log == ["poll", "poll"]


async def test_it_listens_before_its_first_poll_and_closes_the_listener_at_the_end() -> None:
    log: list[str] = []
    wakes = FakeWakeSource(log)
    subject = relay(log, wakes)

    await asyncio.wait_for(subject.run(), timeout=DEADLINE)

    assert log[:2] == ["listen", "poll"]
    assert wakes.closed


async def test_a_lost_listener_is_replaced_and_followed_by_a_full_poll() -> None:
    log: list[str] = []
    wakes = FakeWakeSource(log)
    subject = relay(log, wakes)

    def connection_lost() -> int:
        wakes.lose_connection()
        return 0

    subject.script = [connection_lost]

    await asyncio.wait_for(subject.run(), timeout=DEADLINE)

    # Listening again before the poll: what was committed while nobody listened is found by
    # that poll, what is committed after it is notified.
    assert log == ["listen", "poll", "listen", "poll"]


async def test_a_listener_found_dead_without_a_callback_is_replaced_too() -> None:
    log: list[str] = []
    wakes = FakeWakeSource(log)
    subject = relay(log, wakes)

    def died_silently_then_woken() -> int:
        wakes.listening = False
        subject.notify()
        return 0

    subject.script = [died_silently_then_woken]

    await asyncio.wait_for(subject.run(), timeout=DEADLINE)

    assert log == ["listen", "poll", "listen", "poll"]


async def test_a_full_batch_is_followed_at_once_by_the_next() -> None:
    log: list[str] = []
    subject = relay(log)
    subject.script = [lambda: subject.batch_size, lambda: subject.batch_size]

    await asyncio.wait_for(subject.run(), timeout=DEADLINE)

    assert log == ["poll", "poll", "poll"]


async def test_a_partial_batch_waits_for_a_wake_up() -> None:
    log: list[str] = []
    subject = relay(log)
    subject.script = [lambda: 1]

    running = asyncio.create_task(subject.run())
    try:
        await asyncio.wait_for(subject.polled.wait(), timeout=DEADLINE)
        # Let it run on: without a wake-up it sleeps for NEVER seconds after the first poll.
        for _ in range(100):
            await asyncio.sleep(0)
        assert log == ["poll"]
        subject.notify()
        await asyncio.wait_for(running, timeout=DEADLINE)
    finally:
        running.cancel()
    assert log == ["poll", "poll"]


async def test_stop_ends_a_relay_waiting_for_work() -> None:
    log: list[str] = []
    subject = relay(log)
    subject.script = [lambda: 0, lambda: 0]

    running = asyncio.create_task(subject.run())
    await asyncio.wait_for(subject.polled.wait(), timeout=DEADLINE)
    await subject.stop()

    await asyncio.wait_for(running, timeout=DEADLINE)
    assert log == ["poll"]


async def test_a_relay_that_cannot_listen_still_polls_and_listens_later() -> None:
    log: list[str] = []
    wakes = FakeWakeSource(log, failures=1)
    subject = relay(log, wakes)
    subject.poll_interval = 0.01  # the fallback poll is all that wakes it here

    subject.script = [lambda: 0, lambda: 0, lambda: 0]

    await asyncio.wait_for(subject.run(), timeout=DEADLINE)

    assert log[:2] == ["listen failed", "poll"]
    assert "listen" in log
    assert log[-1] == "poll"


async def test_a_relay_that_found_the_lock_held_elsewhere_only_polls() -> None:
    log: list[str] = []
    subject = relay(log)

    def held_by_another_instance() -> int:
        subject._held_elsewhere = True  # what publish_pending notes when the lock is taken
        subject.notify()  # a commit of this process: the holder publishes it
        return 0

    subject.script = [held_by_another_instance]

    running = asyncio.create_task(subject.run())
    try:
        await asyncio.wait_for(subject.polled.wait(), timeout=DEADLINE)
        for _ in range(100):
            await asyncio.sleep(0)
        assert log == ["poll"]  # not woken: it waits for its poll (NEVER seconds here)
        await subject.stop()
        await asyncio.wait_for(running, timeout=DEADLINE)
    finally:
        running.cancel()
    assert log == ["poll"]


async def test_a_relay_polls_again_after_the_interval_when_the_lock_was_held_elsewhere() -> None:
    log: list[str] = []
    subject = relay(log)
    subject.poll_interval = 0.01

    def held_by_another_instance() -> int:
        subject._held_elsewhere = True
        return 0

    subject.script = [held_by_another_instance, held_by_another_instance]

    await asyncio.wait_for(subject.run(), timeout=DEADLINE)

    assert log == ["poll", "poll", "poll"]  # the last one found the script done and stopped
