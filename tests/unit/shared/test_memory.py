"""The garbage collector of a service process (issue 24): tuned once, whatever calls again."""

from __future__ import annotations

import gc

from shared.runtime import memory


def test_a_started_service_freezes_what_it_built_and_collects_rarely() -> None:
    memory.tune_garbage_collector()
    assert gc.get_threshold() == (memory.YOUNGEST, memory.MIDDLE, memory.OLDEST)
    frozen = gc.get_freeze_count()
    assert frozen > 0
    # Another app started in the same process (tests do) freezes nothing more.
    later = [object() for _ in range(1000)]
    memory.tune_garbage_collector()
    assert gc.get_freeze_count() == frozen and later
