"""Capture files (pcap and pcapng) through scapy's raw readers: frames out, nothing dissected.

scapy stops quietly at a truncated record; a user must be told their file was
cut short, so this adapter checks what the reader consumed against the file
(classic pcap) and turns scapy's pcapng block warnings into the same error.
Every failure is a :class:`CaptureFileError` with a one-line message.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator

from scapy.error import Scapy_Exception
from scapy.utils import RawPcapNgReader, RawPcapReader

PCAP_HEADER = 24
RECORD_HEADER = 16
MAX_RECORD = 1 << 18
"""Bytes one record may hold (libpcap's largest snapshot length); more means the file is damaged."""


class CaptureFileError(Exception):
    """A capture file cannot be read (or was read only in part); the message is one line."""


class _Warnings(logging.Handler):
    """Collects scapy's runtime warnings while a file is read: they are how it reports corruption."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class CaptureFile:
    """An open capture file: iterate for ``(linktype, ts, frame)``; ``position`` feeds a progress bar."""

    def __init__(self, path: str) -> None:
        self.path = path
        if os.path.isdir(path):
            raise CaptureFileError(f"{path} is a directory, not a capture file")
        try:
            self.size = os.path.getsize(path)
            if self.size == 0:
                raise CaptureFileError(f"{path} is empty")
            self._reader = RawPcapReader(path)
        except FileNotFoundError:
            raise CaptureFileError(f"{path}: no such file") from None
        except PermissionError:
            raise CaptureFileError(f"{path}: permission denied") from None
        except OSError as error:
            raise CaptureFileError(f"{path}: {error.strerror or error}") from None
        except Scapy_Exception as error:
            raise CaptureFileError(f"{path} is not a pcap or pcapng capture ({error})") from None
        self.is_pcapng = isinstance(self._reader, RawPcapNgReader)
        self.frames_read = 0

    def position(self) -> int:
        try:
            return self._reader.f.tell()
        except (OSError, ValueError):
            return self.size

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> CaptureFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[int, float, bytes]]:
        """Frames in file order. Raises CaptureFileError after the last readable frame if the file is damaged."""
        warnings = _Warnings()
        scapy_log = logging.getLogger("scapy.runtime")
        scapy_log.addHandler(warnings)
        propagate = scapy_log.propagate
        scapy_log.propagate = False  # scapy's own stderr line would duplicate our error
        try:
            if self.is_pcapng:
                yield from self._pcapng_frames()
            else:
                yield from self._pcap_frames()
        finally:
            scapy_log.removeHandler(warnings)
            scapy_log.propagate = propagate
        if warnings.messages:
            raise CaptureFileError(f"{self.path} is truncated or damaged after {self.frames_read} frames "
                                   f"({warnings.messages[0].strip()})")

    def _pcap_frames(self) -> Iterator[tuple[int, float, bytes]]:
        """Classic pcap records, read from the stream scapy opened and whose header it parsed.

        Per record this is one header read and one data read with a compiled
        Struct: scapy's own per-packet reader (a namedtuple, a copy and a format
        string built for each record) was a quarter of `read`'s time.
        """
        reader = self._reader
        linktype = reader.linktype
        divisor = 1e9 if getattr(reader, "nano", False) else 1e6
        unpack = struct.Struct(reader.endian + "IIII").unpack
        read_bytes = reader.f.read
        consumed = PCAP_HEADER
        read = 0
        while True:
            header = read_bytes(RECORD_HEADER)
            if len(header) < RECORD_HEADER:
                consumed += len(header)
                break
            sec, fraction, caplen, _wire_length = unpack(header)
            if caplen > MAX_RECORD:
                self.frames_read = read
                raise CaptureFileError(f"{self.path} is damaged after {read} frames (a record claims "
                                       f"{caplen} bytes)")
            data = read_bytes(caplen)
            consumed += RECORD_HEADER + len(data)
            if len(data) < caplen:
                self.frames_read = read
                raise CaptureFileError(f"{self.path} is truncated: its last record is cut short after "
                                       f"{read} frames")
            read += 1
            yield linktype, sec + fraction / divisor, data
        self.frames_read = read
        if consumed != self.size:
            raise CaptureFileError(f"{self.path} is truncated: {self.size - consumed} bytes of a partial record "
                                   f"after {read} frames")

    def _pcapng_frames(self) -> Iterator[tuple[int, float, bytes]]:
        read = 0
        try:
            for data, meta in self._reader:
                read += 1
                timestamp = ((meta.tshigh << 32) | meta.tslow) / meta.tsresol
                yield meta.linktype, timestamp, data
        except Scapy_Exception as error:
            self.frames_read = read
            raise CaptureFileError(f"{self.path} is damaged after {read} frames ({error})") from None
        self.frames_read = read
