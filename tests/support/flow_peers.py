"""Non-HTTP peers for the flow tests: a DNS responder, a TLS server, an SSH banner, an FTP greeting.

``python -m tests.support.flow_peers serve CERT KEY`` runs every server (in a
test namespace) until killed, printing "ready" once all listen;
``python -m tests.support.flow_peers talk SERVER_IP CAFILE`` runs one client
conversation with each and prints what it learnt as JSON.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import sys
import threading

DNS_PORT = 53
TLS_PORT = 443
SSH_PORT = 2222
"""Not 22: the SSH banner, not the port, must name the flow."""
FTP_PORT = 21
SERVER_NAME = "shop.example"
SSH_BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n"
FTP_GREETING = b"220 (vsFTPd 3.0.3)\r\n"


def dns_query(name: str, query_id: int = 0x1234) -> bytes:
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\x00"
    return struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", 1, 1)


def dns_answer(query: bytes) -> bytes:
    """An A record 10.9.8.7 for whatever the query asked."""
    end = query.index(b"\x00", 12) + 5
    header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0)
    return header + query[12:end] + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([10, 9, 8, 7])


def _dns() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("0.0.0.0", DNS_PORT))
    while True:
        query, peer = server.recvfrom(512)
        server.sendto(dns_answer(query), peer)


def _tcp_server(port: int, serve_one, wrap=None) -> socket.socket:
    listener = socket.create_server(("0.0.0.0", port))

    def accept_loop() -> None:
        while True:
            connection, _ = listener.accept()
            try:
                if wrap is not None:
                    connection = wrap(connection)
                serve_one(connection)
            except OSError:
                pass
            finally:
                connection.close()

    threading.Thread(target=accept_loop, daemon=True).start()
    return listener


def _echo_line(connection: socket.socket) -> None:
    data = connection.recv(1024)
    connection.sendall(b"echo " + data)


def _ssh(connection: socket.socket) -> None:
    connection.sendall(SSH_BANNER)
    connection.recv(1024)


def _ftp(connection: socket.socket) -> None:
    connection.sendall(FTP_GREETING)
    connection.recv(1024)
    connection.sendall(b"331 Please specify the password.\r\n")
    connection.recv(1024)
    connection.sendall(b"221 Goodbye.\r\n")


def serve(cert: str, key: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    threading.Thread(target=_dns, daemon=True).start()
    _tcp_server(TLS_PORT, _echo_line, lambda connection: context.wrap_socket(connection, server_side=True))
    _tcp_server(SSH_PORT, _ssh)
    _tcp_server(FTP_PORT, _ftp)
    print("ready", flush=True)
    threading.Event().wait()


def talk(server_ip: str, cafile: str) -> dict[str, object]:
    learnt: dict[str, object] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as resolver:
        resolver.settimeout(5)
        resolver.sendto(dns_query(SERVER_NAME), (server_ip, DNS_PORT))
        answer, _ = resolver.recvfrom(512)
        learnt["dns"] = ".".join(map(str, answer[-4:]))
    context = ssl.create_default_context(cafile=cafile)
    with socket.create_connection((server_ip, TLS_PORT), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls:
            tls.sendall(b"hello")
            learnt["tls"] = tls.recv(1024).decode()
    with socket.create_connection((server_ip, SSH_PORT), timeout=5) as ssh:
        learnt["ssh"] = ssh.recv(1024).decode().strip()
        ssh.sendall(b"SSH-2.0-flowtest\r\n")
    with socket.create_connection((server_ip, FTP_PORT), timeout=5) as ftp:
        learnt["ftp"] = ftp.recv(1024).decode().strip()
        ftp.sendall(b"USER anonymous\r\n")
        ftp.recv(1024)
        ftp.sendall(b"QUIT\r\n")
        ftp.recv(1024)
    return learnt


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        print(json.dumps(talk(sys.argv[2], sys.argv[3])))
