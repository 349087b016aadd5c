"""The last ``keep`` records of each container in memory: the rings `run` reloads from the database at start."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from eyes_devine.records import Exchange, bucket_of
from eyes_devine.sinks import NO_LOSSES, Record, SinkCounters

DEFAULT_KEEP = 1000


class RingBuffers:
    """The last ``keep`` exchanges of each bucket, oldest first, for the live views.

    A sink of exchanges that never blocks (flow summaries are ignored).
    One thread adds (the one that owns the pipeline's sinks); any thread may read
    through :meth:`buckets`, :meth:`get` and :meth:`names`, which copy in C under
    the GIL and so hand out consistent snapshots without a lock.
    """

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, not {keep}")
        self.keep = keep
        self._rings: dict[str, deque[Exchange]] = {}
        self._names: dict[str, str] = {}
        self._accepted = 0

    name = "memory"

    def accept(self, record: Record) -> None:
        if type(record) is Exchange:
            self._accepted += 1
            self.add(record)

    def flush(self, timeout: float) -> bool:
        return True

    def close(self, timeout: float) -> None:
        """Nothing to write: the rings are memory."""

    def counters(self) -> SinkCounters:
        return SinkCounters(self._accepted, self._accepted, 0)

    def losses(self) -> Mapping[str, int]:
        return NO_LOSSES

    def add(self, x: Exchange) -> str:
        """Append ``x`` to its bucket (the oldest falls out when full) and return the bucket."""
        bucket = bucket_of(x)
        ring = self._rings.get(bucket)
        if ring is None:
            ring = self._rings[bucket] = deque(maxlen=self.keep)
        ring.append(x)
        attribution = x.attribution
        name = (attribution.container if attribution.container_id
                else attribution.client_container if attribution.client_container_id else None)
        if name and self._names.get(bucket) != name:
            self._names[bucket] = name
        return bucket

    def add_many(self, exchanges: Iterable[Exchange]) -> None:
        """Add in order; used to reload from :meth:`ExchangeStore.recent` at start."""
        for x in exchanges:
            self.add(x)

    def buckets(self) -> dict[str, tuple[Exchange, ...]]:
        """A snapshot of every bucket, oldest exchange first."""
        return {bucket: tuple(ring) for bucket, ring in self._rings.copy().items()}

    def get(self, bucket: str) -> tuple[Exchange, ...]:
        """A snapshot of one bucket, oldest first; empty for a bucket never seen."""
        ring = self._rings.get(bucket)
        return tuple(ring) if ring is not None else ()

    def container_name(self, bucket: str) -> str:
        """The latest container name seen for a bucket's id (the id itself until a name was seen)."""
        return self._names.get(bucket, bucket)

    def names(self) -> dict[str, str]:
        """Bucket → latest container name, for the buckets that have one."""
        return self._names.copy()

    @property
    def total(self) -> int:
        return sum(len(ring) for ring in self._rings.copy().values())
