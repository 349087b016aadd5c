"""The record leaving the host, tried with the real things: Debian's Prometheus scraping `run --metrics`, the
shipped Grafana dashboard's queries, and an OTLP/HTTP receiver decoding `run --otlp` with opentelemetry-proto."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import serving
from tests.support.dockerd import DockerEngine
from tests.support.load import get, hammer
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.prometheus import Prometheus, free_port
from tests.support.service import stored, wait_until

pytestmark = pytest.mark.docker
DASHBOARD = Path(__file__).parents[2] / "examples" / "grafana" / "eyes-devine.json"


@pytest.fixture
def shop(docker_engine: DockerEngine, busybox_image: str) -> Iterator:
    """A busybox web container labelled as compose would label service "web" of project "shop"."""
    container = docker_engine.client.containers.run(
        busybox_image, name=f"edt-shop-{os.getpid()}", detach=True,
        labels={"com.docker.compose.project": "shop", "com.docker.compose.service": "web"})
    yield serving(container)
    container.remove(force=True)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return answer.read().decode()


def test_prometheus_counts_exactly_what_was_sent_with_ids_folded_and_a_scan_capped(service, shop, tmp_path):
    port = free_port()
    run = service("-i", "docker0", "--metrics", f"127.0.0.1:{port}")
    run.wait_for("Docker: connected")
    assert run.wait_for("serving metrics")["url"] == f"http://127.0.0.1:{port}/metrics"
    prometheus = Prometheus(tmp_path / "prometheus", f"127.0.0.1:{port}")
    try:
        for i in range(20):
            get(shop.address, 80, f"/users/{1000 + i}/orders?page={i}")
        for _ in range(17):
            get(shop.address, 80, "/health")
        mine = f'container="{shop.name}"'
        prometheus.wait_for(f"sum(http_server_request_duration_seconds_count{{{mine}}})", 37)
        routes = {r["metric"]["http_route"]: float(r["value"][1]) for r in prometheus.query(
            f"sum by (http_route) (http_server_request_duration_seconds_count{{{mine}}})")}
        assert routes == {"/users/{id}/orders": 20.0, "/health": 17.0}
        [series] = prometheus.query(f'http_server_request_duration_seconds_count{{{mine}, http_route="/health"}}')
        assert series["metric"]["compose_service"] == "web" and series["metric"]["http_request_method"] == "GET"

        assert hammer(shop.address, 80, [f"/scan/{os.urandom(6).hex()}x" for _ in range(3000)], 4) == 3000
        prometheus.wait_for(f"sum(http_server_request_duration_seconds_count{{{mine}}})", 3037, 60)
        counts = f"http_server_request_duration_seconds_count{{{mine}}}"
        overflow = f'http_server_request_duration_seconds_count{{{mine}, http_route="/{{other}}"}}'
        assert prometheus.value(f"count(count by (http_route) ({counts}))") == 101, "100 routes and the overflow"
        assert prometheus.value(f"sum({overflow})") == 3000 - 98, "every request counted: past the cap, /{other}"
        assert prometheus.value('eyes_devine_sniffer_up{interface="docker0"}') == 1
        assert prometheus.value("eyes_devine_docker_up") == 1
        assert prometheus.value("eyes_devine_kernel_drops_total") == 0
    finally:
        prometheus.stop()
    assert run.stop() == 0


def test_every_panel_of_the_grafana_dashboard_returns_data(service, shop, tmp_path):
    port = free_port()
    run = service("-i", "docker0", "--metrics", f"127.0.0.1:{port}")
    run.wait_for("Docker: connected")
    prometheus = Prometheus(tmp_path / "prometheus", f"127.0.0.1:{port}")
    try:
        get(shop.address, 80, "/probe")
        time.sleep(2)  # rates need two scrapes of a series
        deadline = time.monotonic() + 40
        for n in range(10_000):
            get(shop.address, 80, f"/items/{n}")
            if n % 5 == 0:
                request = urllib.request.Request(f"http://{shop.address}/.env", headers={"User-Agent": "sqlmap/1.8"})
                try:
                    urllib.request.urlopen(request, timeout=5)
                except OSError:
                    pass  # 404: what matters is that it was asked
            empty = [expr for expr in _dashboard_queries() if not prometheus.query(expr)]
            if not empty:
                break
            assert time.monotonic() < deadline, f"panels without data: {empty}"
            time.sleep(0.5)
    finally:
        prometheus.stop()
    assert run.stop() == 0


def _dashboard_queries() -> list[str]:
    """Every panel's PromQL as Grafana sends it, with the dashboard's variables at "All"."""
    dashboard = json.loads(DASHBOARD.read_text())
    values = {"$container": ".*", "$job": ".*", "$__rate_interval": "30s", "$__range": "5m"}
    queries = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for name, value in values.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, f"panel {panel['title']!r} uses a variable the test does not know: {expr}"
            queries.append(expr)
    assert len(queries) >= 10
    return queries


def test_a_removed_containers_series_leave_metrics_after_the_grace_period(service, docker_engine, busybox_image):
    port = free_port()
    run = service("-i", "docker0", "--metrics", f"127.0.0.1:{port}", "--metrics-grace", "2")
    run.wait_for("Docker: connected")
    gone = serving(docker_engine.client.containers.run(busybox_image, name=f"edt-gone-{os.getpid()}", detach=True))
    wait_until(lambda: f'container="{gone.name}"' in scrape(port), 10, "its series")
    gone.remove(force=True)
    run.wait_for(f"metrics: series of removed container {gone.name} dropped", 20)
    assert f'container="{gone.name}"' not in scrape(port)
    assert run.stop() == 0


def test_every_exchange_is_a_span_with_the_conventions_attributes_and_the_containers_resource(
        service, shop, docker_engine, busybox_image, tmp_path):
    receiver = OtlpReceiver().start()
    env = {**docker_engine.env, "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
           "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=k%201"}
    run = service("-i", "docker0", "--otlp", receiver.url, env=env)
    run.wait_for("Docker: connected")
    try:
        get(shop.address, 80, "/items/7?token=abc&page=2")
        request = urllib.request.Request(f"http://{shop.address}/.env", headers={"User-Agent": "sqlmap/1.8"})
        with pytest.raises(OSError):
            urllib.request.urlopen(request, timeout=5)
        call = f"sleep 1; wget -q -O /dev/null http://{shop.address}/from-a-container; sleep 60"  # once it is known
        caller = docker_engine.client.containers.run(busybox_image, ["sh", "-c", call],
                                                     name=f"edt-caller-{os.getpid()}", detach=True)
        try:
            wait_until(lambda: len(receiver.spans) >= 4, 20, "4 spans (the last call is a client and a server span)")
        finally:
            caller.remove(force=True)
        assert run.stop() == 0
        exchanges = stored(run.db, "SELECT target FROM exchanges WHERE container = ?", shop.name)
        server_spans = [s for s in receiver.spans if s.kind == 2]
        assert len(server_spans) == len(exchanges) == 3, "one server span per exchange"
        spans = {s.attributes["url.path"]: s for s in server_spans}
        item = spans["/items/7"]
        assert item.name == "GET /items/{id}" and item.attributes["url.query"] == "token=REDACTED&page=2"
        assert item.attributes["http.route"] == "/items/{id}" and item.attributes["http.response.status_code"] == 404
        assert item.attributes["server.address"] == shop.address and item.attributes["server.port"] == 80
        assert item.attributes["client.address"] and item.attributes["network.protocol.version"] == "1.1"
        assert item.resource["service.name"] == "web" and item.resource["container.name"] == shop.name
        assert item.resource["container.id"] == shop.id and item.resource["docker.compose.project"] == "shop"
        assert item.resource["container.image.name"] and item.resource["deployment.environment"] == "test"
        assert item.end_ns > item.start_ns
        assert [name for name, _ in spans["/.env"].events] == ["eyes_devine.alert", "eyes_devine.alert"]
        [client] = [s for s in receiver.spans if s.kind == 3]
        served = spans["/from-a-container"]
        assert client.resource["container.name"] == caller.name
        assert client.trace_id == served.trace_id and served.parent_span_id == client.span_id
        assert {r.get("X-Api-Key") or r.get("x-api-key") for r in receiver.requests} == {"k 1"}
    finally:
        receiver.stop()


def test_a_collector_down_for_a_while_costs_capture_and_storage_nothing_and_spans_arrive_when_it_returns(
        service, shop, docker_engine):
    port = free_port()
    env = {**docker_engine.env, "OTEL_EXPORTER_OTLP_TIMEOUT": "1000"}
    run = service("-i", "docker0", "--otlp", f"http://127.0.0.1:{port}", env=env)
    run.wait_for("Docker: connected")
    for i in range(5):
        get(shop.address, 80, f"/while-down/{i}")
    failing = run.wait_for("OTLP export to", 20)
    assert failing["level"] == "warning" and "failing" in failing["msg"]
    receiver = OtlpReceiver(port=port).start()
    try:
        run.wait_for(f"OTLP export to http://127.0.0.1:{port}/v1/traces working again; 0 exchanges dropped", 40)
        for i in range(5):
            get(shop.address, 80, f"/after/{i}")
        wait_until(lambda: len(receiver.spans) >= 10, 20, "the spans queued during the outage and the later ones")
        assert run.stop() == 0, "nothing lost: the queue held the outage"
    finally:
        receiver.stop()
    paths = sorted(s.attributes["url.path"] for s in receiver.spans)
    assert paths == sorted([f"/while-down/{i}" for i in range(5)] + [f"/after/{i}" for i in range(5)]), \
        "each exchange exported once"
    assert stored(run.db, "SELECT count(*) FROM exchanges WHERE container = ?", shop.name) == [(10,)]


def test_sampling_keeps_every_alert_and_error_and_leaves_the_rest_out(service, shop, docker_engine):
    receiver = OtlpReceiver().start()
    run = service("-i", "docker0", "--otlp", receiver.url, "--otlp-sample", "0")
    run.wait_for("Docker: connected")
    try:
        for i in range(10):
            get(shop.address, 80, f"/plain/{i}")
        request = urllib.request.Request(f"http://{shop.address}/.git/config", headers={"User-Agent": "sqlmap/1.8"})
        with pytest.raises(OSError):
            urllib.request.urlopen(request, timeout=5)
        wait_until(lambda: receiver.spans, 20, "the alerting exchange's span")
        assert run.stop() == 0
    finally:
        receiver.stop()
    assert [s.attributes["url.path"] for s in receiver.spans] == ["/.git/config"]
    final = run.messages("stopped")[0]
    assert final["otlp_written"] == 1 and final["otlp_drops"] == 0 and re.search(r"nothing lost", final["msg"])
