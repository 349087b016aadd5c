"""TLS decrypted with a key log, from a committed capture (tests/pcaps/tls-keylog.pcap, recorded by
tests.pcaps.record with nginx and curl): bytes and secrets in, exchanges out, and hostile rewrites of it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from eyes_devine.adapters.pcapfile import CaptureFile
from eyes_devine.core.engine import Engine
from eyes_devine.core.http.framing import HttpLimits
from eyes_devine.core.tls.cipher import TLS13_SUITES, hkdf_expand_label, tls13_keys
from eyes_devine.core.tls.keylog import KeyLog
from eyes_devine.records import EngineCounters, Exchange
from tests.support import rewrite
from tests.support.tls_lab import BIG, UPLOAD

PCAPS_DIR = Path(__file__).resolve().parents[1] / "pcaps"
PCAP = str(PCAPS_DIR / "tls-keylog.pcap")
KEYS = str(PCAPS_DIR / "tls-keylog.keys")

# target -> (method, status, http_version, request_bytes, response_bytes)
EXPECTED = {
    "/h1-tls13": ("GET", 200, "1.1", 0, 4),
    "/h1-tls12?token=REDACTED": ("GET", 200, "1.1", 0, 4),
    "/h2-tls13": ("GET", 200, "2", 0, 4),
    "/missing": ("GET", 404, "2", 0, 5),
    "/h2-tls12": ("GET", 200, "2", 0, 4),
    "/chacha-tls12": ("GET", 200, "1.1", 0, 4),
    "/chacha-tls13": ("GET", 200, "1.1", 0, 4),
    "/big": ("GET", 200, "2", 0, BIG),
    "/upload": ("POST", 200, "1.1", UPLOAD, 7),
}


def key_log() -> KeyLog:
    log = KeyLog()
    with open(KEYS) as file:
        log.feed(file.read())
    return log


def run(frames, keys=None) -> tuple[list[Exchange], EngineCounters]:
    exchanges: list[Exchange] = []
    engine = Engine(exchanges.append, (443,), only_server_ports=True, http_limits=HttpLimits(tls_keys=keys))
    for linktype, ts, frame in frames:
        engine.feed(linktype, ts, frame, "lab")
    engine.finish()
    return exchanges, engine.counters


def table(exchanges: list[Exchange]) -> dict[str, tuple]:
    found = {x.target: (x.method, x.status, x.http_version, x.request_bytes, x.response_bytes) for x in exchanges}
    assert len(found) == len(exchanges), "an exchange was reported twice"
    return found


@pytest.fixture(scope="module")
def frames():
    return list(CaptureFile(PCAP))


def test_every_connection_is_decrypted_into_the_exchanges_nginx_served(frames):
    exchanges, counters = run(frames, key_log())
    assert table(exchanges) == EXPECTED
    assert all(x.flags == ("tls",) and x.host == "web.test" for x in exchanges)
    assert counters.tls_streams == counters.tls_decrypted == 8 and counters.non_http_streams == 0


def test_without_the_keys_tls_is_counted_and_named_as_before(frames):
    exchanges, counters = run(frames)
    assert exchanges == [] and counters.tls_streams == 8 and counters.tls_decrypted == 0
    assert counters.tls_server_names == ["web.test"]


def test_keys_missing_from_the_log_leave_only_those_connections_undecrypted(frames):
    log = KeyLog()
    with open(KEYS) as file:
        log.feed("".join(line for line in file if "TRAFFIC_SECRET_0" not in line))  # TLS 1.3's are gone
    exchanges, counters = run(frames, log)
    assert sorted(x.target for x in exchanges) == ["/chacha-tls12", "/h1-tls12?token=REDACTED", "/h2-tls12"]
    assert counters.tls_decrypted == 3


class LateLog:
    """A key log that has a connection's secrets only from the ``delay``-th question about it on: secrets that
    reach the file after the records (live, the client writes them as it goes)."""

    def __init__(self, delay: int) -> None:
        self.log, self.delay = key_log(), delay
        self.asked: dict[bytes, int] = {}

    def secrets(self, client_random: bytes):
        asked = self.asked[client_random] = self.asked.get(client_random, 0) + 1
        return self.log.secrets(client_random) if asked >= self.delay else None


def test_records_wait_for_secrets_that_come_late(frames):
    late = LateLog(delay=4)
    exchanges, _ = run(frames, late)
    assert table(exchanges) == EXPECTED and len(late.asked) == 8


def test_secrets_that_come_only_as_the_connection_closes_still_open_it(frames):
    """The last question is asked at the close: a connection whose every record waited is decrypted then."""
    questions = LateLog(delay=10**6)  # never answers: counts the questions about each connection
    run(frames, questions)

    class AtClose(LateLog):
        def secrets(self, client_random: bytes):
            asked = self.asked[client_random] = self.asked.get(client_random, 0) + 1
            return self.log.secrets(client_random) if asked == questions.asked[client_random] else None

    exchanges, _ = run(frames, AtClose(0))
    assert table(exchanges) == EXPECTED


def test_without_the_handshake_secrets_the_alpn_offer_picks_the_decoder(frames):
    log = KeyLog()
    with open(KEYS) as file:
        log.feed("".join(line for line in file if "HANDSHAKE" not in line))
    exchanges, _ = run(frames, log)
    # curl offers h2 and http/1.1: without EncryptedExtensions, HTTP/1.x is tried, which still sees h2's preface.
    assert table(exchanges) == EXPECTED


def tampered(frames, marker_index: int) -> list:
    """The capture with one byte flipped in the ``marker_index``-th server record of /big's connection."""
    big_port = None
    out, seen = [], 0
    for linktype, ts, frame in frames:
        packet = Ether(frame)
        if TCP in packet and packet[TCP].sport == 443 and len(bytes(packet[TCP].payload)) > 1000:
            if big_port is None:
                big_port = packet[TCP].dport
            if packet[TCP].dport == big_port:
                seen += 1
                if seen == marker_index:
                    payload = bytearray(bytes(packet[TCP].payload))
                    payload[-1] ^= 0xFF
                    packet[TCP].remove_payload()
                    packet = packet / bytes(payload)
                    del packet[IP].chksum, packet[IP].len, packet[TCP].chksum
                    frame = bytes(packet)
        out.append((linktype, ts, frame))
    return out


def test_a_record_that_fails_authentication_ends_its_direction_and_nothing_else(frames):
    exchanges, _ = run(tampered(frames, 3), key_log())
    found = {x.target: x for x in exchanges}
    assert set(found) == set(EXPECTED), "every other exchange is whole"
    big = found["/big"]
    assert big.status == 200 and big.response_bytes < BIG and "gap" in big.flags and "tls" in big.flags
    assert all(not set(x.flags) - {"tls"} for target, x in found.items() if target != "/big")


def test_bytes_that_are_not_records_after_a_client_hello_are_no_crash():
    from tests.support.conn import Conn
    from tests.support.tls import client_hello

    conn = Conn(limits=HttpLimits(tls_keys=KeyLog()))
    conn.client(client_hello(), ts=1.0)
    conn.server(b"\x16\x03\x03\x00\x05\x02\x00\x00\x01\x00" + b"HTTP/1.1 200 OK\r\n\r\n", ts=1.1)
    conn.client(bytes(range(256)), ts=1.2)
    assert conn.close() == [] and conn.counters.tls_streams == 1 and conn.counters.tls_decrypted == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), reorder=st.booleans(), duplicate=st.booleans(), split=st.booleans())
def test_same_exchanges_whatever_the_segmentation_and_order(frames, seed, reorder, duplicate, split):
    rng = random.Random(seed)
    mutated = list(frames)
    if split:
        mutated = rewrite.split(mutated, rng)
    if reorder:
        mutated = rewrite.reorder(mutated, rng)
    if duplicate:
        mutated = rewrite.duplicate(mutated, rng)
    exchanges, _ = run(mutated, key_log())
    assert table(exchanges) == EXPECTED


@given(cut=st.integers(0, 145))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_capture_cut_anywhere_or_missing_any_packet_never_crashes(frames, cut):
    run(frames[:cut], key_log())
    exchanges, _ = run(frames[:cut] + frames[cut + 1:], key_log())
    assert set(table(exchanges)) <= set(EXPECTED), "nothing invented"


def test_the_tls13_key_schedule_matches_rfc_8448():
    """RFC 8448 3 (Simple 1-RTT Handshake): the server's handshake traffic secret and the key and IV it gives."""
    suite = TLS13_SUITES[0x1301]
    secret = bytes.fromhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
    assert hkdf_expand_label(suite, secret, b"key", 16).hex() == "3fce516009c21727d0f2e4e86ee403bc"
    assert hkdf_expand_label(suite, secret, b"iv", 12).hex() == "5d313eb2671276ee13000b30"
    assert tls13_keys(suite, secret).secret == secret


def test_the_key_log_reads_what_writers_write_and_skips_the_rest():
    log = KeyLog(max_sessions=2)
    random_a, random_b, random_c = "aa" * 32, "bb" * 32, "cc" * 32
    log.feed(f"# SSL/TLS secrets log file, generated by NSS\nCLIENT_RANDOM {random_a} {'11' * 48}\n")
    log.feed(f"CLIENT_TRAFFIC_SECRET_0 {random_b} {'22' * 32}\nSERVER_TRAFFIC_SECRET_0 {random_b} ")
    assert log.secrets(bytes.fromhex(random_b)) == {"CLIENT_TRAFFIC_SECRET_0": bytes.fromhex("22" * 32)}
    log.feed(f"{'33' * 32}\n")  # the rest of a line its writer was still writing
    assert set(log.secrets(bytes.fromhex(random_b))) == {"CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"}
    log.feed(f"CLIENT_RANDOM {random_c[:10]} {'11' * 48}\nBOGUS {random_c} {'11' * 48}\nCLIENT_RANDOM zz 11\n\n")
    assert log.rejected == 3
    log.feed(f"CLIENT_RANDOM {random_c} {'44' * 48}\n")
    assert len(log) == 2 and log.secrets(bytes.fromhex(random_a)) is None, "the oldest session went first"


@pytest.mark.parametrize(("name", "target"), [("tls13-hello-retry", "/after-hrr"),
                                              ("tls13-key-update", "/after-keyupdate")])
def test_openssl_s_server_captures_decrypt(name, target):
    """Recorded on lo with OpenSSL 3.0's s_server -www and s_client (ports rewritten to 443):
    a HelloRetryRequest (`s_server -groups P-384`, `s_client -groups X25519:P-384`), which is followed by a
    middlebox ChangeCipherSpec and a second, cleartext ServerHello; and KeyUpdates both ways (s_client's `k`
    command before and after the request), after which each direction opens records with its next secret."""
    log = KeyLog()
    log.feed((PCAPS_DIR / f"{name}.keys").read_text())
    exchanges, counters = run(CaptureFile(str(PCAPS_DIR / f"{name}.pcap")), log)
    assert [(x.method, x.target, x.status, x.flags) for x in exchanges] == [("GET", target, 200, ("tls",))]
    assert exchanges[0].response_bytes > 4000 and counters.tls_decrypted == 1


class Counting:
    """A key log without this connection's secrets, counting the questions."""

    def __init__(self) -> None:
        self.asked = 0

    def secrets(self, client_random: bytes):
        self.asked += 1
        return None


def server_hello_record(suite: int = 0x1301) -> bytes:
    body = b"\x03\x03" + bytes(range(32)) + b"\x00" + suite.to_bytes(2, "big") + b"\x00"
    body += b"\x00\x06" + b"\x00\x2b\x00\x02\x03\x04"  # supported_versions: TLS 1.3
    handshake = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + len(handshake).to_bytes(2, "big") + handshake


def test_records_wait_for_secrets_ten_capture_seconds_then_the_connection_is_left_alone():
    from tests.support.conn import Conn
    from tests.support.tls import client_hello

    keys = Counting()
    conn = Conn(limits=HttpLimits(tls_keys=keys))
    conn.client(client_hello(), ts=1.0)
    conn.server(server_hello_record(), ts=1.1)
    record = b"\x17\x03\x03\x00\x20" + bytes(32)
    conn.server(record, ts=5.0)
    conn.client(record, ts=9.0)
    asked = keys.asked
    assert asked >= 2, "asked again with each record while waiting"
    conn.server(record, ts=11.2)  # more than ten seconds after the ServerHello: given up
    conn.client(record * 100, ts=12.0)
    assert conn.close() == [] and keys.asked == asked and conn.counters.tls_decrypted == 0


def test_a_suite_that_is_not_aead_is_left_alone_at_once():
    from tests.support.conn import Conn
    from tests.support.tls import client_hello

    keys = Counting()
    conn = Conn(limits=HttpLimits(tls_keys=keys))
    conn.client(client_hello(), ts=1.0)
    conn.server(server_hello_record(suite=0x1304), ts=1.1)  # TLS_AES_128_CCM_SHA256
    conn.server(b"\x17\x03\x03\x00\x20" + bytes(32), ts=1.2)
    assert conn.close() == [] and keys.asked == 0
