"""A small HTTP/1.1 server for test captures: each path exercises one framing rule.

Run inside a test namespace: ``python -m tests.support.http_peer PORT``.  Built on
http.server (keep-alive, pipelining and 100-continue come from the standard
library); the paths below add the framings the engine must get right.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BIG = b"x" * 200_000


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "text/plain", head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._send(200, b"hello\n", head=True)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in (b'{"a":', b'1,"b":', b"2}"):
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\nX-Trailer: done\r\n\r\n")
        elif path == "/close":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"body delimited by close\n")
            self.close_connection = True
        elif path == "/nocontent":
            self.send_response(204)
            self.end_headers()
        elif path == "/notmodified":
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.end_headers()
        elif path == "/early":
            self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
            self.wfile.flush()
            self._send(200, b"after hints\n", "text/html")
        elif path == "/big":
            self._send(200, BIG, "application/octet-stream")
        elif path == "/missing":
            self._send(404, b"not found\n")
        else:
            self._send(200, b"hello\n")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self._send(201, b"stored %d\n" % len(body))


def main() -> None:
    port = int(sys.argv[1])
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
