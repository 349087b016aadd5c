"""Text from the network or from Docker, made safe to show on a terminal.

A container name, a compose label, a Host header or a TLS server name is
chosen by whoever starts the container or sends the packet.  Printed as it is,
an ESC sequence in it repaints the screen or sets the terminal's title, a CR
overwrites the line, and a bidi override (U+202E) reverses what the analyst
reads.  So every character Python's ``repr`` would escape is written the way
``repr`` writes it (``\\x1b``, ``\\r``, ``\\x9b``, ``\\u202e``): C0 and C1
controls, DEL, format and bidi characters, line and paragraph separators,
spaces other than the plain one, unassigned code points and lone surrogates.
The analyst sees that they were there, and nothing acts on the terminal.

Backslashes are kept as they are, so a literal ``\\x1b`` in a name looks like
an escaped ESC: the tables and log lines are for reading, and the JSON outputs
keep the exact string.
"""

from __future__ import annotations


def safe(text: str) -> str:
    """``text`` with every character a terminal could act on (or hide) written as ``repr`` writes it."""
    if text.isprintable():  # nearly every string: one scan in C, no copy
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
