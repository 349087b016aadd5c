"""Rewrite real captures as a bad network would: reorder, duplicate, split and drop TCP segments.

tc netem is not available here, so the hostile versions of a capture are made
from the clean one.  Reordering stays within a run of same-direction frames so
causality holds (a response never moves before the request it answers, and no
ACK moves past the data it acknowledges) — what a real path can do.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

Frame = tuple[int, float, bytes]
"""(linktype, timestamp, frame bytes), as CaptureFile yields them."""


def direction(frame: bytes) -> tuple:
    packet = Ether(frame)
    return (packet[IP].src, packet[TCP].sport)


def payload_length(frame: bytes) -> int:
    packet = Ether(frame)
    return len(bytes(packet[TCP].payload)) if TCP in packet else 0


def runs(frames: list[Frame]) -> list[list[Frame]]:
    """Consecutive frames sent by the same endpoint."""
    grouped: list[list[Frame]] = []
    last = None
    for frame in frames:
        key = direction(frame[2])
        if key != last:
            grouped.append([])
            last = key
        grouped[-1].append(frame)
    return grouped


def reorder(frames: list[Frame], rng: random.Random) -> list[Frame]:
    """Shuffle each run of same-direction frames; timestamps travel with their frames."""
    result = []
    for run in runs(frames):
        rng.shuffle(run)
        result.extend(run)
    return result


def duplicate(frames: list[Frame], rng: random.Random, probability: float = 0.2) -> list[Frame]:
    """Repeat some frames, as retransmission or a second capture point (bridge + veth) does."""
    result = []
    for frame in frames:
        result.append(frame)
        if rng.random() < probability:
            result.append(frame)
    return result


def split(frames: list[Frame], rng: random.Random, probability: float = 0.3) -> list[Frame]:
    """Cut some data segments into 2-4 smaller ones with the right sequence numbers."""
    result = []
    for linktype, ts, frame in frames:
        packet = Ether(frame)
        data = bytes(packet[TCP].payload) if TCP in packet else b""
        if len(data) < 2 or rng.random() >= probability:
            result.append((linktype, ts, frame))
            continue
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 3))))
        bounds = [0, *cuts, len(data)]
        for start, end in itertools.pairwise(bounds):
            piece = packet.copy()
            piece[TCP].seq = (packet[TCP].seq + start) % (1 << 32)
            piece[TCP].remove_payload()
            piece[TCP].add_payload(data[start:end])
            del piece[IP].len, piece[IP].chksum, piece[TCP].chksum
            result.append((linktype, ts, bytes(piece)))
    return result


def drop(frames: list[Frame], keep: Callable[[int, bytes], bool]) -> list[Frame]:
    """Remove the frames ``keep(index, frame)`` rejects (capture loss: the receiver still got them)."""
    return [frame for index, frame in enumerate(frames) if keep(index, frame[2])]


def data_frames_of(frames: list[Frame], marker: bytes) -> list[int]:
    """Indexes of frames whose TCP payload contains ``marker``."""
    return [index for index, (_, _, frame) in enumerate(frames) if marker in frame]
