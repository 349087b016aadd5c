"""llhttp's parsers as a passive observer sets them up, and the modes each direction of a connection moves through."""

from __future__ import annotations

from enum import IntEnum

from httptools import HttpRequestParser, HttpResponseParser


class Mode(IntEnum):
    """FIRST: nothing seen yet; PARSE; RESYNC: skipping to the next message start; HOLD (client only): bytes after
    an Upgrade/CONNECT request, held until the response says; TLS (client only): collecting a ClientHello; OFF."""

    FIRST = 0
    PARSE = 1
    RESYNC = 2
    HOLD = 3
    TLS = 4
    OFF = 5



def new_request_parser(protocol: object) -> HttpRequestParser:
    parser = HttpRequestParser(protocol)
    # A monitor must follow what servers accept, not enforce the RFC: CL+TE is
    # flagged as smuggling instead of stopping the parse.
    parser.set_dangerous_leniencies(lenient_headers=True, lenient_chunked_length=True, lenient_keep_alive=True)
    return parser


def new_response_parser(protocol: object) -> HttpResponseParser:
    parser = HttpResponseParser(protocol)
    parser.set_dangerous_leniencies(lenient_headers=True, lenient_chunked_length=True, lenient_keep_alive=True)
    return parser
