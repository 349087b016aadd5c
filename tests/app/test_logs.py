"""`run`'s log lines: one per event, text for people, JSON for shippers."""

from __future__ import annotations

import io
import json

import pytest

from eyes_devine.app.logs import ServiceLog


def test_text_lines_carry_fields_as_key_value_quoting_what_has_spaces() -> None:
    stream = io.StringIO()
    ServiceLog(stream).info("capturing", interfaces="docker0,br-1", filter="tcp and (port 80)")
    ServiceLog(stream).warning("capture on veth1 stopped")
    first, second = stream.getvalue().splitlines()
    assert first.endswith(' capturing interfaces=docker0,br-1 filter="tcp and (port 80)"')
    assert second.endswith(" WARNING: capture on veth1 stopped")


def test_json_lines_are_one_object_each_with_level_message_and_fields() -> None:
    stream = io.StringIO()
    ServiceLog(stream, "json").info("batch stored", rows=12, ms=0.8)
    record = json.loads(stream.getvalue())
    assert (record["level"], record["msg"], record["rows"], record["ms"]) == ("info", "batch stored", 12, 0.8)
    assert isinstance(record["ts"], float)


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError):
        ServiceLog(io.StringIO(), "xml")


def test_values_with_control_characters_cannot_forge_a_log_line() -> None:
    stream = io.StringIO()
    ServiceLog(stream).warning("alert", target="/x\n2026-01-01T00:00:00 stopped\x1b[2J")
    [line] = stream.getvalue().splitlines()
    assert '\\n2026-01-01T00:00:00 stopped\\u001b[2J"' in line


def test_alert_lines_are_capped_per_second_and_the_rest_counted() -> None:
    import time

    from eyes_devine.app.outputs import ALERT_LINES_PER_SECOND, AlertLogSink
    from tests.support.records import make

    stream = io.StringIO()
    sink = AlertLogSink(ServiceLog(stream, "json"))
    for i in range(100):
        sink.accept(make(i, alerts=("sql-injection",)))
    sink.accept(make(0))  # no alert: no line, not counted
    assert sink.flush(5)
    burst = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert ALERT_LINES_PER_SECOND <= len(burst) <= 2 * ALERT_LINES_PER_SECOND  # at most one second boundary
    time.sleep(1.05)
    sink.accept(make(100, alerts=("xss",)))
    sink.close(5)
    last = json.loads(stream.getvalue().splitlines()[-1])
    reported = sum(line.get("not_logged", 0) for line in burst)  # if the burst crossed a second boundary
    assert last["rules"] == "xss" and last["not_logged"] == 100 - len(burst) - reported


HOSTILE = "web\x1b]0;pwned\x07\x1b[2J\u202egnp.exe\x9b"


def test_text_lines_show_outside_text_escaped_in_the_message_and_quoted_in_fields() -> None:
    stream = io.StringIO()
    ServiceLog(stream).warning(f"Docker: lost {HOSTILE}", container=HOSTILE)
    [line] = stream.getvalue().splitlines()
    assert line.isprintable()
    assert " WARNING: Docker: lost web\\x1b]0;pwned\\x07\\x1b[2J\\u202egnp.exe\\x9b container=" in line
    assert json.loads(line.split(" container=", 1)[1]) == HOSTILE  # the field, JSON-quoted, is exact


def test_json_lines_are_ascii_and_keep_the_exact_text() -> None:
    stream = io.StringIO()
    ServiceLog(stream, "json").warning(HOSTILE, target=HOSTILE)
    line = stream.getvalue().rstrip("\n")
    assert line.isascii() and line.isprintable()  # no raw ESC, C1 or U+202E for a terminal to act on
    record = json.loads(line)
    assert record["msg"] == record["target"] == HOSTILE
