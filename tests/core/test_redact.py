"""Redaction of credentials in request targets."""

from __future__ import annotations

import re
import timeit
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eyes_devine.core.redact import (
    SECRET_NAMES,
    SECRET_PARTS,
    SECRET_WORDS,
    SENSITIVE_HEADERS,
    is_sensitive_param,
    redact_host,
    redact_target,
    redact_user_agent,
)


def test_target_without_query_is_returned_unchanged() -> None:
    target = "/api/v1/users/42"
    assert redact_target(target) is target


def test_query_without_secrets_is_returned_unchanged() -> None:
    target = "/search?q=shoes&page=2&keyword=red%20boots"
    assert redact_target(target) is target


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/x?token=abc", "/x?token=REDACTED"),
        ("/x?a=1&access_token=abc&b=2", "/x?a=1&access_token=REDACTED&b=2"),
        ("/x?API_KEY=abc", "/x?API_KEY=REDACTED"),
        ("/x?apiKey=abc;sessionid=s1", "/x?apiKey=REDACTED;sessionid=REDACTED"),
        ("/x?password=p%40ss&user=bob", "/x?password=REDACTED&user=bob"),
        ("/x?passwd=1&pwd=2&secret=3", "/x?passwd=REDACTED&pwd=REDACTED&secret=REDACTED"),
        ("/x?X-Amz-Signature=ab&X-Amz-Credential=cd", "/x?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED"),
        ("/x?sig=abc&sv=2020", "/x?sig=REDACTED&sv=2020"),
        ("/cb?code=oauthcode&state=xyz", "/cb?code=REDACTED&state=xyz"),
        ("/x?auth=1#frag", "/x?auth=REDACTED#frag"),
        ("/x?%74oken=abc", "/x?%74oken=REDACTED"),
    ],
)
def test_sensitive_query_values_are_redacted(target: str, expected: str) -> None:
    assert redact_target(target) == expected


JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiaWF0IjoxNTE2MjM5MDIyfQ"
       ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
UNSIGNED_JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0"
JWE = ("eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKo"
       ".48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQ.XFBoMYUZodetZdvT")
DIRECT_JWE = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4R0NNIn0..48V1_ALb6US04U3b.5eym8TW_c8SuK0lt.XFBoMYUZodetZdvT"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (f"/verify/{JWT}/next", "/verify/REDACTED/next"),
        (f"/verify/{JWT}", "/verify/REDACTED"),
        (f"/a?state=1&x={JWT}&y=2", "/a?state=1&x=REDACTED&y=2"),
        (f"/a?q=Bearer%20{JWT}", "/a?q=Bearer%20REDACTED"),
        (f"/a/{UNSIGNED_JWT}./b", "/a/REDACTED/b"),
        (f"/a/{UNSIGNED_JWT}", "/a/REDACTED"),
        (f"/a/{JWE}/b", "/a/REDACTED/b"),
        (f"/a/{DIRECT_JWE}", "/a/REDACTED"),
        (f"http://svc/cb/{JWT}", "http://svc/cb/REDACTED"),
    ],
)
def test_jwts_are_redacted_anywhere_in_the_target(target: str, expected: str) -> None:
    assert redact_target(target) == expected


@pytest.mark.parametrize("target", [
    "/img/eyJidWNrZXQiOiJteS1idWNrZXQiLCJrZXkiOiJpbWcuanBnIn0=",  # base64 JSON options, no token
    "/img/eyJidWNrZXQiOiJteS1idWNrZXQifQ.jpg",
    "/eyJ.a.b", "/keyJar/x.y.z",
])
def test_base64_json_that_is_no_token_is_kept(target: str) -> None:
    assert redact_target(target) is target


def test_nested_queries_at_any_depth_never_recurse() -> None:
    nested = "/x" + "?a=" * 400 + "?token=t"
    assert redact_target(nested) == "/x" + "?a=" * 400 + "?token=REDACTED"


def _cost(redact: Callable[[str], str], text: str) -> float:
    return min(timeit.repeat(lambda: redact(text), number=3, repeat=5))


@pytest.mark.parametrize(("redact", "crafted"), [
    (redact_target, lambda n: "/x?token=" + "eyJ" * n),
    (redact_target, lambda n: "/" + "eyJaaaaaaaaa" * (n // 4)),
    (redact_target, lambda n: "/x" + "?a=" * n + "?token=t"),
    (redact_target, lambda n: "/x?token" + "?" * n),
    (redact_user_agent, lambda n: "a" * n + " =token"),
    (redact_user_agent, lambda n: "MyApp/1 " + "eyJ" * n),
])
def test_crafted_text_costs_linear_time(redact: Callable[[str], str], crafted: Callable[[int], str]) -> None:
    small, large = _cost(redact, crafted(500)), _cost(redact, crafted(4000))
    assert large < small * 24, (small, large)  # 8 times the bytes: linear is about 8x, quadratic 64x


def test_redaction_keeps_everything_else_byte_for_byte() -> None:
    target = "/p%20q?z=%E2%9C%93&token=t+t&&flag&token=&Empty="
    assert redact_target(target) == "/p%20q?z=%E2%9C%93&token=REDACTED&&flag&token=&Empty="


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("http://user:pa55@example.com/a?b=1", "http://REDACTED@example.com/a?b=1"),
        ("HTTPS://user:p@ss@example.com#x", "HTTPS://REDACTED@example.com#x"),
        ("ws://tok3n@svc?x=1", "ws://REDACTED@svc?x=1"),
        ("user:pa55@example.com:443", "REDACTED@example.com:443"),  # CONNECT's authority-form
    ],
)
def test_userinfo_in_the_target_is_redacted(target: str, expected: str) -> None:
    assert redact_target(target) == expected


@pytest.mark.parametrize("target", ["http://example.com/a@b", "http://example.com/?to=a@b.c", "example.com:443", "*",
                                    "/mail/a@b.c", "/x?email=a@b.c"])
def test_an_at_sign_outside_the_authority_is_kept(target: str) -> None:
    assert redact_target(target) is target


@pytest.mark.parametrize(
    ("host", "expected"),
    [("user:pa55@svc", "REDACTED@svc"), ("a@b@svc:8080", "REDACTED@svc:8080"), ("tok3n@svc", "REDACTED@svc")],
)
def test_userinfo_in_the_host_header_is_redacted(host: str, expected: str) -> None:
    assert redact_host(host) == expected


@pytest.mark.parametrize("host", ["svc", "10.0.0.2:8080", "[::1]:80", ""])
def test_an_ordinary_host_is_kept(host: str) -> None:
    assert redact_host(host) is host


@pytest.mark.parametrize("name", [
    "client_secret", "Authorization", "passphrase", "pass", "user_pass", "pin", "PIN", "userPin", "pin_code", "otp",
    "totp", "bearer", "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "X-Goog-Signature",
    "AWSAccessKeyId", "Signature", "sig", "api_key", "apiKey", "APIKey", "apikey", "x-api-key",
    "Ocp-Apim-Subscription-Key", "code", "credentials", "private", "private_key", "privateKey", "jsessionid",
    "PHPSESSID", "sid", "connect.sid", "oauth_verifier", "code_verifier", "authorization_code", "auth_code",
    "client_assertion", "SAMLResponse", "hmac", "id_token", "refresh_token",
    "sortKey",  # "key" as a word always counts: a lost sort order costs less than a kept API key
])
def test_secret_parameter_names(name: str) -> None:
    assert is_sensitive_param(name)


@pytest.mark.parametrize("name", [
    "keyword", "keywords", "keys", "monkey", "author", "authority", "coauthor", "authuser", "pinned", "isPinned",
    "spinner", "opinion", "passenger", "compass", "bypass", "signal", "design", "zip_code", "country_code",
    "file_hash", "page", "q", "sort", "state", "redirect_uri", "expires_in",
])
def test_ordinary_parameter_names(name: str) -> None:
    assert not is_sensitive_param(name)


@pytest.mark.parametrize("name", ["pass%77ord", "PASS%57ORD", "api%5Fkey", "api+key", "%70in"])
def test_percent_encoded_names_are_judged_decoded(name: str) -> None:
    assert is_sensitive_param(name)
    assert redact_target(f"/x?{name}=s3cret&page=2") == f"/x?{name}=REDACTED&page=2"


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("MyApp/1.0 token=abc", "MyApp/1.0 token=REDACTED"),
        ("MyApp/1.0 (api_key=abc; v=2)", "MyApp/1.0 (api_key=REDACTED; v=2)"),
        ("x/1 key=a&secret=b&page=3", "x/1 key=REDACTED&secret=REDACTED&page=3"),
        (f"MyApp/1.0 {JWT}", "MyApp/1.0 REDACTED"),
        ("MyApp/1.0 Bearer xyz123", "MyApp/1.0 Bearer REDACTED"),
        ("svc/2 (BEARER abc)", "svc/2 (BEARER REDACTED)"),
        ("app BeArEr abc.def", "app BeArEr REDACTED"),
        ("bot/1 (+https://bot.example/?token=3)", "bot/1 (+https://bot.example/?token=REDACTED)"),
    ],
)
def test_secrets_in_the_user_agent_are_redacted(agent: str, expected: str) -> None:
    assert redact_user_agent(agent) == expected


@pytest.mark.parametrize("agent", [
    "curl/8.5.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "sqlmap/1.8#stable (https://sqlmap.org)",
    "bot/1 (+https://bot.example/?id=3; keyword=x)",
    "Bearer", "the bearer/1.0",
])
def test_ordinary_user_agents_are_kept(agent: str) -> None:
    assert redact_user_agent(agent) is agent


def test_sensitive_headers_are_lower_case_credential_headers() -> None:
    assert SENSITIVE_HEADERS == {"authorization", "proxy-authorization", "cookie", "set-cookie"}


@given(st.text(max_size=80) | st.builds("".join, st.lists(st.sampled_from(
    ["/", "?", "#", "&", ";", "=", "eyJ", "hbGciOi", ".", "token", "a", "%", "@", "http://", ":"]), max_size=30)))
def test_redaction_never_raises_and_keeps_a_path_without_a_token_or_a_parameter(target: str) -> None:
    assert redact_target(redact_target(target)) == redact_target(target)  # any form: absolute, authority, junk
    target = "/" + target
    result = redact_target(target)
    assert redact_target(result) == result
    path = re.split("[?#]", target, maxsplit=1)[0]
    if "eyJ" not in target and ";" not in path:
        assert re.split("[?#]", result, maxsplit=1)[0] == path


@pytest.mark.parametrize("name", [*SECRET_PARTS, *SECRET_WORDS, *sorted(SECRET_NAMES)])
def test_every_secret_name_passes_the_fast_pre_check(name: str) -> None:
    assert redact_target(f"/x?a=1&{name.upper()}=v") == f"/x?a=1&{name.upper()}=REDACTED"


@given(st.text(alphabet="abcdeikmnoprstuwyzAEIKNOPSTW_-.%0789", max_size=12),
       st.sampled_from(["/x?", "/x?a=1&", "/x#", "/x?a=1#", "/x;"]))
def test_the_pre_check_never_hides_a_secret_name(name: str, before: str) -> None:
    redacted = redact_target(f"{before}{name}=v") == f"{before}{name}=REDACTED"
    assert redacted == is_sensitive_param(name)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/app/page;jsessionid=ABC123?x=1", "/app/page;jsessionid=REDACTED?x=1"),
        ("/a;PHPSESSID=s1/b;v=2/c", "/a;PHPSESSID=REDACTED/b;v=2/c"),
        ("/a;sid=1;lang=en", "/a;sid=REDACTED;lang=en"),
        ("/a;x=/b;token=t", "/a;x=/b;token=REDACTED"),
    ],
)
def test_path_parameters_with_a_secret_name_are_redacted_in_any_segment(target: str, expected: str) -> None:
    assert redact_target(target) == expected


@pytest.mark.parametrize("target", ["/x;v=1.2/y", "/a;lang=en;page=2/b", "/a;/b;c", "/files;type=d/report.pdf"])
def test_ordinary_path_parameters_are_kept(target: str) -> None:
    assert redact_target(target) is target


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/cb#access_token=abc&expires_in=3600&state=xyz", "/cb#access_token=REDACTED&expires_in=3600&state=xyz"),
        ("/cb?x=1#id_token=t1;code=c1", "/cb?x=1#id_token=REDACTED;code=REDACTED"),
        ("/#/route?token=x", "/#/route?token=REDACTED"),
        ("/x?auth=1#frag", "/x?auth=REDACTED#frag"),
    ],
)
def test_fragments_are_read_as_queries(target: str, expected: str) -> None:
    assert redact_target(target) == expected


@pytest.mark.parametrize("target", ["/docs#install", "/p?a=1#section-2", "/#/users/42?tab=keys", "/#page=3"])
def test_fragments_without_secrets_are_kept(target: str) -> None:
    assert redact_target(target) is target


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/login?next=/reset?token=abc&a=1", "/login?next=/reset?token=REDACTED&a=1"),
        ("/x?password=what?ever&u=1", "/x?password=REDACTED&u=1"),  # a "?" in a secret is part of the secret
    ],
)
def test_a_nested_query_is_judged_too(target: str, expected: str) -> None:
    assert redact_target(target) == expected
