"""The scapy adapter for live capture: the only module (with pcapfile) that imports scapy."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

LINKTYPE_ETHERNET = 1


@dataclass(frozen=True, slots=True)
class CaptureReadiness:
    scapy_version: str | None
    libpcap: bool
    filter_ok: bool
    detail: str
    """The filter error, or what is missing and how to install it."""


def check_capture_readiness(bpf: str) -> CaptureReadiness:
    """Is scapy importable, is libpcap there to compile BPF, and does ``bpf`` compile?

    Compiling against a dead Ethernet handle needs no privileges, so a typo in
    a filter is reported before anyone runs as root.
    """
    try:
        import scapy
        from scapy.arch.common import compile_filter
        from scapy.error import Scapy_Exception
    except ImportError as error:
        return CaptureReadiness(None, False, False, f"scapy is not importable ({error}); reinstall eyes-devine")
    try:
        compile_filter(bpf, linktype=LINKTYPE_ETHERNET)
    except ImportError:
        return CaptureReadiness(
            scapy.VERSION, False, False,
            "libpcap not found: install it (Debian/Ubuntu: apt-get install libpcap0.8; macOS: built in; "
            "Windows: Npcap in WinPcap-compatible mode)",
        )
    except (Scapy_Exception, OSError) as error:
        return CaptureReadiness(scapy.VERSION, True, False, f"BPF filter does not compile: {error}")
    return CaptureReadiness(scapy.VERSION, True, True, "libpcap compiles the filter")


SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_FANOUT = 18
PACKET_FANOUT_HASH = 0
PACKET_FANOUT_FLAG_DEFRAG = 0x8000
"""Fragments are put back together before hashing, so all of a datagram goes to one socket."""
SO_RCVBUFFORCE = 33
RECEIVE_BUFFER = 32 << 20
"""Kernel socket buffer per interface: absorbs bursts while Python catches up (needs CAP_NET_ADMIN to exceed
rmem_max; without it the kernel's limit applies)."""


class CaptureError(Exception):
    """Capture could not start on an interface; the message says which and why, in one line."""


FrameSink = Callable[[int, float, bytes, str], None]
"""Receives (linktype, timestamp, frame, interface) on the sniffer's thread."""


class RawFrame:
    """What our socket hands sniff(): the frame's bytes and time, never a dissected scapy Packet."""

    __slots__ = ("data", "time", "sniffed_on", "interface")

    def __init__(self, data: bytes, time: float, interface: str | None = None) -> None:
        self.data = data
        self.time = time
        self.sniffed_on = None  # scapy's sniff() labels frames with it
        self.interface = interface
        """The interface the frame crossed, when the socket says (-i any); else the sniffer's."""


def _raw_listen_socket_class() -> type:
    import scapy.arch  # noqa: F401  - sets conf.L2listen for this OS
    from scapy.config import conf

    class RawListenSocket(conf.L2listen):  # type: ignore[misc, name-defined]
        def recv(self, x: int = 65535, **kwargs: object) -> RawFrame | None:
            _, data, timestamp = self.recv_raw(x)
            if data is None:
                return None
            return RawFrame(data, timestamp if timestamp is not None else time.time())

    return RawListenSocket


ANY = "any"
"""Every interface at once, as tcpdump -i any (Linux)."""
LINKTYPE_RAW = 101
_DLT_RAW = 12
"""What libpcap compiles a filter for when the packet starts at the IP header."""
_ETH_P_ALL = 0x0003
_SO_TIMESTAMPNS = 35
_SO_ATTACH_FILTER = 26


def _any_socket_class() -> type:
    from scapy.arch.common import compile_filter, free_filter
    from scapy.supersocket import SuperSocket

    class AnyInterfaceSocket(SuperSocket):  # type: ignore[misc]
        """Linux cooked capture on every interface: a SOCK_DGRAM packet socket bound to none.

        The kernel hands each packet from its IP header on, with the interface
        it crossed in the source address, so each frame keeps its real
        interface name (a request seen on a bridge and on a veth is the same
        connection twice, merged by reassembly as with -i on both).  The filter
        is compiled for raw IP, what the kernel's filter sees on such a socket.
        """

        desc = "every interface, cooked (Linux)"

        def __init__(self, iface: object = None, filter: str | None = None, **_: object) -> None:  # noqa: A002
            self.ins = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_ALL))
            self.outs = None
            self.iface = ANY
            self.closed = False
            self.ins.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            if filter:
                self.set_filter(filter)

        def set_filter(self, bpf: str) -> None:
            from scapy.libs.structures import sock_fprog

            program = compile_filter(bpf, linktype=_DLT_RAW)
            try:
                self.ins.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, sock_fprog(program.bf_len,
                                                                                     program.bf_insns))
            finally:
                free_filter(program)

        def recv(self, x: int = 65535, **kwargs: object) -> RawFrame | None:
            data, ancillary, _flags, address = self.ins.recvmsg(x, 64)
            stamp = time.time()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(value) >= 16:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    stamp = seconds + nanoseconds / 1e9
            return RawFrame(data, stamp, address[0])

    return AnyInterfaceSocket


@dataclass
class SnifferStatus:
    interface: str
    running: bool = False
    error: str | None = None
    kernel_drops: int = 0
    restarts: int = 0


class LiveCapture:
    """One scapy AsyncSniffer per interface, each handing raw frames to ``sink``.

    A sniffer whose socket fails (interface removed, link gone) ends its
    thread; :meth:`check` notices, reports it in :attr:`status`, and reopens the
    interface when it exists again, so nothing stays "running" while capturing
    nothing.
    """

    def __init__(self, interfaces: tuple[str, ...], bpf: str, sink: FrameSink,
                 fanout: Mapping[str, int] | None = None) -> None:
        """``fanout``: interface → PACKET_FANOUT group (Linux) each socket joins, so the processes capturing
        that interface share its packets by flow (a symmetric hash: both directions in one process)."""
        self.interfaces = interfaces
        self.bpf = bpf
        self.sink = sink
        self.fanout = dict(fanout or {})
        self.status = {name: SnifferStatus(name) for name in interfaces}
        self._sniffers: dict[str, object] = {}
        self._sockets: dict[str, object] = {}
        self._socket_class: type | None = None
        self._any_class: type | None = None
        self._lock = threading.RLock()
        """check() runs on the service loop, set_filter() on the Docker watcher's thread."""

    def start(self) -> None:
        """Open every interface; raise CaptureError for the first that cannot be opened."""
        logging.getLogger("scapy.runtime").setLevel(logging.ERROR)  # failures are reported through status
        self._socket_class = _raw_listen_socket_class()
        try:
            for name in self.interfaces:
                self._open(name)
        except CaptureError:
            self.stop()
            raise

    def _open(self, name: str) -> None:
        from scapy.error import Scapy_Exception
        from scapy.sendrecv import AsyncSniffer

        assert self._socket_class is not None
        try:
            if name == ANY:
                if not sys.platform.startswith("linux"):
                    raise CaptureError("-i any is Linux's: name the interfaces here (see: eyes-devine interfaces)")
                self._any_class = self._any_class or _any_socket_class()
                sock = self._any_class(filter=self.bpf)
            else:
                sock = self._socket_class(iface=name, filter=self.bpf)
        except PermissionError:
            raise CaptureError(
                f"permission denied capturing on {name}: run with sudo, or once: sudo scripts/setcap.sh"
            ) from None
        except OSError as error:
            if error.errno == 19:  # ENODEV
                raise CaptureError(f"interface {name} does not exist (see: eyes-devine interfaces)") from None
            raise CaptureError(f"cannot capture on {name}: {error.strerror or error}") from None
        except ValueError:  # scapy: "Interface ... not found"
            raise CaptureError(f"interface {name} does not exist (see: eyes-devine interfaces)") from None
        except Scapy_Exception as error:
            raise CaptureError(f"cannot capture on {name}: {error}") from None
        with contextlib.suppress(OSError, AttributeError):
            sock.ins.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
        group = self.fanout.get(name)
        if group is not None:
            try:
                sock.ins.setsockopt(SOL_PACKET, PACKET_FANOUT, struct.pack(
                    "=I", group | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16)))
            except OSError as error:
                sock.close()
                raise CaptureError(f"cannot share {name} between workers (PACKET_FANOUT group {group}): "
                                   f"{error.strerror or error}") from None
        linktype = LINKTYPE_RAW if name == ANY else _linktype_of(sock)
        sink = self.sink

        def deliver(frame: RawFrame) -> None:
            sink(linktype, frame.time, frame.data, frame.interface or name)

        sniffer = AsyncSniffer(opened_socket=sock, prn=deliver, store=False)
        sniffer.start()
        self._sockets[name] = sock
        self._sniffers[name] = sniffer
        status = self.status[name]
        status.running, status.error = True, None

    def check(self) -> list[str]:
        """Find dead sniffers and try to reopen them; returns a line per change, for the log."""
        with self._lock:
            return self._check()

    def _check(self) -> list[str]:
        events = []
        reloaded = False
        for name, status in self.status.items():
            sniffer = self._sniffers.get(name)
            alive = sniffer is not None and sniffer.thread is not None and sniffer.thread.is_alive()
            if status.running and not alive:
                self._collect_drops(name)
                self._close(name)
                status.running = False
                reason = getattr(sniffer, "exception", None)
                status.error = f"capture on {name} stopped" + (f": {reason}" if reason else " (interface gone?)")
                events.append(status.error)
            if not status.running:
                if not reloaded:  # scapy caches interface indexes; a re-created interface has a new one
                    _reload_interfaces()
                    reloaded = True
                try:
                    self._open(name)
                except CaptureError as error:
                    status.error = str(error)
                else:
                    status.restarts += 1
                    events.append(f"capture on {name} resumed")
        return events

    def set_filter(self, bpf: str) -> None:
        """Replace the BPF filter on every open socket (Linux attaches it in place; elsewhere reopen)."""
        with self._lock:
            self._set_filter(bpf)

    def _set_filter(self, bpf: str) -> None:
        self.bpf = bpf
        try:
            from scapy.arch.linux import attach_filter
        except ImportError:
            attach_filter = None
        for name in list(self._sockets):
            sock = self._sockets[name]
            if name == ANY:
                try:
                    sock.set_filter(bpf)  # type: ignore[attr-defined]
                    continue
                except Exception as error:  # noqa: BLE001 - as below: reopen
                    self.status[name].error = f"filter update on {name} failed ({error}); reopening"
            elif attach_filter is not None:
                try:
                    attach_filter(sock.ins, bpf, name)
                    continue
                except Exception as error:  # noqa: BLE001 - scapy raises several kinds; all mean "reopen"
                    self.status[name].error = f"filter update on {name} failed ({error}); reopening"
            self._close(name)
            self.status[name].running = False
            with contextlib.suppress(CaptureError):
                self._open(name)

    def kernel_drops(self) -> int:
        """Packets the kernel dropped because we did not read fast enough, over all interfaces."""
        for name in list(self._sockets):
            self._collect_drops(name)
        return sum(status.kernel_drops for status in self.status.values())

    def _collect_drops(self, name: str) -> None:
        sock = self._sockets.get(name)
        if sock is None or not sys.platform.startswith("linux"):
            return
        try:
            raw = sock.ins.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)  # reading resets the kernel's counters
        except (OSError, AttributeError, ValueError):
            return
        _packets, drops = struct.unpack("II", raw)
        self.status[name].kernel_drops += drops

    def _close(self, name: str) -> None:
        sniffer = self._sniffers.pop(name, None)
        if sniffer is not None and sniffer.running:
            with contextlib.suppress(Exception):
                sniffer.stop(join=True)
        sock = self._sockets.pop(name, None)
        if sock is not None:
            with contextlib.suppress(Exception):
                sock.close()

    def stop(self) -> None:
        with self._lock:
            for name in list(self._sockets):
                self._collect_drops(name)
                self._close(name)
                self.status[name].running = False


def _reload_interfaces() -> None:
    from scapy.config import conf

    with contextlib.suppress(Exception):
        conf.ifaces.reload()


def _linktype_of(sock: object) -> int:
    """The frames' link type from the socket's hardware type (Linux), so e.g. a tun device yields raw IP.

    pcap-based sockets (macOS, Windows) deliver Ethernet on the adapters eyes-devine selects.
    """
    from scapy.data import ARPHRD_TO_DLT

    try:
        hardware_type = sock.ins.getsockname()[3]  # type: ignore[attr-defined]
    except (AttributeError, OSError, IndexError, TypeError):
        return LINKTYPE_ETHERNET
    return ARPHRD_TO_DLT.get(hardware_type, LINKTYPE_ETHERNET)
