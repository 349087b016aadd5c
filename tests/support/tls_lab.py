"""HTTPS between two namespaces: nginx with TLS 1.2 and 1.3 (HTTP/1.1 and h2), and curl writing SSLKEYLOGFILE.

Used live by tests/integration/test_tls_keylog.py and to record the committed
capture tests/pcaps/tls-keylog.pcap with its key log.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.support.netns import Lab, Namespace
from tests.support.requirements import require_binary
from tests.support.scenarios import nginx_binary, wait_for_port

PORT = 443
NAME = "web.test"
NGINX_TLS = """
user root;
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
  log_format line '$request_method $request_uri $status $server_protocol $ssl_protocol';
  access_log {dir}/access.log line;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fcgi;
  uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  server {{
    listen {port} ssl http2;
    ssl_certificate {dir}/cert.pem;
    ssl_certificate_key {dir}/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location = /missing {{ return 404 "none\\n"; }}
    location = /big {{ alias {dir}/big.bin; }}  # user root: pytest's temporary directories are 0700
    location = /upload {{ return 200 "stored\\n"; }}
    location / {{ return 200 "tls\\n"; }}
  }}
}}
"""
BIG = 50_000
"""Bytes of /big: many TLS records, and many HTTP/2 DATA frames."""
UPLOAD = 3_000

TLS12 = ("--tls-max", "1.2")
REQUESTS: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("--http1.1",), ("/h1-tls13",)),
    (("--http1.1", *TLS12), ("/h1-tls12?token=SECRET",)),
    (("--http2",), ("/h2-tls13", "/missing")),  # two streams on one connection
    (("--http2", *TLS12), ("/h2-tls12",)),
    (("--http1.1", *TLS12, "--ciphers", "ECDHE-ECDSA-CHACHA20-POLY1305"), ("/chacha-tls12",)),
    (("--http1.1", "--tls13-ciphers", "TLS_CHACHA20_POLY1305_SHA256"), ("/chacha-tls13",)),
    (("--http2", "--tls13-ciphers", "TLS_AES_256_GCM_SHA384"), ("/big",)),
    (("--http1.1", "--data-binary", "@{upload}"), ("/upload",)),
]
"""curl's options and the paths it asks for on one connection: both versions, both AEADs, AES-256, h2 and
HTTP/1.1, a body each way that spans many records."""


@dataclass
class TlsLab:
    lab: Lab
    server: Namespace
    client: Namespace
    bridge: str
    workdir: Path

    @property
    def key_log(self) -> Path:
        return self.workdir / "keys.log"

    def logged(self) -> Counter:
        """nginx's access log as (method, URI, status, protocol, TLS version)."""
        return Counter(tuple(line.split()) for line in (self.workdir / "access.log").read_text().splitlines())

    def send_all(self) -> None:
        """Every request of :data:`REQUESTS`, each curl its own connection, writing the key log as it goes."""
        curl = require_binary("curl", "curl")
        upload = self.workdir / "upload.bin"
        upload.write_bytes(b"u" * UPLOAD)
        for options, paths in REQUESTS:
            argv = [curl, "-sS", "--fail-with-body", "--cacert", str(self.workdir / "cert.pem"),
                    "--resolve", f"{NAME}:{PORT}:{self.server.address}",
                    *(option.format(upload=upload) for option in options)]
            for path in paths:
                argv += ["-o", "/dev/null", f"https://{NAME}:{PORT}{path}"]
            result = self.client.run("env", f"SSLKEYLOGFILE={self.key_log}", *argv, check=False)
            assert result.returncode in (0, 22), result.stderr  # 22: the 404 of /missing, as asked

    def close(self) -> None:
        self.lab.close()


def start_tls_lab(workdir: Path) -> TlsLab:
    """nginx serving HTTPS in one namespace, a client namespace beside it on a bridge; the certificate is made
    here, for web.test, with an ECDSA key (the ECDHE-ECDSA suites need one)."""
    openssl = require_binary("openssl", "openssl")
    nginx = nginx_binary()
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(workdir / "key.pem"), "-out", str(workdir / "cert.pem"), "-days", "2",
                    "-subj", f"/CN={NAME}", "-addext", f"subjectAltName=DNS:{NAME}"],
                   check=True, capture_output=True)
    (workdir / "big.bin").write_bytes(bytes(range(256)) * (BIG // 256) + b"b" * (BIG % 256))
    (workdir / "nginx.conf").write_text(NGINX_TLS.format(dir=workdir, port=PORT))
    lab = Lab()
    try:
        bridge = lab.bridge()
        server = lab.host("s", 2, bridge=bridge)
        client = lab.host("c", 3, bridge=bridge)
        lab.processes.append(server.spawn(nginx, "-c", str(workdir / "nginx.conf"), stderr=subprocess.DEVNULL))
        wait_for_port(server, PORT)
    except BaseException:
        lab.close()
        raise
    return TlsLab(lab, server, client, bridge, workdir)


def record_tls_lab(path: Path, key_log: Path, workdir: Path) -> None:
    """Every request of :data:`REQUESTS`, recorded with tcpdump into ``path``; curl's key log copied to
    ``key_log``."""
    from tests.support.recorder import Recorder

    lab = start_tls_lab(workdir)
    try:
        with Recorder(lab.bridge, path, tcpdump=require_binary("tcpdump", "tcpdump")):
            lab.send_all()
    finally:
        lab.close()
    key_log.write_bytes(lab.key_log.read_bytes())
