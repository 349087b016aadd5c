"""A small ASGI application for hypercorn, the tests' h2c server: it answers the HTTP/1.1 `Upgrade: h2c`
handshake (nginx and nghttpd do not) and logs each request with the protocol it was answered in."""

from __future__ import annotations


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    status = 404 if scope["path"] == "/missing" else 200
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"%d bytes for %s\n" % (len(body), scope["path"].encode())})
