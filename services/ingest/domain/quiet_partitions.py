"""The keys of the periodic write that rolls a quiet partition's segment (issue 19: erasure
with a deadline on every partition).

The broker's cleaner compacts only rolled segments, and a segment rolls on the first write
after `segment.ms`: a partition of the customers topic (or of its dead-letter topic) that
gets nothing after an erasure would keep the erased profile for as long as it stays quiet.
Ingest therefore appends, every interval, a tombstone of a reserved key to each partition
(`adapters/quiet_partitions.py`). A reserved key is never a customer id (ids match
`shared.bounds.IDENTIFIER_PATTERN`, which no key starting with `~` does), and a tombstone
carries no event: every consumer skips it as it skips an erasure's. Each new tombstone of a
key supersedes the one before, so compaction keeps one per partition.
"""

from __future__ import annotations

from functools import cache

# Not an identifier: a customer id starts with a letter or a digit.
RESERVED_KEY_PREFIX = "~fedelta-segment-roll"


_MASK = 0xFFFFFFFF
_M = 0x5BD1E995


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of a key (Java's `Utils.murmur2`, unsigned here)."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = data[whole:]
    if rest:
        h ^= int.from_bytes(rest, "little")
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner puts `key` on, as every producer of ours
    (aiokafka's DefaultPartitioner) and Java's do."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@cache
def reserved_keys(partitions: int) -> tuple[bytes, ...]:
    """One reserved key per partition of a topic with `partitions` partitions: the n-th lands
    on partition n."""
    if partitions < 1:
        raise ValueError("a topic has at least one partition")
    found: dict[int, bytes] = {}
    candidate = 0
    while len(found) < partitions:
        key = f"{RESERVED_KEY_PREFIX}-{candidate}".encode()
        found.setdefault(partition_of(key, partitions), key)
        candidate += 1
    return tuple(found[partition] for partition in range(partitions))


def is_reserved(key: bytes | None) -> bool:
    return key is not None and key.startswith(RESERVED_KEY_PREFIX.encode())
