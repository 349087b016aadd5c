"""Which request a response answers: the queue of unanswered requests, and what lost bytes do to it.

No parsing here (no httptools): the request and response sides tell the
pairing what they saw, so these rules are tested on their own.

Every request is queued when its first byte is parsed and the queue is
answered in FIFO order, so pipelined requests pair correctly.  A response is
paired when its status line is parsed.

Client-side holes may have swallowed whole requests, so a *marker*
(:class:`LostRequests`) is queued in their place.  A hole that began between
requests (or before the first byte) surely began one, unless a response already
went unpaired since the client's last segment (the TCP layer may report the
hole after that response).  A response reaching a marker is dropped as
answering a lost request (counted in ``unpaired_responses``) when a request
surely was lost and none was dropped yet, or when the next queued request was
not sent before the response started; otherwise the marker is discarded and
FIFO pairing resumes.

Server-side holes: the first response after the hole, starting at time T,
pairs with the *latest* queued request sent before T (a surely lost request
counts, and then the response is dropped); earlier queued requests are emitted
with ``gap``, ``no_response``.  This is exact for clients that wait for each
response before sending the next request (nearly all of them), whatever the
hole swallowed.

Pipelining clients (two requests seen in one segment, or a clean exchange found
pipelined) make timing useless, so counts are estimated instead: a marker takes
round(hole / mean request size) responses (less half a request if the hole
began inside one), and after a server hole round(lost bytes / mean response
size) responses are taken as lost - at least one if the hole began between
responses or before a status line.  A response with no request sent before it
is dropped as unpaired.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from eyes_devine.records import EngineCounters

MAX_QUEUED = 1000
"""Requests waiting for a response per connection; older ones are given up as ``no_response``."""


class Request:
    """One request, from its first byte until its exchange is emitted."""

    __slots__ = ("ts", "prev", "method", "target", "host", "version", "user_agent", "content_type", "body", "flags",
                 "lost", "done", "resp_end", "special", "alerts")

    def __init__(self, ts: float, prev: Request | None) -> None:
        self.ts = ts
        self.prev = prev  # the previous request, if still unanswered when this one began
        self.method = ""  # set once the request line is parsed
        self.target = ""
        self.host: str | None = None
        self.version = ""
        self.user_agent: str | None = None
        self.content_type: str | None = None
        self.body = 0
        self.flags: list[str] | None = None
        self.lost = False  # its response was lost or cut: when it ended is unknown
        self.done = False  # emitted
        self.resp_end: float | None = None
        self.special = False  # HEAD, CONNECT or Upgrade: its response must be given to llhttp in parts
        self.alerts: tuple[str, ...] = ()  # signatures its headers matched (core.signatures): values are not kept


class LostRequests:
    """Queue marker for requests lost in a client-side hole.

    ``count`` is how many responses it takes in all (None: not decided yet) and ``dropped``
    how many it took so far; ``ts`` is set when at least one request surely was lost, sent
    no later than ``ts``; ``missing`` is the size of the hole, for estimating the count, and
    ``in_request`` whether the hole began inside a request (so part of it only finished that one).
    """

    __slots__ = ("count", "dropped", "ts", "missing", "in_request")

    def __init__(self, count: int | None, ts: float | None, missing: int, in_request: bool = False) -> None:
        self.count = count
        self.dropped = 0
        self.ts = ts
        self.missing = missing
        self.in_request = in_request


def flag(req: Request, name: str) -> None:
    flags = req.flags
    if flags is None:
        req.flags = [name]
    elif name not in flags:
        flags.append(name)


class Pairing:
    """The queue of one connection, and the traffic figures its estimates use.

    ``unanswered(req)`` is called for a request given up without a response (its
    flags set): evicted from a full queue, or passed over after response loss.
    """

    def __init__(self, counters: EngineCounters, unanswered: Callable[[Request], None]) -> None:
        self.queue: deque[Request | LostRequests] = deque()
        self._counters = counters
        self._unanswered = unanswered
        self.pipelining = False
        """The client was seen pipelining (clean evidence only)."""
        self.unpaired_responses = 0
        """Responses dropped because no seen request could have caused them."""
        self.orphans = 0
        """Responses left unpaired since the client's last segment."""
        self.request_messages = self.request_bytes = 0
        self.response_messages = self.response_bytes = 0
        self.uncertain = False
        """Response bytes were lost since the last pairing ..."""
        self.lost_bytes = 0
        """... how many ..."""
        self.sure_lost = 0
        """... and how many responses surely began in them."""

    def enqueue(self, req: Request) -> None:
        queue = self.queue
        queue.append(req)
        if len(queue) > MAX_QUEUED:
            self.evict()

    def head_request(self) -> Request | None:
        """The oldest queued request, unless a marker is first."""
        head = self.queue[0] if self.queue else None
        return head if type(head) is Request else None

    def requests_lost(self, missing: int, sure: float | None = None, in_request: bool = False) -> None:
        """Queue a lost-requests marker (``sure``: a request surely was lost, by that time)."""
        queue = self.queue
        if queue and type(queue[-1]) is LostRequests:
            last = queue[-1]
            last.count = None
            last.missing += missing
            if last.ts is None:
                last.ts = sure
        else:
            queue.append(LostRequests(None, sure, missing, in_request))

    def skipped_request_bytes(self, count: int) -> None:
        """Client bytes skipped while resynchronising count toward the hole in front of them."""
        queue = self.queue
        if queue and type(queue[-1]) is LostRequests:
            queue[-1].missing += count

    def responses_lost(self, missing: int, began: bool) -> None:
        """Response bytes were lost (``began``: a response surely began in them); the next pairing takes care."""
        if not self.uncertain:
            self.uncertain = True
            self.lost_bytes = self.sure_lost = 0
        self.lost_bytes += missing
        self.sure_lost += began

    def sure_lost_request(self, ts: float) -> float | None:
        """``ts`` for a marker of a surely lost request, unless its answer already went unpaired.

        The TCP layer may report a client hole only after the response that acknowledged it.
        """
        return None if self.orphans else ts

    def pair(self, t: float) -> Request | None:
        """The queued request a response starting at ``t`` answers (None: unpaired)."""
        queue = self.queue
        if self.uncertain:
            return self._pair_after_loss(t)
        while queue:
            head = queue[0]
            if type(head) is Request:
                return queue.popleft()  # type: ignore[return-value]
            if head.count is None and self.pipelining and self.request_messages:
                # A pipelining client may have lost several requests: estimate from the hole
                # size, less half a request when the hole began by finishing one.
                lost = head.missing * self.request_messages / self.request_bytes - 0.5 * head.in_request
                head.count = max(round(lost), head.ts is not None)
            if head.count is not None:
                take = head.dropped < head.count
            elif head.ts is not None and not head.dropped:
                take = True  # a request surely was lost: this is its response
            else:
                # Does the next request we saw come after this response?  Then it answers a lost one.
                take = len(queue) < 2 or queue[1].ts >= t  # type: ignore[operator]
            if take:
                head.dropped += 1
                break
            queue.popleft()
        self._unpaired()
        return None

    def clear(self) -> None:
        self.queue.clear()

    def _unpaired(self) -> None:
        self.unpaired_responses += 1
        self._counters.unpaired_responses += 1
        self.orphans += 1

    def _pair_after_loss(self, t: float) -> Request | None:
        """Pairing for the first response after response bytes were lost (see the module doc)."""
        candidates = []  # queue positions of requests (and sure losses) sent before t
        for index, entry in enumerate(self.queue):
            if type(entry) is Request:
                if entry.ts >= t:
                    break
                candidates.append(index)
            elif entry.ts is not None and entry.ts < t:
                candidates.append(index)
        if not candidates:
            self._unpaired()
            return None
        self.uncertain = False
        if self.pipelining:
            # Responses wholly lost, estimated from the mean response size (none if unknown).
            seen = self.response_messages - 1
            skipped = round(self.lost_bytes * seen / self.response_bytes) if seen and self.response_bytes else 0
            chosen = candidates[min(max(skipped, self.sure_lost), len(candidates) - 1)]
        else:
            chosen = candidates[-1]
        queue = self.queue
        for _ in range(chosen):
            entry = queue.popleft()
            if type(entry) is Request:
                entry.lost = True
                flag(entry, "gap")
                flag(entry, "no_response")
                self._unanswered(entry)
        if type(queue[0]) is Request:
            return queue.popleft()  # type: ignore[return-value]
        # It answers a request we never saw; the marker stays for any others.
        queue[0].dropped += 1  # type: ignore[union-attr]
        self._unpaired()
        return None

    def evict(self) -> None:
        """Too many requests unanswered: give up the oldest, and drop its response if it comes."""
        queue = self.queue
        oldest = queue.popleft()
        marker = LostRequests(0, None, 0)
        if type(oldest) is LostRequests:  # markers are never adjacent: a request follows
            marker, oldest = oldest, queue.popleft()
        flag(oldest, "no_response")  # type: ignore[arg-type]
        flag(oldest, "overflow")  # type: ignore[arg-type]
        self._unanswered(oldest)  # type: ignore[arg-type]
        if marker.count is not None:
            marker.count += 1
        queue.appendleft(marker)
