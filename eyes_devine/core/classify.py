"""What a flow carries, from the first payload of each direction: DNS, TLS, SSH, FTP or HTTP.

Signature first: a DNS header with a well-formed question (on any UDP port), a
TLS ClientHello or ServerHello, an SSH banner, an FTP greeting or command, an
HTTP request or status line.  A shape ordinary traffic of another protocol does
not have, so a busy host's flows are named without false friends.
"""

from __future__ import annotations

import re

from eyes_devine.core.tls import looks_like_tls

_HTTP_METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ", b"OPTIONS ", b"PATCH ", b"CONNECT ", b"TRACE ",
                 b"PRI * HTTP/2")
_FTP_COMMANDS = (b"USER ", b"AUTH ", b"FEAT", b"SYST", b"OPTS ")
_DNS_OPCODES = frozenset((0, 1, 2, 4, 5))
_DNS_CLASSES = frozenset((1, 3, 4, 254, 255))
_LABEL = re.compile(rb"[\x21-\x7e]+")
_PRINTABLE = re.compile(rb"[\x20-\x7e]*")
_DETAIL_MAX = 80


def tcp_signature(payload: bytes, from_client: bool, server_port: int) -> tuple[str | None, str | None]:
    if payload.startswith(b"SSH-"):
        return "ssh", _first_line(payload)
    if from_client:
        if looks_like_tls(payload):
            return "tls", None
        if payload.startswith(_HTTP_METHODS):
            return "http", None
        if server_port == 21 and payload.startswith(_FTP_COMMANDS):
            return "ftp", None
        return None, None
    if payload.startswith((b"220 ", b"220-")) and (server_port == 21 or b"ftp" in payload[:200].lower()):
        return "ftp", _first_line(payload)
    if payload.startswith(b"HTTP/1."):
        return "http", None
    if len(payload) >= 6 and payload[0] == 0x16 and payload[1] == 0x03 and payload[5] == 0x02:  # ServerHello
        return "tls", None
    return None, None


def _first_line(payload: bytes) -> str | None:
    line = payload[:_DETAIL_MAX].split(b"\r", 1)[0].split(b"\n", 1)[0]
    match = _PRINTABLE.match(line)
    text = match.group().decode("ascii").strip() if match else ""
    return text or None


def dns_question(payload: bytes, server_port: int) -> str | None:
    """The first question's name ("" for the root) when ``payload`` is a sane DNS message, else None.

    Sane: a known opcode, plausible counts, and a question of printable labels
    with a known class, ending inside the payload.  A message without a
    question (some mDNS answers) only counts on a DNS port.
    """
    if len(payload) < 12:
        return None
    if (payload[2] >> 3) & 0x0F not in _DNS_OPCODES:
        return None
    questions = payload[4] << 8 | payload[5]
    answers = (payload[6] << 8 | payload[7], payload[8] << 8 | payload[9], payload[10] << 8 | payload[11])
    if questions > 8 or max(answers) > 256:
        return None
    if questions == 0:
        return "" if server_port in (53, 5353) and sum(answers) else None
    labels: list[bytes] = []
    pos = 12
    while True:
        if pos >= len(payload):
            return None
        size = payload[pos]
        if size == 0:
            pos += 1
            break
        if size & 0xC0 == 0xC0:  # a compression pointer ends the name
            pos += 2
            break
        if size > 63 or pos + 1 + size > len(payload):
            return None
        label = payload[pos + 1 : pos + 1 + size]
        if not _LABEL.fullmatch(label):
            return None
        labels.append(label)
        pos += 1 + size
    if pos + 4 > len(payload) or ((payload[pos + 2] << 8 | payload[pos + 3]) & 0x7FFF) not in _DNS_CLASSES:
        return None
    return b".".join(labels).decode("ascii")[:_DETAIL_MAX]
