"""Container descriptions for the exporters: the compose service of a metric label, the resource of a span.

Records carry the containers' names and short ids only (their attribution);
what else the exporters name (compose service and project, image) comes from
the container map, asked once per container and remembered, so a removed
container's late records still find theirs.
"""

from __future__ import annotations

from collections.abc import Callable

from eyes_devine.records import ContainerInfo

Describe = Callable[[str], ContainerInfo | None]
"""A running or recently removed container's description by short id, or None when unknown."""
MAX_REMEMBERED = 100_000


class ContainerDirectory:
    """Descriptions by short id; asked on the engine thread and the exporters' threads (dict reads and writes
    are atomic; a description asked twice at once is only looked up twice)."""

    def __init__(self, describe: Describe | None = None) -> None:
        self.describe = describe
        """Set once the container map exists (it is made after the sinks)."""
        self._known: dict[str, ContainerInfo] = {}

    def get(self, short_id: str | None, name: str | None = None) -> ContainerInfo | None:
        """The container behind ``short_id``; when the map does not know it, a description with only the
        ``name`` the record carries (None without one)."""
        if short_id is None:
            return None
        info = self._known.get(short_id)
        if info is None:
            info = self.describe(short_id) if self.describe is not None else None
            if info is None:  # gone before it was asked for: what the record says is all there is
                if not name:
                    return None
                info = ContainerInfo(short_id, name, "")
            if len(self._known) >= MAX_REMEMBERED:
                self._known.clear()
            self._known[short_id] = info
        return info
