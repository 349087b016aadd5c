"""Send several requests in one write and read until every response is in (raw sockets, no client library).

``python -m tests.support.pipelined_client HOST PORT PATH [PATH ...]``
"""

from __future__ import annotations

import socket
import sys


def main() -> None:
    host, port, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    # The last request asks the server to close, so reading to EOF collects every response.
    request = b"".join(
        b"GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: pipeliner/1\r\n%s\r\n"
        % (path.encode(), host.encode(), b"Connection: close\r\n" if index == len(paths) - 1 else b"")
        for index, path in enumerate(paths)
    )
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(request)
        received = b""
        while data := conn.recv(65536):
            received += data
    sys.stdout.write(f"{received.count(b'HTTP/1.1 ')} responses\n")


if __name__ == "__main__":
    main()
