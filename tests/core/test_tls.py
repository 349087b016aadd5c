"""TLS ClientHello recognition and SNI extraction."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eyes_devine.core.tls import looks_like_tls, parse_client_hello_sni, record_length
from tests.support.tls import client_hello


def test_sni_is_read_from_a_client_hello() -> None:
    assert parse_client_hello_sni(client_hello("API.Example.com")) == "api.example.com"


def test_sni_after_other_extensions_is_found() -> None:
    assert parse_client_hello_sni(client_hello("late.example", padding=600, sni_last=True)) == "late.example"


def test_client_hello_without_sni_gives_none() -> None:
    hello = client_hello(None)
    assert looks_like_tls(hello)
    assert parse_client_hello_sni(hello) is None


def test_sni_is_read_from_a_truncated_record_when_present() -> None:
    hello = client_hello("early.example", padding=3000, sni_last=False)
    assert parse_client_hello_sni(hello[:200]) == "early.example"


def test_record_length_covers_the_whole_record() -> None:
    hello = client_hello(padding=100)
    assert record_length(hello) == len(hello)


def test_http_and_other_records_are_not_client_hellos() -> None:
    assert not looks_like_tls(b"GET / HTTP/1.1\r\n\r\n")
    assert not looks_like_tls(b"\x17\x03\x03\x00\x10" + bytes(16))  # application data
    assert not looks_like_tls(b"\x16\x03\x03\x00\x10\x02")  # ServerHello
    assert not looks_like_tls(b"\x16\x03")


def test_hostile_server_name_is_rejected() -> None:
    assert parse_client_hello_sni(client_hello("evil\r\nname")) is None


@given(st.binary(max_size=300))
def test_any_bytes_never_raise(data: bytes) -> None:
    looks_like_tls(data)
    parse_client_hello_sni(data)


@given(st.integers(min_value=0, max_value=400), st.binary(min_size=1, max_size=8), st.integers(min_value=0))
def test_corrupted_client_hellos_never_raise(position: int, junk: bytes, cut: int) -> None:
    hello = bytearray(client_hello("x.example", padding=50))
    position %= len(hello)
    hello[position : position + len(junk)] = junk
    data = bytes(hello[: max(6, cut % (len(hello) + 1))])
    result = parse_client_hello_sni(data)
    assert result is None or isinstance(result, str)
