"""A small HTTP load generator for tests: many short requests from a few threads, no external tools."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable


def get(host: str, port: int, target: str, timeout: float = 5.0) -> int:
    """One request on its own connection; returns the status."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def hammer(host: str, port: int, targets: list[str], threads: int = 4,
           stop: Callable[[], bool] = lambda: False) -> int:
    """Request every target once, spread over ``threads``; returns how many got a response."""
    done = [0] * threads

    def worker(index: int) -> None:
        for target in targets[index::threads]:
            if stop():
                return
            try:
                get(host, port, target)
            except OSError:
                continue
            done[index] += 1

    workers = [threading.Thread(target=worker, args=(index,)) for index in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return sum(done)
