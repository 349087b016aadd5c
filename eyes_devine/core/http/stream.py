"""One direction's bytes cut into message parts for llhttp: each head whole and bounded, each body by its framing.

Both sides feed llhttp through :meth:`MessageStream.feed`, so a message always
starts at the start of what llhttp is given, and what the side does between
messages (a fresh parser after a HEAD response, going off for a tunnel,
parsing the client's held bytes after a refused Upgrade, reading a rejected
head leniently) happens between two feeds, never inside a callback.

A head is given to llhttp in one piece once its blank line has arrived.  While
it is still arriving, llhttp gets its first line as it comes (so a stream that
is not HTTP is recognised at once) and then only whole header lines: httptools
joins the pieces of a header line by concatenation, which would cost quadratic
time for a header sent in many segments.  Past ``max_header_bytes`` the head
is abandoned (:meth:`MessageStream._oversized`).  A body is given in pieces that
end where it ends: after its Content-Length, at the blank line that ends a
chunked body (or at a CRLFCRLF inside it, which is harmless), or with the
segment when it runs until the connection closes.
"""

from __future__ import annotations

from httptools import HttpParserError, HttpParserUpgrade

from eyes_devine.core.http.framing import head_end
from eyes_devine.core.http.parsers import Mode

_PARSE = Mode.PARSE


class MessageStream:
    """The message framing both sides share; a side provides the llhttp parser and the ``_on_*`` reactions.

    The sides declare ``__slots__``: they have more attributes than CPython shares dictionary keys for (30),
    and without slots every attribute read on the hot path would be a dictionary lookup.
    """

    __slots__ = ("_max_head", "_in_head", "_head_buffer", "_head_given", "_rejected", "_failure",
                 "_failed_head", "_failed_head_whole", "_between")



    mode: Mode
    _parser: object
    _max_head: int
    _content_length: bytes | None
    _transfer_encoding: bytes | None

    def _init_stream(self, max_head: int) -> None:
        self._max_head = max_head
        self._in_head = True
        """The next bytes belong to a message head (llhttp has not completed its headers)."""
        self._head_buffer = bytearray()
        """The head so far, when it spans segments."""
        self._head_given = 0
        """How much of ``_head_buffer`` llhttp has seen."""
        self._rejected = False
        """llhttp refused the head in progress; the rest is collected and read leniently when it is whole."""
        self._failure: HttpParserError | None = None
        self._failed_head: bytes | None = None
        """The head llhttp refused (None when it refused a body), and whether it was whole."""
        self._failed_head_whole = False
        self._between = False
        """Something is to be done before the next part (a fresh parser after a HEAD response, the client's
        held bytes after a refused Upgrade)."""

    def _reset_head(self) -> None:
        """A fresh parser starts at a message start (after a resync, a HEAD response, a lenient read)."""
        self._in_head = True
        self._head_buffer.clear()
        self._head_given = 0
        self._rejected = False

    def _whole_refused(self, error: HttpParserError, chunk: bytes | memoryview, head_end: int,
                       messages: int) -> None:
        """llhttp refused a segment given whole (one message whose head ends at ``head_end``; ``messages`` had
        begun before it): in the head, or past a message that ended early, in bytes that begin no message."""
        first = self._in_head and self._messages_begun() == messages + 1
        resume = self._on_failure(error, bytes(chunk[:head_end]) if first else None, first, chunk, 0,
                                  head_end if first else len(chunk))
        if resume < len(chunk) and self.mode is _PARSE:  # a head read leniently: its body and what follows
            self._cut_stream(chunk[resume:])
            return
        if self._between:
            self._between = False
            self._between_parts()

    def _cut_stream(self, chunk: bytes | memoryview) -> None:
        """Give ``chunk`` to llhttp in message parts (see the module doc).

        The sides' ``feed`` give llhttp a segment that holds exactly one whole message (the usual case) at once,
        at once (and :meth:`_whole_refused` when llhttp refuses it), and call this for anything else.
        """
        size = len(chunk)
        start = 0
        while start < size and self.mode is _PARSE:
            begin = start
            if self._in_head and not self._head_buffer:
                # The usual case, inlined: a whole head at the start of what is left.
                end = chunk.find(b"\r\n\r\n", start)  # type: ignore[union-attr]
                if 0 <= end < start + self._max_head - 3:
                    end += 4
                    whole = chunk if start == 0 and end == size else chunk[start:end]
                    self._give(whole, whole)
                    start = end
                else:
                    start = self._head_part(chunk, start)
            else:
                start = self._head_part(chunk, start) if self._in_head else self._body_part(chunk, start)
            error = self._failure
            if error is not None:
                self._failure = None
                start = self._on_failure(error, self._failed_head, self._failed_head_whole, chunk, begin, start)
            if self._between:
                self._between = False
                self._between_parts()
        if start < size:
            self._rest(chunk[start:])

    def _head_part(self, chunk: bytes | memoryview, start: int) -> int:
        buffer = self._head_buffer
        if not buffer:
            end = head_end(chunk, start)  # type: ignore[arg-type]
            if end >= 0:
                if end - start > self._max_head:
                    self._oversized(bytes(chunk[start : start + self._max_head]))
                    return end
                whole = chunk if start == 0 and end == len(chunk) else chunk[start:end]
                self._give(whole, whole)
                return end
            before = 0
            buffer += chunk[start:]
            end = -1  # the buffer is chunk[start:], searched just now
        else:
            before = len(buffer)
            buffer += chunk[start:]
            end = head_end(buffer, max(0, before - 3))
        if end > self._max_head:
            head = bytes(buffer[: self._max_head])
            buffer.clear()
            self._head_given = 0
            self._oversized(head)
            return start + end - before
        if end >= 0:
            with memoryview(buffer) as view:  # one copy, not two
                whole = bytes(view[:end])
            given = self._head_given
            buffer.clear()
            self._head_given = 0
            self._give(whole[given:], whole)
            return start + end - before
        if len(buffer) > self._max_head:
            head = bytes(buffer)
            buffer.clear()
            self._head_given = 0
            self._oversized(head)
            return len(chunk)
        if not self._rejected:
            # The first line as it comes; after it, whole header lines only.  Only the new bytes are
            # searched: the cost stays linear however many segments a head arrives in.
            given = self._head_given
            newline = buffer.rfind(b"\n", before)
            first_line_arriving = given == 0 or buffer[given - 1] != 0x0A
            upto = newline + 1 if newline >= 0 else len(buffer) if first_line_arriving else given
            if upto > given:
                self._head_given = upto
                self._give(bytes(buffer[given:upto]), None)
        return len(chunk)

    def _body_part(self, chunk: bytes | memoryview, start: int) -> int:
        size = len(chunk)
        end = size
        te = self._transfer_encoding
        if te is not None and b"chunked" in te.lower():
            found = chunk.find(b"\r\n\r\n", start)  # type: ignore[union-attr]
            end = size if found < 0 else found + 4
        elif self._content_length is not None and te is None:
            try:
                end = min(size, start + max(0, int(self._content_length) - self._body_seen()))
            except ValueError:
                pass
        self._give(chunk if start == 0 and end == size else chunk[start:end], None)
        return end

    def _give(self, data: bytes | memoryview, whole_head: bytes | memoryview | None) -> None:
        """Feed llhttp; ``whole_head`` is the complete head when ``data`` ends one (for a lenient reading)."""
        if self._rejected:
            if whole_head is not None:
                self._rejected = False
                self._on_rejected_head(bytes(whole_head))
            return
        try:
            self._parser.feed_data(data)  # type: ignore[attr-defined]
        except HttpParserUpgrade as upgrade:
            self._on_upgrade(data[upgrade.args[0]:])
        except HttpParserError as error:
            self._failure = error
            if self._in_head:
                self._failed_head = bytes(whole_head) if whole_head is not None else bytes(self._head_buffer)
                self._failed_head_whole = whole_head is not None
            else:
                self._failed_head = None

    def _replay(self, parser: object, clean: bytes, replaying: object) -> HttpParserError | None:
        """A fresh ``parser`` given ``clean``, a head standing in for one llhttp refused (``_replaying`` is set
        meanwhile); what llhttp refuses in it, if anything."""
        self._parser = parser
        self._reset_head()
        self._replaying = replaying
        try:
            self._parser.feed_data(clean)  # type: ignore[attr-defined]
        except HttpParserError as error:
            return error
        finally:
            self._replaying = None
        return None

    def _wait_for_head(self) -> None:
        """llhttp refused a head still arriving: collect the rest, then read it leniently."""
        self._rejected = True

    # -- what a side does about it -------------------------------------------------------------

    def _on_failure(self, error: HttpParserError, head: bytes | None, whole: bool, chunk: bytes | memoryview,
                    begin: int, end: int) -> int:
        """llhttp refused the part ``chunk[begin:end]`` (a head when ``head`` is given, whole or not yet);
        returns where parsing of ``chunk`` goes on."""
        raise NotImplementedError

    def _on_rejected_head(self, head: bytes) -> None:
        """A head llhttp refused while it was arriving is now whole."""
        raise NotImplementedError

    def _on_upgrade(self, rest: bytes | memoryview) -> None:
        raise NotImplementedError

    def _oversized(self, head: bytes) -> None:
        raise NotImplementedError

    def _messages_begun(self) -> int:
        """Messages llhttp has begun on this side (the pairing counts them)."""
        raise NotImplementedError

    def _body_seen(self) -> int:
        """Body bytes of the message in progress llhttp has delivered."""
        raise NotImplementedError

    def _rest(self, rest: bytes | memoryview) -> None:
        """Bytes left in a segment after the mode changed: held after an Upgrade, searched for the next message
        after an oversized head; otherwise dropped."""

    def _between_parts(self) -> None:
        """After each part: what a side does between two messages."""
