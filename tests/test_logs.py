"""`run`'s log lines: one per event, text for people, JSON for shippers."""

from __future__ import annotations

import io
import json

import pytest

from eyes_devine.logs import ServiceLog


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
