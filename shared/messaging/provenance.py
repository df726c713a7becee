"""Where an event may come from: a consumer refuses an event whose `source` is not the producer
that owns its topic and type (the one principal allowed to write it, shared.messaging.acls).

The broker's ACLs already keep other principals off a topic; this is the second line: an event
written by a principal that may write the topic but does not produce this type, or one copied
from elsewhere, names a source that is not the owner's. Ingest names itself per partner
(`urn:fedelta:ingest:partner:<id>`), the other services by name (`urn:fedelta:points`).

The consumer dead-letters a refused event with the reason as its error class (`fedelta-error`)
and counts it (fedelta_events_refused_total); it changes nothing. The partner an event names is
checked next, against the partners ingest announced (shared.messaging.partners; SECURITY.md,
*Which partners exist*).
"""

from __future__ import annotations

import functools

from shared.messaging import acls
from shared.messaging.events import CloudEvent, kind_of, source_uri


class UnknownSource(ValueError):
    """The event's source is not the producer that owns its topic or its type."""


def owns(service: str, source: str) -> bool:
    """Whether `source` names `service` (itself, or one of its sub-sources such as ingest's
    per-partner ones)."""
    own = source_uri(service)
    return source == own or source.startswith(own + ":")


def owners(event: CloudEvent, topic: str) -> set[str]:
    """The producers the event must come from: the owner of the topic it was read from and
    the owner of its type's topic (a topic nobody or several write has no owner)."""
    found = {acls.owner(topic), acls.owner(kind_of(event.type).topic)}
    return {owner for owner in found if owner is not None}


def refusal(event: CloudEvent, topic: str) -> UnknownSource | None:
    """None when the event may be applied; the reason otherwise."""
    for owner, own in _owner_sources(event.type, topic):
        if not (event.source == own or event.source.startswith(own + ":")):
            return UnknownSource(f"{event.type} on {topic} must come from {source_uri(owner)}")
    return None


@functools.cache
def _owner_sources(event_type: str, topic: str) -> tuple[tuple[str, str], ...]:
    """`owners` with their source URIs, worked out once per type and topic: a consumer asks
    for every event it reads (an unknown type raises, and nothing is kept for it)."""
    found = {acls.owner(topic), acls.owner(kind_of(event_type).topic)}
    return tuple((owner, source_uri(owner)) for owner in sorted(o for o in found if o))
