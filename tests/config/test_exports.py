"""Where the record goes besides the database: --metrics and the standard OTEL_* variables, read as specified."""

from __future__ import annotations

import pytest

from eyes_devine.config import ConfigError, Settings


def build(environ: dict[str, str] | None = None, **flags: object) -> Settings:
    return Settings.build(environ or {}, exports=True, **flags)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "address", "port"), [
    ("9464", "127.0.0.1", 9464),
    ("127.0.0.1:9100", "127.0.0.1", 9100),
    ("0.0.0.0:9464", "0.0.0.0", 9464),
    ("[::1]:9464", "::1", 9464),
    ("[::]:9464", "::", 9464),
    ("metrics.internal:80", "metrics.internal", 80),
])
def test_a_bare_port_stays_on_this_host_and_a_wider_bind_is_written_out(value, address, port):
    metrics = build(metrics=value).metrics
    assert (metrics.address, metrics.port) == (address, port)
    assert metrics.max_routes == 100


@pytest.mark.parametrize("value", [":9464", "0", "65536", "9464x", "::1:9464", "http://x:9", "²", ""])
def test_a_metrics_address_that_is_not_one_is_refused_naming_the_flag(value):
    with pytest.raises(ConfigError, match="^--metrics: "):
        build(metrics=value) if value else build({"EYES_DEVINE_METRICS": " "}, metrics="")


def test_metrics_are_off_unless_asked_and_the_variable_asks_too():
    assert build().metrics is None
    assert build({"EYES_DEVINE_METRICS": "9100", "EYES_DEVINE_MAX_ROUTES": "7"}).metrics.max_routes == 7
    assert build({"EYES_DEVINE_METRICS": "9100"}, metrics="9200").metrics.port == 9200


@pytest.mark.parametrize("routes", [0, 10_001])
def test_the_route_cap_is_bounded(routes):
    with pytest.raises(ConfigError, match="--max-routes: .* is not a whole number from 1 to 10,000"):
        build(metrics="9464", max_routes=routes)


def test_otlp_base_url_gets_the_traces_path_as_the_specification_says():
    assert build({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}).otlp.endpoint == \
        "http://collector:4318/v1/traces"
    assert build({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c.example/otlp/"}).otlp.endpoint == \
        "https://c.example/otlp/v1/traces"
    assert build(otlp="http://c:4318/v1/traces").otlp.endpoint == "http://c:4318/v1/traces"
    traces = build({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b/x"})
    assert (traces.otlp.endpoint, traces.otlp.source) == ("http://b/x", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    grpc = build({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}).otlp
    assert (grpc.endpoint, grpc.protocol) == ("http://c:4317", "grpc")


def test_otlp_headers_resource_and_service_name_are_parsed_with_percent_decoding():
    otlp = build({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                  "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s3cr%20et, x-team=web",
                  "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,service.namespace=shop",
                  "OTEL_SERVICE_NAME": "edge", "OTEL_EXPORTER_OTLP_TIMEOUT": "2500"}).otlp
    assert otlp.headers == {"api-key": "s3cr et", "x-team": "web"}
    assert otlp.resource == {"deployment.environment": "prod", "service.namespace": "shop"}
    assert (otlp.service_name, otlp.timeout_seconds, otlp.sample) == ("edge", 2.5, 1.0)
    assert "s3cr" not in repr(otlp), "headers may hold an API key: never printed"


def test_service_name_comes_from_otel_service_name_else_the_resource_attributes_as_the_specification_says():
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_RESOURCE_ATTRIBUTES": "service.name=edge"}
    assert build(base).otlp.service_name == "edge"
    assert build({**base, "OTEL_SERVICE_NAME": "gateway"}).otlp.service_name == "gateway"


def test_otlp_is_off_without_an_endpoint_or_when_the_sdk_is_disabled():
    assert build().otlp is None
    assert build({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}).otlp is None
    assert build({"OTEL_SDK_DISABLED": "true"}, otlp="http://c:4318").otlp is not None


def test_commands_that_do_not_export_ignore_the_otel_variables():
    broken = {"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://nowhere", "EYES_DEVINE_METRICS": "nonsense"}
    settings = Settings.build(broken)
    assert (settings.metrics, settings.otlp) == (None, None)


@pytest.mark.parametrize(("environ", "flags", "message"), [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://c"}, {}, "OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://c' is not an http"),
    ({}, {"otlp": "collector:4318"}, "--otlp: 'collector:4318' is not an http"),
    ({}, {"otlp": "http://c:port"}, "--otlp: 'http://c:port' has a port that is not a number"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, {},
     "OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' is not one eyes-devine sends"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, {},
     "OTEL_EXPORTER_OTLP_HEADERS: 'novalue' is not key=value"),
    ({}, {"otlp": "http://c", "otlp_sample": "1.5"}, "--otlp-sample: '1.5' is not a number from 0 to 1"),
    ({}, {"otlp": "http://c", "otlp_sample": "nan"}, "--otlp-sample: 'nan' is not a number from 0 to 1"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_TIMEOUT": "-1"}, {},
     "OTEL_EXPORTER_OTLP_TIMEOUT: '-1' is not a number of milliseconds"),
])
def test_bad_otlp_settings_are_one_message_naming_the_source(environ, flags, message):
    with pytest.raises(ConfigError) as error:
        build(environ, **flags)
    assert str(error.value).startswith(message)
