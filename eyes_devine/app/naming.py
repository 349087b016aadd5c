"""Where `read` gets container names: a `run`'s inventory (``--db``), else the containers running now, else none.

A capture file is read after the fact, when the containers in it may be gone
and their addresses handed to others.  The inventory a `run` keeps
(:mod:`~eyes_devine.enrich.inventory`) says who held each address and
published port at each moment, so with ``--db`` every exchange and flow is
named as of its own time.  Without it, the Docker Engine can only say who
holds the addresses now: right for a capture just taken on this host, wrong
for an old one or another host's, so `read` says on stderr that it names them
so, and ``--no-docker`` leaves them out.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

from eyes_devine.adapters.store.opener import display, open_database
from eyes_devine.enrich.attribution import ContainerMap
from eyes_devine.enrich.inventory import replay

LINUX_SOCKET = "/var/run/docker.sock"
"""Where a Linux Docker Engine listens unless DOCKER_HOST says otherwise: without it nothing can answer, and
`read` spares itself the Docker SDK's import (a tenth of a second)."""


class NamingError(Exception):
    """The inventory asked for cannot be used; the message is one line and says what to do."""


@dataclass(frozen=True)
class Names:
    containers: ContainerMap | None
    """Who held each address when; None: exchanges are not attributed."""
    note: str | None = None
    """A line for stderr when the names may not be those of the capture's time."""


def from_database(target: str, observer: str | None) -> Names:
    """The inventory in ``target`` of ``observer``, which may be left out when only one observer's is there.
    Raises StoreError (no such database, a damaged one, one too old) or NamingError."""
    return Names(asyncio.run(_replayed(target, observer)))


async def _replayed(target: str, observer: str | None) -> ContainerMap:
    store = await open_database(target, 1, readonly=True)
    try:
        observers = await store.inventory_observers()
        where = display(target)
        if not observers:
            raise NamingError(f"{where} holds no container inventory yet: `eyes-devine run` (or a capturing "
                              "`watch`) records it while Docker answers")
        if observer is None:
            if len(observers) > 1:
                raise NamingError(f"{where} holds the container inventories of {len(observers)} observers "
                                  f"({', '.join(observers)}); choose the host that captured the file with --observer")
            [observer] = observers
        elif observer not in observers:
            raise NamingError(f"{where} holds no container inventory of observer {observer!r}; it holds those "
                              f"of {', '.join(observers)}")
        return replay(await store.inventory(observer))
    finally:
        await store.close()


def from_docker(environment: Mapping[str, str]) -> Names:
    """The containers running now, when a Docker Engine answers (with a note saying so); else no names."""
    if not environment.get("DOCKER_HOST") and sys.platform == "linux" and not os.path.exists(LINUX_SOCKET):
        return Names(None)
    from eyes_devine.adapters.docker import current_containers
    from eyes_devine.adapters.host import read_host_interfaces

    running, status = current_containers(environment)
    if running is None:
        return Names(None)
    containers = ContainerMap(host_addresses=(a for interface in read_host_interfaces() for a in interface.addresses))
    containers.replace_all(running, time.time())  # the first owner of an address holds it from any time before
    return Names(containers, f"naming containers as they are now ({len(running)} running on the Docker Engine at "
                             f"{status.host}), not as they were when the file was captured: --db DB names them as a "
                             "`run` recorded them, --no-docker leaves them out")
