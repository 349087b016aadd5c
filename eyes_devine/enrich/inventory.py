"""The container inventory: the container map's changes kept as tenures, and tenures made into a map again.

Live capture names containers from a map that forgets what ended more than
ten minutes ago (:mod:`~eyes_devine.enrich.attribution`), which is right for
records that complete late but leaves a capture file read next week with no
names.  So `run` also keeps the inventory: :class:`InventoryRecorder` hears
the same changes as the map (through a :class:`Tee`) and emits a
:class:`~eyes_devine.records.ContainerTenure` when a container's description
begins and again when it ends, for the store.  :func:`replay` turns the stored
tenures into a map with unlimited history, changed in the same order as the
live one was, so `read --db` attributes each packet to the containers as they
were at its time, by the same rules as live capture.

Sans-I/O, like the map: the Docker watcher's thread calls the listeners (under
the pipeline's lock) and the recorder only hands records to a sink that never
blocks.  A re-listing that changes nothing emits nothing: a reconnect to the
daemon, or a new `run` that adopted the tenures the last one left open.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable

from eyes_devine.enrich.attribution import ContainerMap
from eyes_devine.records import ContainerInfo, ContainerTenure


class Tee:
    """Every change to each listener in turn: the attribution map, then the inventory."""

    def __init__(self, *listeners: ContainerMap | InventoryRecorder) -> None:
        self._listeners = listeners

    def replace_all(self, infos: Iterable[ContainerInfo], ts: float) -> None:
        infos = list(infos)  # read once, given to each
        for listener in self._listeners:
            listener.replace_all(infos, ts)

    def upsert(self, info: ContainerInfo, ts: float) -> None:
        for listener in self._listeners:
            listener.upsert(info, ts)

    def remove(self, container_id: str, ts: float) -> None:
        for listener in self._listeners:
            listener.remove(container_id, ts)


class InventoryRecorder:
    """Container changes as tenures handed to ``emit``: open when one begins, the same tenure closed when it ends.

    ``adopted``: the tenures the last `run` of this observer left open.  They
    continue when the first listing finds the container unchanged, and end at
    that listing when it does not (the container died, or changed, while no
    `run` watched), so a restart neither duplicates nor loses a tenure.
    """

    def __init__(self, emit: Callable[[ContainerTenure], None], observer: str,
                 adopted: Iterable[ContainerTenure] = ()) -> None:
        self._emit = emit
        self._observer = observer
        self._open: dict[str, ContainerTenure] = {t.info.id: t for t in adopted if t.ended is None}

    def __len__(self) -> int:
        return len(self._open)

    def replace_all(self, infos: Iterable[ContainerInfo], ts: float) -> None:
        infos = list(infos)
        listed = {info.id for info in infos}
        for container_id in [cid for cid in self._open if cid not in listed]:
            self.remove(container_id, ts)
        for info in infos:
            self.upsert(info, ts)

    def upsert(self, info: ContainerInfo, ts: float) -> None:
        current = self._open.get(info.id)
        if current is not None:
            if current.info == info:
                return
            self._close(current, ts)
        tenure = ContainerTenure(info, ts, None, self._observer)
        self._open[info.id] = tenure
        self._emit(tenure)

    def remove(self, container_id: str, ts: float) -> None:
        current = self._open.pop(container_id, None)
        if current is not None:
            self._close(current, ts)

    def _close(self, tenure: ContainerTenure, ts: float) -> None:
        # An event can carry a time before the listing that began the tenure (it happened while the listing ran):
        # the tenure then ends as it began, and never looks as if it ended before it started.
        self._emit(dataclasses.replace(tenure, ended=max(ts, tenure.started)))


_END, _START, _END_OF_INSTANT = 0, 1, 2
"""At one moment: tenures that end hand their addresses over before the next ones start; a tenure that began at
that same moment ends after it began."""


def replay(tenures: Iterable[ContainerTenure], host_addresses: Iterable[str] = ()) -> ContainerMap:
    """A map with unlimited history, changed as the live map was: each tenure begins and ends at its times.

    ``host_addresses``: the capturing host's own addresses, through which a
    published port leads to its container (loopback and the networks' gateways
    count without them).
    """
    containers = ContainerMap(history_seconds=math.inf, host_addresses=host_addresses)
    events: list[tuple[float, int, ContainerTenure]] = []
    for tenure in tenures:
        events.append((tenure.started, _START, tenure))
        if tenure.ended is not None:
            events.append((tenure.ended, _END if tenure.ended > tenure.started else _END_OF_INSTANT, tenure))
    events.sort(key=lambda event: event[:2])
    for ts, kind, tenure in events:
        if kind == _START:
            containers.upsert(tenure.info, ts)
        else:
            containers.remove(tenure.info.id, ts)
    return containers
