"""Suspicious-request rules: each fires on the attacks it names and stays quiet on ordinary requests."""

from __future__ import annotations

import pytest

from eyes_devine.config import Settings
from eyes_devine.core.redact import redact_target, redact_user_agent
from eyes_devine.enrich.annotator import build_annotator
from eyes_devine.enrich.rules import (
    BURST_4XX,
    BURST_THRESHOLD,
    BURST_WINDOW,
    PATH_TRAVERSAL,
    RULE_IDS,
    SCANNER_USER_AGENT,
    SENSITIVE_PATH,
    SQL_INJECTION,
    VERDICT_CACHE,
    XSS,
    RuleSet,
    decode_target,
    is_scanner,
    target_rules,
)
from eyes_devine.records import Exchange
from tests.support.records import with_fields

T0 = 1_800_000_000.0


def exchange(target: str = "/", **changes: object) -> Exchange:
    x = Exchange(
        ts=T0, interface="docker0", client_ip="203.0.113.9", client_port=40000, server_ip="172.17.0.2",
        server_port=80, method="GET", target=target, host="web", http_version="1.1", status=200, reason="OK",
        latency_ms=1.0, duration_ms=1.0, request_bytes=0, response_bytes=10,
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0",
        content_type="text/html",
    )
    return with_fields(x, **changes)  # type: ignore[return-value]


ORDINARY = [
    "/", "/index.html", "/static/js/app.3f2a1b.min.js", "/favicon.ico?v=2", "/api/v1/items/12345?page=3&sort=name",
    "/search?q=red+dress&page=2", "/search?q=caf%C3%A9", "/search?q=O%27Reilly+books", "/search?q=it%27s+or+not",
    "/search?q=%22red+shoes%22+and+size%3D10", "/search?q=javascript:+the+good+parts", "/search?q=black or white",
    "/recaptcha/api.js?onload=onloadCallback&render=explicit", "/wiki/Python_(programming_language)",
    "/img/a..b.png", "/range?r=1..5", "/docs/actuator-guide", "/my.env", "/environment", "/app/config.ini",
    "/wp-admin/admin-ajax.php", "/actuator/health", "/actuator/health/liveness", "/gitlab/",
    "/.well-known/acme-challenge/x", "/api/db_schema?v=2", "/contact?email=a@example.com",
    "/color?c=%22%23fff%22", "/a%2Fb", "/union-station/map", "/sleep-tips?page=1", "/awesome/.github-issue",
    "http://example.com/index.html", "/hello?token=REDACTED&page=2", "/unicode/%E2%9C%93",
]


@pytest.mark.parametrize("target", ORDINARY)
def test_ordinary_targets_match_no_rule(target: str) -> None:
    assert target_rules(target) == ()


@pytest.mark.parametrize(("target", "rule"), [
    ("/../../etc/passwd", PATH_TRAVERSAL),
    ("/static/..%2f..%2f..%2fetc%2fshadow", PATH_TRAVERSAL),
    ("/%2e%2e/%2e%2e/etc/hosts", PATH_TRAVERSAL),
    ("/download?file=..\\..\\windows\\win.ini", PATH_TRAVERSAL),
    ("/?f=c:\\windows\\system32\\drivers", PATH_TRAVERSAL),
    ("/?page=/etc/passwd", PATH_TRAVERSAL),
    ("/?page=/proc/self/environ", PATH_TRAVERSAL),
    ("/..;/manager/html", PATH_TRAVERSAL),
    ("http://victim/../etc/passwd", PATH_TRAVERSAL),
    ("/?id=1%27%20OR%201%3D1--", SQL_INJECTION),
    ("/?user=admin'--", SQL_INJECTION),
    ("/?q=x' or 'a'='a", SQL_INJECTION),
    ("/?q=%22+or+%221%22%3D%221", SQL_INJECTION),
    ("/?id=1+or+1=1", SQL_INJECTION),
    ("/?id=1+UNION+ALL+SELECT+NULL,NULL", SQL_INJECTION),
    ("/?id=1/**/union/**/select/**/1", SQL_INJECTION),
    ("/?id=1+AND+SLEEP(5)", SQL_INJECTION),
    ("/?id=1;SELECT+pg_sleep(5)", SQL_INJECTION),
    ("/?id=BENCHMARK(5000000,MD5(1))", SQL_INJECTION),
    ("/?t=information_schema.tables", SQL_INJECTION),
    ("/?q=<script>alert(1)</script>", XSS),
    ("/?q=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", XSS),
    ("/?q=%3Csvg/onload=confirm(1)%3E", XSS),
    ("/?next=javascript:alert(document.domain)", XSS),
    ("/?q=%22%20onmouseover%3D%22prompt(1)", XSS),
    ("/?q=<iframe+src=//evil>", XSS),
    ("/.env", SENSITIVE_PATH),
    ("/.env.production", SENSITIVE_PATH),
    ("/backend/.env", SENSITIVE_PATH),
    ("/.git/config", SENSITIVE_PATH),
    ("/.git/HEAD", SENSITIVE_PATH),
    ("/wp-admin", SENSITIVE_PATH),
    ("/blog/wp-admin/install.php", SENSITIVE_PATH),
    ("/wp-login.php", SENSITIVE_PATH),
    ("/phpmyadmin/", SENSITIVE_PATH),
    ("/phpMyAdmin-4.9.0/index.php", SENSITIVE_PATH),
    ("/.aws/credentials", SENSITIVE_PATH),
    ("/server-status", SENSITIVE_PATH),
    ("/.DS_Store", SENSITIVE_PATH),
    ("/config.php", SENSITIVE_PATH),
    ("/wp-config.php.bak", SENSITIVE_PATH),
    ("/actuator", SENSITIVE_PATH),
    ("/actuator/env", SENSITIVE_PATH),
    ("/ACTUATOR/heapdump", SENSITIVE_PATH),
])
def test_each_attack_matches_exactly_its_rule(target: str, rule: str) -> None:
    assert target_rules(target) == (rule,)


@pytest.mark.parametrize(("target", "rule"), [
    ("/%252e%252e/%252e%252e/etc/passwd", PATH_TRAVERSAL),  # double encoding
    ("/%25252e%25252e%25252fetc%25252fpasswd", PATH_TRAVERSAL),  # triple
    ("/?id=1%2527%2520or%25201%253D1--", SQL_INJECTION),
    ("/?q=%253Cscript%253Ealert(1)%253C/script%253E", XSS),
    ("/%252Eenv", SENSITIVE_PATH),
])
def test_double_and_triple_encoding_are_decoded(target: str, rule: str) -> None:
    assert target_rules(target) == (rule,)


def test_decoding_stops_after_three_rounds() -> None:
    quadruple = "/%2525252e%2525252e%2525252fetc%2525252fpasswd"
    assert decode_target(quadruple)[1] == "/%2e%2e%2fetc%2fpasswd"
    assert target_rules(quadruple) == ()


def test_plus_is_a_space_in_the_query_and_the_path_ends_at_the_question_mark_sent() -> None:
    assert decode_target("/A+B/%2Eenv%3Fx?Q=a+b%2Bc") == ("/a+b/.env?x", "/a b/.env?x?q=a b+c")
    assert decode_target("http://Host:8080/X?y=1") == ("/x", "/x?y=1")


def test_one_target_can_match_several_rules_in_rule_order() -> None:
    assert target_rules("/phpmyadmin/?q=<script>x</script>&id=1'+or+1=1--") == (SQL_INJECTION, XSS, SENSITIVE_PATH)


@pytest.mark.parametrize(("sent", "rule"), [
    ("/app;jsessionid=s3cr3t/../../etc/passwd", PATH_TRAVERSAL),
    ("/cb?id_token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln&q=<script>alert(1)</script>", XSS),
    ("/login?next=/reset?token=t&id=1'+or+1=1--", SQL_INJECTION),
    ("http://admin:pw@victim/../etc/passwd", PATH_TRAVERSAL),
])
def test_the_rules_see_what_redaction_keeps(sent: str, rule: str) -> None:
    stored = redact_target(sent)
    assert "REDACTED" in stored
    assert target_rules(stored) == (rule,)


def test_a_scanner_is_still_recognised_once_its_user_agent_is_redacted() -> None:
    agent = redact_user_agent("sqlmap/1.8#stable (token=abc)")
    assert agent == "sqlmap/1.8#stable (token=REDACTED)" and is_scanner(agent)


@pytest.mark.parametrize("agent", [
    "sqlmap/1.7.2#stable (https://sqlmap.org)", "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)",
    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)", "Mozilla/5.0 zgrab/0.x",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)", "WPScan v3.8.22 (https://wpscan.com/)",
    "DirBuster-1.0-RC1 (http://www.owasp.org/index.php/Category:OWASP_DirBuster_Project)", "gobuster/3.6",
    "Mozilla/5.0 Acunetix-Product", "Netsparker", "Fuzz Faster U Fool v2.1.0",
])
def test_scanner_user_agents_are_recognised(agent: str) -> None:
    assert is_scanner(agent)
    assert RuleSet().match(exchange(user_agent=agent)) == (SCANNER_USER_AGENT,)


@pytest.mark.parametrize("agent", [
    "Go-http-client/1.1", "curl/8.5.0", "python-requests/2.31", "Wget/1.21", "kube-probe/1.29",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "libnmap-parser/0.1", "Prometheus/2.51", "",
])
def test_ordinary_user_agents_are_not_scanners(agent: str) -> None:
    assert not is_scanner(agent)


def test_a_missing_user_agent_is_fine() -> None:
    assert RuleSet().match(exchange(user_agent=None)) == ()


def errors(rules: RuleSet, count: int, client: str = "203.0.113.9", start: float = T0, step: float = 0.1,
           status: int = 404) -> list[tuple[str, ...]]:
    return [rules.match(exchange(f"/missing/{i}", client_ip=client, status=status, ts=start + i * step))
            for i in range(count)]


def test_the_twentieth_4xx_within_the_window_and_every_later_one_is_a_burst() -> None:
    found = errors(RuleSet(), BURST_THRESHOLD + 5)
    assert found[:BURST_THRESHOLD - 1] == [()] * (BURST_THRESHOLD - 1)
    assert found[BURST_THRESHOLD - 1:] == [(BURST_4XX,)] * 6


def test_4xx_spread_wider_than_the_window_is_no_burst() -> None:
    step = BURST_WINDOW / (BURST_THRESHOLD - 1) + 0.01  # twenty span just over ten seconds
    assert all(found == () for found in errors(RuleSet(), 100, step=step))


def test_a_burst_ends_once_the_window_slides_past_it() -> None:
    rules = RuleSet()
    assert errors(rules, BURST_THRESHOLD)[-1] == (BURST_4XX,)
    later = rules.match(exchange("/missing/late", status=404, ts=T0 + 60))
    assert later == ()


def test_successes_and_5xx_neither_count_nor_get_flagged() -> None:
    rules = RuleSet()
    errors(rules, BURST_THRESHOLD - 1)
    assert rules.match(exchange("/ok", status=200, ts=T0 + 3)) == ()
    assert rules.match(exchange("/boom", status=503, ts=T0 + 3)) == ()
    assert rules.match(exchange("/gone", status=None, ts=T0 + 3)) == ()
    assert rules.match(exchange("/missing/x", status=404, ts=T0 + 3)) == (BURST_4XX,)


def test_bursts_are_counted_per_client() -> None:
    rules = RuleSet()
    for i in range(BURST_THRESHOLD * 2):  # interleaved: neither alone reaches the threshold in its first half
        client = "203.0.113.1" if i % 2 else "203.0.113.2"
        found = rules.match(exchange(f"/m/{i}", client_ip=client, status=404, ts=T0 + i * 0.1))
        assert (found == (BURST_4XX,)) == (i >= BURST_THRESHOLD * 2 - 2)


def test_tracked_clients_are_bounded_and_the_least_recent_is_forgotten() -> None:
    rules = RuleSet(burst_threshold=3, burst_clients=2)
    errors(rules, 2, client="10.0.0.1")
    errors(rules, 2, client="10.0.0.2", start=T0 + 1)
    errors(rules, 1, client="10.0.0.3", start=T0 + 2)  # evicts 10.0.0.1, seen least recently
    assert rules.tracked_clients == 2
    assert errors(rules, 1, client="10.0.0.2", start=T0 + 3) == [(BURST_4XX,)]  # remembered: its third
    assert errors(rules, 1, client="10.0.0.1", start=T0 + 3) == [()]  # forgotten: counts from one again


def test_the_verdict_caches_are_bounded_in_entries_and_size() -> None:
    rules = RuleSet()
    for i in range(10_000):
        assert rules.match(exchange(f"/items/{i}.php?q=%27{i}", user_agent=f"agent/{i}")) == ()
    assert 0 < len(rules._targets) <= VERDICT_CACHE and 0 < len(rules._agents) <= VERDICT_CACHE
    rules = RuleSet()
    huge = "/?q=" + "%27" * 1000 + "+or+1=1"
    assert rules.match(exchange(huge, user_agent="x" * 5000 + " sqlmap")) == (SQL_INJECTION,)
    assert rules._targets == {} and rules._agents == {}


def test_all_rules_together_keep_rule_order() -> None:
    rules = RuleSet(burst_threshold=1)
    found = rules.match(exchange("/.git/config?x=../../etc/passwd", user_agent="sqlmap/1.7", status=404))
    assert found == (PATH_TRAVERSAL, SENSITIVE_PATH, SCANNER_USER_AGENT, BURST_4XX)
    assert found == tuple(rule for rule in RULE_IDS if rule in found)


def test_the_annotator_adds_alerts_and_leaves_clean_exchanges_untouched() -> None:
    annotate = build_annotator(Settings.build({}), lambda line: None)
    try:
        clean = exchange("/index.html", client_ip="172.17.0.3")
        assert annotate(clean) is clean
        flagged = annotate(exchange("/?q=<script>alert(1)</script>", client_ip="172.17.0.3"))
        assert flagged.alerts == (XSS,) and flagged.target == "/?q=<script>alert(1)</script>"
    finally:
        annotate.close()
