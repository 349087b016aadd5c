"""Send N TCP SYNs from distinct source ports to an address nobody answers, straight onto eth0.

    python3 benchmarks/syn_flood.py N      (run inside a namespace whose eth0 is on the captured bridge)

Raw Ethernet frames (AF_PACKET), so no ARP and no kernel TCP state: every SYN
opens a half-open flow in the monitor's flow table and nothing ever closes it.
"""

from __future__ import annotations

import socket
import struct
import sys


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def main() -> None:
    count = int(sys.argv[1])
    source, target = bytes([10, 250, 0, 9]), bytes([10, 250, 0, 250])
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind(("eth0", 0))
    mac = sock.getsockname()[4]
    for index in range(count):
        sport = 1024 + index % 60000
        seq = index * 7919
        tcp = struct.pack("!HHIIBBHHH", sport, 80, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
        pseudo = source + target + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), index & 0xFFFF, 0, 64, 6, 0, source, target)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        sock.send(b"\xff" * 6 + mac + b"\x08\x00" + ip + tcp)


if __name__ == "__main__":
    main()
