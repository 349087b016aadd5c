"""The rules as data: the shipped book loads whole, --rules FILE adds a user's rules, a bad file is one line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eyes_devine.enrich.rule_data import PLACES, LazyPattern, RuleFileError, rule_book
from eyes_devine.enrich.rules import RULE_IDS, RuleSet
from tests.enrich.test_rules import exchange

EYES_DEVINE = [sys.executable, "-m", "eyes_devine"]
PCAPS = Path(__file__).resolve().parents[1] / "pcaps"
MINE = '''
[[rule]]
id = "internal-admin"
catches = "requests for the internal admin pages"
misses = "the same pages under another prefix"
[[rule.match]]
in = "path"
pattern = '^/(?:internal/admin|hello)\\b'
'''


def test_the_shipped_book_holds_every_rule_in_alert_order_with_what_it_catches_and_misses():
    book = rule_book()
    assert book.ids == RULE_IDS and RULE_IDS[0] == "path-traversal" and RULE_IDS[-1] == "burst-4xx"
    assert all(rule.catches and rule.misses for rule in book.rules)
    assert {match.place for rule in book.rules for match in rule.matches} == set(PLACES)


def test_every_shipped_pattern_compiles_though_it_is_compiled_when_first_searched():
    """The shipped patterns compile lazily at run time, so a broken one must fail here, not on some packet."""
    patterns = [match.pattern for rule in rule_book().rules for match in rule.matches]
    assert patterns and all(isinstance(pattern, LazyPattern) for pattern in patterns)
    for pattern in patterns:
        assert isinstance(pattern, LazyPattern)
        re.compile(pattern.pattern, pattern.flags)


def test_a_shipped_pattern_compiled_on_first_search_then_searches_in_c():
    pattern = LazyPattern(r"\bjndi:", re.IGNORECASE)
    assert pattern.search("${JNDI:ldap://x}") is not None
    assert isinstance(pattern.search.__self__, re.Pattern)  # now the compiled pattern's own search, in C
    assert pattern.search("ordinary") is None


def test_a_users_rule_runs_on_every_target_after_the_shipped_ones(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text(MINE)
    book = rule_book(str(mine))
    assert book.ids == (*RULE_IDS, "internal-admin")
    rules = RuleSet(book)
    assert rules.match(exchange("/internal/admin/users")) == ("internal-admin",), "no prefilter stops it"
    assert rules.match(exchange("/internal/admin/../../etc/passwd")) == ("path-traversal", "internal-admin")
    assert rules.match(exchange("/public")) == ()


def test_read_with_rules_raises_a_users_rule_on_a_capture(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text(MINE)
    result = subprocess.run([*EYES_DEVINE, "read", "--json", "-q", "--rules", str(mine), str(PCAPS / "lab-http.pcap")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    flagged = {x["target"] for x in map(json.loads, result.stdout.splitlines()) if x["alerts"] == ["internal-admin"]}
    assert flagged and all(target.startswith("/hello") for target in flagged)


@pytest.mark.parametrize(("text", "message"), [
    ('[[rule]]\nid = "x"\n[[rule.match]]\nin = "text"\npattern = "(unclosed"\n',
     "rule 'x': pattern does not compile: missing ), unterminated subpattern"),
    ('[[rule]]\nid = "x"\n[[rule.match]]\nin = "body"\npattern = "a"\n', "rule 'x': match 'in' must be one of"),
    ('[[rule]]\nid = "Bad Id"\n[[rule.match]]\nin = "text"\npattern = "a"\n', "rule 'Bad Id': id must be"),
    ('[[rule]]\nid = "xss"\n[[rule.match]]\nin = "text"\npattern = "a"\n', "rule 'xss': that id is taken"),
    ('[[rule]]\nid = "x"\ncolour = "red"\n[[rule.match]]\nin = "text"\npattern = "a"\n',
     "rule 'x': unknown field 'colour'"),
    ('[[rule]]\nid = "x"\n', "rule 'x': no [[rule.match]]"),
    ('[[rule]]\nid = "x"\nkind = "burst"\n', "rule 'x': kind 'burst' is not one a rule file can use"),
    ("rule = [", "not TOML"),
    ("", "no [[rule]] in it"),
    ('[rule]\nid = "x"\n', "each rule is a [[rule]] table (two brackets)"),  # single brackets: not a traceback
    ('rule = 5\n', "each rule is a [[rule]] table"),
    ('[[rule]]\nid = "x"\nmatch = 5\n', "rule 'x': each match is a [[rule.match]] table"),
])
def test_a_bad_rule_file_is_one_line_naming_the_file_and_the_rule_and_exit_2(tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(RuleFileError, match="^" + re.escape(str(bad)) + ".*" + re.escape(message)):
        rule_book(str(bad))
    result = subprocess.run([*EYES_DEVINE, "read", "--rules", str(bad), str(PCAPS / "lab-http.pcap")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"eyes-devine: {bad}: ") and message in line, line


def test_a_missing_rule_file_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run([*EYES_DEVINE, "read", "--rules", str(tmp_path / "none.toml"),
                             str(PCAPS / "lab-http.pcap")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == f"eyes-devine: cannot read rule file {tmp_path / 'none.toml'}: No such file or " \
                                    "directory"


def test_alerts_filters_on_a_users_rule_when_told_of_the_file(tmp_path):
    import asyncio

    from eyes_devine.adapters.store.sqlite import open_store
    from tests.support.records import make

    mine = tmp_path / "mine.toml"
    mine.write_text(MINE)
    db = tmp_path / "x.db"

    async def write() -> None:
        store = await open_store(db)
        await store.write([make(1, target="/internal/admin", alerts=("internal-admin",)), make(2)])
        await store.close()

    asyncio.run(write())
    asked = [*EYES_DEVINE, "alerts", "--db", str(db), "--json", "--rule", "internal-admin"]
    found = subprocess.run([*asked, "--rules", str(mine)], capture_output=True, text=True, timeout=60)
    assert found.returncode == 0 and [json.loads(line)["target"] for line in found.stdout.splitlines()] == \
        ["/internal/admin"]
    unknown = subprocess.run(asked, capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("eyes-devine: --rule 'internal-admin' is not a rule id")
