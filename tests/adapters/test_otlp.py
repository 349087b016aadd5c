"""Exchanges as spans: the HTTP semantic conventions' attributes, the containers' resources, one trace per call."""

from __future__ import annotations

from opentelemetry.trace import SpanKind, StatusCode

from eyes_devine.adapters.otlp import Ends, SpanBuilder, is_error
from eyes_devine.records import ContainerInfo
from tests.support.records import API, WEB, make

WEB_INFO = ContainerInfo(WEB + "0" * 52, "shop-web-1", "nginx:1.25", "shop", "web")
API_INFO = ContainerInfo(API + "1" * 52, "api", "busybox")
BUILDER = SpanBuilder({"deployment.environment": "test"}, "host-a", "unknown_service")


def test_a_served_request_is_one_server_span_with_the_conventions_attributes():
    x = make(1, target="/items/7?token=REDACTED&page=2", host="shop.example:8080", user_agent="curl/8.5",
             ts=1000.0, latency_ms=1.5, duration_ms=4.0, container="shop-web-1", container_id=WEB)
    [span] = BUILDER.spans(x, Ends("/items/{id}", "GET", WEB_INFO, None))
    assert (span.name, span.kind, span.parent) == ("GET /items/{id}", SpanKind.SERVER, None)
    assert (span.start_time, span.end_time) == (1_000_000_000_000, 1_000_004_000_000), "first to last byte"
    assert dict(span.attributes) == {
        "http.request.method": "GET", "url.path": "/items/7", "url.query": "token=REDACTED&page=2",
        "url.scheme": "http", "http.route": "/items/{id}", "server.address": "shop.example", "server.port": 8080,
        "client.address": "172.17.0.3", "client.port": 40001, "network.peer.address": "172.17.0.3",
        "network.protocol.name": "http", "network.protocol.version": "1.1", "network.transport": "tcp",
        "http.request.body.size": 0, "http.response.status_code": 200, "http.response.body.size": 512,
        "user_agent.original": "curl/8.5", "eyes_devine.interface": "docker0",
    }
    assert dict(span.resource.attributes) == {
        "deployment.environment": "test", "service.name": "web", "container.name": "shop-web-1",
        "container.id": WEB_INFO.id, "container.image.name": "nginx:1.25", "docker.compose.project": "shop",
        "host.name": "host-a",
    }
    assert span.status.status_code is StatusCode.UNSET


def test_a_call_between_containers_is_a_client_and_a_server_span_in_one_trace():
    x = make(2, container="shop-web-1", container_id=WEB, client_container="api", client_container_id=API)
    client, server = BUILDER.spans(x, Ends("/items/{id}", "GET", WEB_INFO, API_INFO))
    assert (client.kind, server.kind) == (SpanKind.CLIENT, SpanKind.SERVER)
    assert client.context.trace_id == server.context.trace_id and server.parent == client.context
    assert client.resource.attributes["service.name"] == "api", "no compose service: the container's name"
    assert server.resource.attributes["service.name"] == "web"


def test_a_call_to_a_server_that_is_not_a_container_is_a_client_span_only():
    x = make(3, client_container="api", client_container_id=API, status=404, reason="Not Found")
    [client] = BUILDER.spans(x, Ends("/v1/charge", "GET", None, API_INFO))
    assert client.kind == SpanKind.CLIENT and client.attributes["error.type"] == "404", "4xx is a client's error"
    assert client.status.status_code is StatusCode.ERROR


def test_errors_flags_alerts_and_odd_methods():
    failed = make(4, status=503, reason="Busy", method="BREW", alerts=("sensitive-path",), flags=("gap",))
    [span] = BUILDER.spans(failed, Ends("/.env", "_OTHER", None, None))
    assert span.name == "HTTP /.env" and span.attributes["http.request.method"] == "_OTHER"
    assert span.attributes["http.request.method_original"] == "BREW"
    assert (span.attributes["error.type"], span.status.status_code) == ("503", StatusCode.ERROR)
    assert [(e.name, dict(e.attributes)) for e in span.events] == [("eyes_devine.alert", {"eyes_devine.rule":
                                                                                         "sensitive-path"})]
    assert span.resource.attributes["service.name"] == "unknown_service"
    unanswered = make(5, status=None, reason=None, latency_ms=None, duration_ms=None, flags=("no_response",))
    [span] = BUILDER.spans(unanswered, Ends("/", "GET", None, None))
    assert span.attributes["error.type"] == "no_response" and "http.response.status_code" not in span.attributes
    assert is_error(unanswered) and is_error(failed) and not is_error(make(6))
    assert BUILDER.spans(make(7, flags=("gap",)), Ends("/", "GET", None, None))[0].attributes["error.type"] == "gap"


def test_a_host_header_with_an_ipv6_address_or_no_port_splits_as_the_conventions_say():
    for host, address, port in (("[::1]:9000", "::1", 9000), ("shop", "shop", 80), (None, "172.17.0.2", 80)):
        [span] = BUILDER.spans(make(8, host=host), Ends("/", "GET", None, None))
        assert (span.attributes["server.address"], span.attributes["server.port"]) == (address, port)


def test_a_host_port_that_is_not_a_port_falls_back_to_the_connections_and_never_ends_the_export():
    for host in ("shop:²", "shop:99999", "shop:0", "shop:"):
        [span] = BUILDER.spans(make(9, host=host), Ends("/", "GET", None, None))
        assert (span.attributes["server.address"], span.attributes["server.port"]) == ("shop", 80)


def test_a_client_spans_peer_is_the_server_and_long_texts_are_cut():
    x = make(10, target="/a" * 5000 + "?q=" + "b" * 5000, user_agent="u" * 5000, client_container="api",
             client_container_id=API)
    [client] = BUILDER.spans(x, Ends("/{other}", "GET", None, API_INFO))
    assert (client.attributes["network.peer.address"], client.attributes["network.peer.port"]) == ("172.17.0.2", 80)
    assert max(len(client.attributes[key]) for key in ("url.path", "url.query", "user_agent.original")) == 2048


def test_a_grpc_call_carries_the_rpc_conventions_and_its_failure():
    x = make(9, method="POST", target="/shop.Catalog/Get", http_version="2", grpc_status=14,
             grpc_message="connection refused", request_messages=1, response_messages=0,
             container="shop-web-1", container_id=WEB, client_container="api", client_container_id=API)
    client, server = BUILDER.spans(x, Ends("/shop.Catalog/Get", "POST", WEB_INFO, API_INFO))
    for span in (client, server):
        assert (span.attributes["rpc.system"], span.attributes["rpc.service"], span.attributes["rpc.method"],
                span.attributes["rpc.grpc.status_code"]) == ("grpc", "shop.Catalog", "Get", 14)
        assert (span.attributes["error.type"], span.status.status_code) == ("14", StatusCode.ERROR)
    not_found = x._replace(grpc_status=5)
    client, server = BUILDER.spans(not_found, Ends("/shop.Catalog/Get", "POST", WEB_INFO, API_INFO))
    assert client.attributes["error.type"] == "5" and "error.type" not in server.attributes, "NOT_FOUND: the caller's"
    assert is_error(not_found) and not is_error(x._replace(grpc_status=0))


def test_a_request_decrypted_from_tls_has_the_https_scheme():
    [span] = BUILDER.spans(make(9, flags=("tls",), container="shop-web-1", container_id=WEB),
                           Ends("/", "GET", WEB_INFO, None))
    assert span.attributes["url.scheme"] == "https" and tuple(span.attributes["eyes_devine.flags"]) == ("tls",)
