"""Debian's PostgreSQL server, made with initdb and run with pg_ctl in a temp dir, for the tests that need one.

PostgreSQL refuses to run as root, so the cluster belongs to the ``postgres``
account Debian's package creates.  It listens on 127.0.0.1 at a free port with
password (scram) authentication, so the tests also see what a wrong password
does; the superuser is ``owner``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from tests.support.prometheus import free_port
from tests.support.requirements import missing, require_root

OWNER_PASSWORD = "owner-secret"


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        missing("PostgreSQL server (Debian package postgresql)")
    return Path(found[-1]).parent


class PostgresServer:
    """One cluster; :meth:`stop` and :meth:`start` take it away and bring it back (an outage)."""

    def __init__(self) -> None:
        require_root()
        self.bin = _binaries()
        try:
            self.account = pwd.getpwnam("postgres")
        except KeyError:
            missing("the postgres account (Debian package postgresql)")
        # Not under pytest's temp dirs: those are root's 0700, where the postgres account cannot go.
        self.workdir = workdir = Path(tempfile.mkdtemp(prefix="eyes-devine-pg-"))
        os.chown(workdir, self.account.pw_uid, self.account.pw_gid)
        self.data = workdir / "data"
        self.port = free_port()
        password_file = workdir / "pw"
        password_file.write_text(OWNER_PASSWORD + "\n")
        os.chown(password_file, self.account.pw_uid, self.account.pw_gid)
        self._as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-U", "owner", "--auth=scram-sha-256",
                           f"--pwfile={password_file}", "-E", "UTF8", "--locale=C.UTF-8"])
        self._certificate()
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = "
                       f"'{workdir}'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                       f"ssl = on\nssl_cert_file = '{workdir / 'server.crt'}'\n"
                       f"ssl_key_file = '{workdir / 'server.key'}'\n")
        self.start()

    def _certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1, so clients can ask for TLS (sslmode=require)."""
        openssl = shutil.which("openssl") or missing("openssl (Debian package openssl)")
        subprocess.run([openssl, "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=127.0.0.1",
                        "-newkey", "rsa:2048", "-keyout", str(self.workdir / "server.key"),
                        "-out", str(self.workdir / "server.crt")], check=True, capture_output=True, timeout=60)
        for name in ("server.key", "server.crt"):
            os.chown(self.workdir / name, self.account.pw_uid, self.account.pw_gid)
            os.chmod(self.workdir / name, 0o600)

    def _as_postgres(self, command: list[str]) -> None:
        result = subprocess.run(["setpriv", f"--reuid={self.account.pw_uid}", f"--regid={self.account.pw_gid}",
                                 "--clear-groups", *command], capture_output=True, text=True, timeout=120,
                                cwd=self.workdir)
        assert result.returncode == 0, f"{command[0]} failed: {result.stderr[-2000:]}{result.stdout[-1000:]}"

    def start(self) -> None:
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.workdir / "server.log"),
                           "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def url(self, user: str = "owner", password: str = OWNER_PASSWORD, dbname: str = "postgres") -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """A fresh, empty database owned by ``owner``; its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.execute(f"CREATE DATABASE {name}")
        return self.url(dbname=name)

    def execute(self, statement: str, url: str | None = None) -> list[tuple]:
        with psycopg.connect(url or self.url(), autocommit=True) as connection:
            cursor = connection.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def close(self) -> None:
        try:
            self.stop("immediate")
        except AssertionError:
            pass
        shutil.rmtree(self.workdir, ignore_errors=True)


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.2)
