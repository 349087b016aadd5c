"""Exchanges into Prometheus series: labels by container and route, bounded; health read at scrape time."""

from __future__ import annotations

from types import MappingProxyType

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from eyes_devine.adapters.metrics import Metrics
from eyes_devine.app.directory import ContainerDirectory
from eyes_devine.app.metrics import MetricsSink, health_readings
from eyes_devine.records import ContainerInfo
from eyes_devine.snapshots import EngineSnapshot, MonitorSnapshot
from tests.support.records import API, WEB, Collected, make

WEB_INFO = ContainerInfo(WEB + "0" * 52, "shop-web-1", "nginx:1.25", "shop", "web")


def samples(metrics: Metrics, name: str) -> list[tuple[dict[str, str], float]]:
    text = generate_latest(metrics.registry).decode()
    return [(sample.labels, sample.value) for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name]


def served(i: int, **changes: object):
    return make(i, container="shop-web-1", container_id=WEB, **changes)


def sink(max_routes: int = 100, **kwargs: object) -> tuple[MetricsSink, Metrics]:
    metrics = Metrics(lambda: ())
    directory = ContainerDirectory(lambda short_id: WEB_INFO if WEB_INFO.id.startswith(short_id) else None)
    return MetricsSink(metrics, directory, max_routes, **kwargs), metrics  # type: ignore[arg-type]


def test_served_requests_count_per_container_service_method_status_and_route():
    metrics_sink, metrics = sink()
    for i in range(5):
        metrics_sink.accept(served(i, target=f"/items/{i}?page=2", duration_ms=30.0))
    metrics_sink.accept(served(9, method="POST", status=201, target="/items", request_bytes=300))
    counts = {tuple(sorted(labels.items())): value
              for labels, value in samples(metrics, "http_server_request_duration_seconds_count")}
    base = {"container": "shop-web-1", "compose_service": "web", "http_request_method": "GET",
            "http_response_status_code": "200"}
    assert counts == {
        tuple(sorted({**base, "http_route": "/items/{id}"}.items())): 5.0,
        tuple(sorted({**base, "http_request_method": "POST", "http_response_status_code": "201",
                      "http_route": "/items"}.items())): 1.0,
    }
    buckets = {labels["le"]: value for labels, value in samples(metrics, "http_server_request_duration_seconds_bucket")
               if labels["http_route"] == "/items/{id}"}
    assert (buckets["0.025"], buckets["0.05"]) == (0.0, 5.0), "duration_ms, in seconds"
    assert sum(v for _, v in samples(metrics, "http_server_response_body_size_bytes_count")) == 6
    [(labels, count)] = [(labels, v) for labels, v in samples(metrics, "http_server_request_body_size_bytes_count")
                         if v]
    assert (labels["http_request_method"], count) == ("POST", 1.0), "only requests with a body have a body size"


def test_a_container_calling_out_counts_as_a_client_request_and_unanswered_requests_are_counted_apart():
    metrics_sink, metrics = sink()
    metrics_sink.accept(make(1, client_container="api-1", client_container_id=API, target="/v1/charge"))
    metrics_sink.accept(served(2, status=None, latency_ms=None, duration_ms=None, flags=("no_response",)))
    [(labels, count)] = samples(metrics, "http_client_request_duration_seconds_count")
    assert (labels["container"], labels["http_route"], count) == ("api-1", "/v1/charge", 1.0)
    assert samples(metrics, "eyes_devine_unanswered_requests_total") == \
        [({"container": "shop-web-1", "side": "server"}, 1.0)]


def test_a_scan_of_3000_random_paths_is_counted_exactly_within_the_route_cap():
    metrics_sink, metrics = sink(max_routes=100)
    for i in range(3000):
        metrics_sink.accept(served(i, target=f"/scan-{i:05x}-probe"))
    counts = samples(metrics, "http_server_request_duration_seconds_count")
    assert len(counts) == 101 and sum(value for _, value in counts) == 3000
    assert {"/{other}": 2900.0} == {labels["http_route"]: v for labels, v in counts if v > 1}


def test_methods_are_bounded_and_alerts_counted_by_rule_and_container():
    metrics_sink, metrics = sink()
    metrics_sink.accept(served(1, method="GE\x1bT", alerts=("sensitive-path", "scanner-user-agent")))
    [(labels, _)] = samples(metrics, "http_server_request_duration_seconds_count")
    assert labels["http_request_method"] == "_OTHER"
    assert sorted((labels["rule"], labels["container"], value)
                  for labels, value in samples(metrics, "eyes_devine_alerts_total")) == \
        [("scanner-user-agent", "shop-web-1", 1.0), ("sensitive-path", "shop-web-1", 1.0)]


def test_a_removed_containers_series_go_after_the_grace_period_and_only_while_docker_answers():
    now = [0.0]
    metrics_sink, metrics = sink(grace_seconds=300.0, clock=lambda: now[0])
    metrics_sink.accept(served(1, alerts=("sensitive-path",)))
    assert metrics_sink.follow([], docker_reachable=False) == []
    assert metrics_sink.follow([], docker_reachable=True) == []
    now[0] = 299.0
    assert metrics_sink.follow([], docker_reachable=True) == []
    now[0] = 300.0
    assert metrics_sink.follow([], docker_reachable=True) == ["shop-web-1"]
    assert samples(metrics, "http_server_request_duration_seconds_count") == []
    assert samples(metrics, "eyes_devine_alerts_total") == []
    metrics_sink.accept(served(2))
    assert len(samples(metrics, "http_server_request_duration_seconds_count")) == 1, "a new container of that name"


def test_a_container_that_comes_back_within_the_grace_period_keeps_its_series():
    now = [0.0]
    metrics_sink, metrics = sink(grace_seconds=10.0, clock=lambda: now[0])
    metrics_sink.accept(served(1))
    metrics_sink.follow([], docker_reachable=True)
    now[0] = 5.0
    metrics_sink.follow([WEB_INFO], docker_reachable=True)
    now[0] = 20.0
    assert metrics_sink.follow([WEB_INFO], docker_reachable=True) == []
    assert len(samples(metrics, "http_server_request_duration_seconds_count")) == 1


def test_health_is_read_from_the_latest_snapshot_at_scrape_time():
    snapshot = MonitorSnapshot(EngineSnapshot(0.0, MappingProxyType({"packets": 12, "gaps": 1, "tls_streams": 2,
                                                                     "tls_server_names": ["a"]})),
                               kernel_drops=3, queue_drops=4, docker_reachable=True, docker="1 containers",
                               containers=1, sniffers=MappingProxyType({"docker0": True, "br-x": False}))
    collected = Collected()
    metrics = Metrics(lambda: health_readings(snapshot, [collected], 100.0))
    values = {(name, tuple(sorted(labels.items()))): value for name in (
        "eyes_devine_packets_total", "eyes_devine_gaps_total", "eyes_devine_tls_streams_total",
        "eyes_devine_kernel_drops_total", "eyes_devine_queue_drops_total", "eyes_devine_sniffer_up",
        "eyes_devine_docker_up", "eyes_devine_sink_dropped_total") for labels, value in samples(metrics, name)}
    assert values == {
        ("eyes_devine_packets_total", ()): 12.0, ("eyes_devine_gaps_total", ()): 1.0,
        ("eyes_devine_tls_streams_total", ()): 2.0, ("eyes_devine_kernel_drops_total", ()): 3.0,
        ("eyes_devine_queue_drops_total", ()): 4.0, ("eyes_devine_docker_up", ()): 1.0,
        ("eyes_devine_sniffer_up", (("interface", "docker0"),)): 1.0,
        ("eyes_devine_sniffer_up", (("interface", "br-x"),)): 0.0,
        ("eyes_devine_sink_dropped_total", (("sink", "collected"),)): 0.0,
    }
    assert list(health_readings(None, [], 0.0)) == [], "before the first snapshot, no health"


def grpc_call(i: int, method: str, grpc_status: int, **changes: object):
    return served(i, target=f"/shop.Items/{method}", http_version="2", grpc_status=grpc_status,
                  request_messages=1, response_messages=1, content_type="application/grpc", **changes)


def test_grpc_calls_count_by_service_method_and_grpc_status_within_the_cap():
    metrics_sink, metrics = sink(max_routes=2)
    metrics_sink.accept(grpc_call(1, "Get", 0, duration_ms=3.0))
    metrics_sink.accept(grpc_call(2, "Get", 5))
    metrics_sink.accept(grpc_call(3, "List", 0))
    for i in range(50):  # methods past the cap count under {other}
        metrics_sink.accept(grpc_call(10 + i, f"Scan{i}", 12))
    metrics_sink.accept(served(99, target="/plain"))  # not gRPC: no RPC series
    counts = {(labels["rpc_service"], labels["rpc_method"], labels["rpc_grpc_status_code"]): value
              for labels, value in samples(metrics, "rpc_server_call_duration_seconds_count")}
    assert counts == {("shop.Items", "Get", "0"): 1.0, ("shop.Items", "Get", "5"): 1.0,
                      ("shop.Items", "List", "0"): 1.0, ("{other}", "{other}", "12"): 50.0}
    [labels] = [labels for labels, _ in samples(metrics, "rpc_server_call_duration_seconds_count")
                if labels["rpc_method"] == "List"]
    assert labels["container"] == "shop-web-1" and labels["rpc_system"] == "grpc"
    http = sum(v for labels, v in samples(metrics, "http_server_request_duration_seconds_count"))
    assert http == 54, "a gRPC call still counts as the HTTP request it is"


def test_a_removed_containers_grpc_series_go_with_its_other_series():
    clock = [0.0]
    metrics_sink, metrics = sink(grace_seconds=10, clock=lambda: clock[0])
    metrics_sink.accept(grpc_call(1, "Get", 0))
    metrics_sink.follow([], docker_reachable=True)
    clock[0] = 11.0
    assert metrics_sink.follow([], docker_reachable=True) == ["shop-web-1"]
    assert samples(metrics, "rpc_server_call_duration_seconds_count") == []
