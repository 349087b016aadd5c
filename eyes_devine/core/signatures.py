"""Attack signatures: in a request's headers while it is parsed (header values are never kept), and in a
decoded target for the enrich stage's rules.

Header values reach no record (credentials live there), so the only moment a
rule can see them is the parse: the request side asks whether a head holds any
rare byte (:data:`ORDINARY_BYTES`), and :func:`head_rules` about the few that
do; only the verdict (rule ids) is kept.  The first question must cost well
under a microsecond, so it is asked of the head's rare bytes only (``$``, a
backtick, ``|``, ``&``, ``{``).  The Host header is kept (redacted), so the enrich stage looks at it:
:func:`metadata_host`.

Each signature needs a shape ordinary requests do not have (word and segment
boundaries, not substrings): ``${jndi:`` once nested lookups are unwrapped,
``() {`` opening a header value, a shell separator or substitution followed by
a command, the cloud metadata addresses, a stream wrapper, a doubled
``....//``.  In header values a ``;`` is an ordinary parameter separator
(``text/html;q=0.9``, ``(X11; Linux x86_64)``), so there a command must follow
``|``, ``&&``, a backtick or ``$(``.
"""

from __future__ import annotations

import re

JNDI = "jndi-lookup"
SHELLSHOCK = "shellshock"
COMMAND_INJECTION = "command-injection"
SSRF_METADATA = "ssrf-metadata"
FILE_INCLUSION = "file-inclusion"

JNDI_ROUNDS = 8
"""Nested lookups unwrapped (``${${lower:j}${::-n}di:…}``), bounded against a head built to loop."""

_COMMANDS = (r"(?:cat|id|whoami|uname|wget|curl|nc|ncat|netcat|bash|sh|zsh|dash|python[23]?|perl|ruby|php|ping"
             r"|nslookup|dig|sleep|echo|rm|chmod|chown|busybox|powershell|cmd(?:\.exe)?|certutil|telnet|ls|env"
             r"|printenv|ifconfig|passwd|tftp|base64|ps|kill|sudo)")
_COMMAND_END = r"(?=$|[\s;|&`)<>'\"]|\$\{ifs)"
"""A command word ends the word: ``; id`` is one, ``&id=5`` and ``; identity`` are not."""
_COMMAND = re.compile(rf"(?:[;|`\n]|&&|\$\()\s*(?:/(?:usr/)?s?bin/)?{_COMMANDS}{_COMMAND_END}")
_HEADER_COMMAND = re.compile(rf"(?:[|`]|&&|\$\()\s*(?:/(?:usr/)?s?bin/)?{_COMMANDS}{_COMMAND_END}")
_LOOKUP = re.compile(r"\$\{(?:(?:lower|upper)\s*:\s*|date\s*:\s*'?|[^${}]*?:-)([^${}']*)'?\}")
"""An obfuscating lookup whose value is its argument: ${lower:j}, ${upper:J}, ${::-j}, ${env:X:-j}, ${date:'j'}."""
_JNDI = re.compile(r"\$\{\s*jndi\s*:")
_METADATA = re.compile(
    r"(?<![\d.])169\.254\.169\.254(?!\d)|::ffff:(?:169\.254\.169\.254|a9fe:a9fe)\b"
    r"|(?:(?<=/)|(?<=@))(?:2852039166|0xa9fea9fe|0251\.0376\.0251\.0376|0xa9\.0xfe\.0xa9\.0xfe)(?![\w.])"
    r"|\bmetadata\.google\.internal\b|(?<![\w:])fd00:ec2::254\b"
)
_INCLUSION = re.compile(
    r"(?<![\w.+-])(?:php|file|expect|phar|zip|glob|data)://|(?<![\w.+-])data:[\w.+/-]*;base64,"
    r"|\.\.\.\.(?:/|\\)|\.\./\./"
)
_SHELLSHOCK = re.compile(r"\n[^:\n]*:[ \t]*\(\s*\)\s*\{")
"""``() {`` opening a header value (each header line follows a newline)."""
ORDINARY_BYTES = bytes(byte for byte in range(256) if chr(byte) not in "$`|&{")
"""Every byte but the rare ones the header signatures need (``${``, a backtick, ``|``, ``&&``, ``() {``):
``head.translate(None, ORDINARY_BYTES)`` keeps only those, in one C pass (faster than a regex scan), and is
empty for almost every head, a browser's included."""
_METADATA_HOSTS = ("169.254.169.254", "metadata.google.internal", "[fd00:ec2::254]", "[::ffff:169.254.169.254]",
                   "[::ffff:a9fe:a9fe]", "2852039166", "0xa9fea9fe", "0251.0376.0251.0376")


def text_rules(text: str) -> list[str]:
    """The signatures in a lower-cased, percent-decoded target: what the target rules add for these attacks."""
    found = []
    if "${" in text and _JNDI.search(_unwrap_lookups(text)):
        found.append(JNDI)
    if _COMMAND.search(text):
        found.append(COMMAND_INJECTION)
    if _METADATA.search(text):
        found.append(SSRF_METADATA)
    if _INCLUSION.search(text):
        found.append(FILE_INCLUSION)
    return found


def metadata_host(host: str) -> bool:
    """Whether a Host header names a cloud metadata endpoint (a request through a proxy the attacker steers)."""
    return host.lower().startswith(_METADATA_HOSTS)


def head_rules(head: bytes) -> tuple[str, ...]:
    """The signatures in a request head's headers: the verdict kept for values that are not.

    Asked only of heads with a rare byte (see :data:`ORDINARY_BYTES`); the next question is still cheap, the
    full one (decoding, every pattern) rare.
    """
    if not (b"$" in head or b"`" in head or b"|" in head or b"&&" in head or b"{" in head):
        return ()
    text = head.decode("latin-1").lower()
    found = []
    if "${" in text and _JNDI.search(_unwrap_lookups(text)):
        found.append(JNDI)
    if _HEADER_COMMAND.search(text):
        found.append(COMMAND_INJECTION)
    if _METADATA.search(text):
        found.append(SSRF_METADATA)
    if _SHELLSHOCK.search(text):
        found.append(SHELLSHOCK)
    return tuple(found)


def _unwrap_lookups(text: str) -> str:
    for _ in range(JNDI_ROUNDS):
        unwrapped = _LOOKUP.sub(r"\1", text)
        if unwrapped == text:
            break
        text = unwrapped
    return text
