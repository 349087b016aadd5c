"""Send a decoy and a real request over one TCP connection as overlapping copies, from a raw socket.

Run inside a client namespace whose kernel cannot answer for the connection
(its RSTs dropped by iptables), against a real server: whatever the server
answers shows which copy its Linux kernel kept.  Prints the answer's bytes,
as Python's repr, on one line.

    python -m tests.support.overlap_client SERVER PORT
"""

from __future__ import annotations

import random
import sys
import time

from scapy.layers.inet import IP, TCP
from scapy.sendrecv import AsyncSniffer, send, sr1

from tests.pcaps.hostile import DECOY, REAL


def main(server: str, port: int) -> None:
    client_port = random.randint(20000, 60000)
    isn = random.randint(0, 1 << 31)
    answers = f"tcp and src host {server} and src port {port} and dst port {client_port}"
    sniffer = AsyncSniffer(iface="eth0", filter=answers)
    sniffer.start()
    time.sleep(0.5)
    synack = sr1(IP(dst=server) / TCP(sport=client_port, dport=port, flags="S", seq=isn), timeout=5, verbose=0)
    if synack is None:
        raise SystemExit("no SYN-ACK")
    ack = synack[TCP].seq + 1
    segment = IP(dst=server) / TCP(sport=client_port, dport=port, flags="A", seq=isn + 1, ack=ack)
    send(segment, verbose=0)
    decoy = IP(dst=server) / TCP(sport=client_port, dport=port, flags="PA", seq=isn + 2, ack=ack) / DECOY[1:]
    send(decoy, verbose=0)  # out of order: the first byte is "missing", so Linux holds it
    time.sleep(0.1)
    real = IP(dst=server) / TCP(sport=client_port, dport=port, flags="PA", seq=isn + 1, ack=ack) / REAL
    send(real, verbose=0)  # in order, covering the decoy with other bytes
    time.sleep(1.5)
    answer: dict[int, bytes] = {}
    for packet in sniffer.stop():
        payload = bytes(packet[TCP].payload)
        if payload:
            answer[packet[TCP].seq] = payload
    print(repr(b"".join(answer[seq] for seq in sorted(answer))))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
