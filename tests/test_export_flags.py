"""Bad export settings are one line and a non-zero exit before anything starts; an address in use is a failure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.support.requirements import require_root

EYES_DEVINE = [sys.executable, "-m", "eyes_devine"]


def eyes(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*EYES_DEVINE, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock", **(env or {})})


def one_line(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    [line] = [line for line in result.stderr.splitlines() if "eyes-devine:" in line or "ERROR" in line]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in line, line


@pytest.mark.parametrize(("args", "env", "words"), [
    (("run", "--metrics", ":9464"), {}, ("--metrics: ':9464' is not PORT or ADDRESS:PORT", "0.0.0.0:9464")),
    (("watch", "--metrics", "9464x"), {}, ("--metrics: '9464x'",)),
    (("run", "--metrics", "9464", "--max-routes", "0"), {}, ("--max-routes: '0' is not a whole number",)),
    (("run", "--otlp", "collector:4318"), {}, ("--otlp: 'collector:4318' is not an http:// or https:// URL",)),
    (("run",), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
     ("OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json'",)),
    (("run",), {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     ("OTLP over gRPC needs its exporter: pip install opentelemetry-exporter-otlp-proto-grpc",)),
    (("run", "--otlp", "http://c:4318", "--otlp-sample", "2"), {}, ("--otlp-sample: '2' is not a number from 0 to 1",)),
    (("watch", "--attach", "--metrics", "9464"), {}, ("--metrics exports what eyes-devine captures",)),
])
def test_a_bad_export_setting_is_one_line_and_exit_2(args, env, words):
    one_line(eyes(*args, env=env), 2, *words)


def test_commands_that_do_not_export_are_not_bothered_by_the_hosts_otel_variables(tmp_path):
    result = eyes("read", "--json", "-q", "tests/pcaps/lab-http.pcap",
                  env={"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://nowhere", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    assert result.returncode == 0 and result.stdout, result.stderr


def test_a_metrics_address_in_use_fails_start_with_one_line_and_keeps_the_database(tmp_path):
    require_root()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = eyes("run", "-i", "lo", "--db", str(tmp_path / "x.db"), "--metrics", f"127.0.0.1:{port}")
    assert result.returncode == 1, result.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}: Address already in use" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr and (tmp_path / "x.db").exists()
