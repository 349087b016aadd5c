"""The line `read` ends with on stderr, as tcpdump ends with its counts."""

from __future__ import annotations

from eyes_devine.records import EngineCounters
from eyes_devine.views.safe import safe


def summary_line(path: str, frames: int, c: EngineCounters, flows: int | None, seconds: float) -> str:
    """tcpdump-style counts at the end of a read, with a hint when traffic was skipped (``flows``: summaries
    written, with --flows)."""
    sealed = c.tls_streams - c.tls_decrypted
    parts = [
        f"{frames} packets",
        f"{c.exchanges} exchanges",
        *([f"{flows} flows"] if flows is not None else []),
        f"{c.non_http_streams} non-HTTP streams" + (f" ({sealed} TLS)" if sealed else ""),
        *([f"{c.tls_decrypted} TLS decrypted"] if c.tls_decrypted else []),
        f"{c.gaps} gaps ({c.bytes_missing} bytes missing)",
    ]
    if c.retransmitted_segments:
        parts.append(f"{c.retransmitted_segments} retransmitted segments")
    if c.unpaired_responses:
        parts.append(f"{c.unpaired_responses} responses to lost requests")
    if c.undecodable:
        parts.append(f"{c.undecodable} frames not TCP/IP")
    if c.off_port_segments:
        parts.append(f"{c.off_port_segments} TCP segments on other ports (see --ports)")
    return f"{safe(path)}: " + ", ".join(parts) + f" in {seconds:.2f}s"
