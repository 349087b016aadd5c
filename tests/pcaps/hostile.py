"""Write the crafted captures again: ``.venv/bin/python -m tests.pcaps.hostile``.

Traffic no polite client sends, built packet by packet so each capture holds
exactly one trick, with fixed addresses and times (the files are committed and
the tests compare against them):

* ``overlap-decoy.pcap``: an out-of-order segment carries a decoy request
  (``GET /innocent/…``), then the in-order segment covers the same bytes with
  the real one (``GET /.env?…``).  Linux hands the application the in-order
  copy; busybox served it, 200 with the file (the server's answer here is the
  one a live busybox gave).
* ``odd-bytes.pcap``: one keep-alive connection whose requests carry bytes
  llhttp refuses (non-ASCII, ESC, tab, DEL, a C1 byte, bidi marks), each
  answered, then ``GET /.env`` with sqlmap's User-Agent.
"""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.utils import wrpcap

HERE = Path(__file__).resolve().parent
CLIENT, SERVER = "172.17.0.1", "172.17.0.2"
CLIENT_PORT, SERVER_PORT = 40404, 80
CLIENT_ISN, SERVER_ISN = 1_000_000, 5_000_000

DECOY = b"GET /innocent/aaaaaa HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n"
REAL = b"GET /.env?x=1&y=2222 HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n"
ENV_RESPONSE = (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-type: application/octet-stream\r\n"
                b"Content-Length: 16\r\n\r\nSECRET_ENV_FILE\n")

ODD_TARGETS = (
    b"/search?q=caf\xc3\xa9",
    b"/raw?\xff\xfe",
    b"/esc?\x1b[2J\x1b]0;pwned\x07",
    b"/tab?a=1\tb=2",
    b"/del?\x7f",
    b"/c1?\x85\x9b",
    b"/bidi?name=\xe2\x80\xaetxt.exe",
)
SQLMAP = b"sqlmap/1.7.2#stable (https://sqlmap.org)"


class Conversation:
    """One TCP connection's packets, with sequence numbers kept and times one millisecond apart."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.time = start
        self.client_seq = CLIENT_ISN
        self.server_seq = SERVER_ISN
        self.packets: list[Packet] = []

    def _packet(self, from_client: bool, flags: str, seq: int, payload: bytes = b"") -> None:
        src, dst, sport, dport = ((CLIENT, SERVER, CLIENT_PORT, SERVER_PORT) if from_client
                                  else (SERVER, CLIENT, SERVER_PORT, CLIENT_PORT))
        ack = self.server_seq if from_client else self.client_seq
        if flags == "S":
            ack = 0
        packet = (Ether(src="02:42:ac:11:00:01", dst="02:42:ac:11:00:02") / IP(src=src, dst=dst)
                  / TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=64240) / payload)
        packet.time = self.time
        self.time += 0.001
        self.packets.append(packet)

    def handshake(self) -> None:
        self._packet(True, "S", self.client_seq)
        self.client_seq += 1
        self._packet(False, "SA", self.server_seq)
        self.server_seq += 1
        self._packet(True, "A", self.client_seq)

    def send(self, from_client: bool, payload: bytes, offset: int = 0, advance: bool = True) -> None:
        """Bytes at ``offset`` past the next sequence number; ``advance`` moves that number past them."""
        seq = (self.client_seq if from_client else self.server_seq) + offset
        self._packet(from_client, "PA", seq, payload)
        if advance:
            if from_client:
                self.client_seq = seq + len(payload)
            else:
                self.server_seq = seq + len(payload)

    def close(self) -> None:
        self._packet(False, "FA", self.server_seq)
        self.server_seq += 1
        self._packet(True, "FA", self.client_seq)
        self.client_seq += 1
        self._packet(False, "A", self.server_seq)


def overlap_decoy() -> list[Packet]:
    assert len(DECOY) == len(REAL)
    conversation = Conversation()
    conversation.handshake()
    conversation.send(True, DECOY[1:], offset=1, advance=False)  # out of order: the first byte is "missing"
    conversation.send(True, REAL)  # in order, covering the decoy with other bytes
    conversation.send(False, ENV_RESPONSE)
    conversation.close()
    return conversation.packets


def odd_bytes() -> list[Packet]:
    conversation = Conversation()
    conversation.handshake()
    for target in ODD_TARGETS:
        conversation.send(True, b"GET " + target + b" HTTP/1.1\r\nHost: web\r\nUser-Agent: curl/7.88.1\r\n\r\n")
        conversation.send(False, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    conversation.send(True, b"GET /.env HTTP/1.1\r\nHost: web\r\nUser-Agent: " + SQLMAP + b"\r\n\r\n")
    conversation.send(False, b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\nSECRET_ENV_FILE\n")
    conversation.close()
    return conversation.packets


CAPTURES = {"overlap-decoy.pcap": overlap_decoy, "odd-bytes.pcap": odd_bytes}
"""The files this module writes, each with its builder: attacks on purpose, so rules fire on them."""


def main() -> None:
    for name, build in CAPTURES.items():
        wrpcap(str(HERE / name), build())
        print(name)


if __name__ == "__main__":
    main()
