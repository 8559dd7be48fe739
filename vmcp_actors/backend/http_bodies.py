"""HTTP response bodies of MCP backends: bounded in size, and watched for streams that end.

Both are facts the SDK's HTTP transports neither limit nor report, so every connection's
httpx client has :class:`BodyWatch` as a response hook, which swaps each response's body
stream for a watched one before anything reads it:

* **Size.**  The streamable-HTTP transport reads a JSON response with ``aread()``,
  however large: a server answering ``initialize`` with 2 GB drove this process to
  1.86 GB of RSS.  Here a body that announces more than the limit is refused before a
  byte is read, and one that streams past it is cut off at the limit, so memory stays
  bounded by the limit whatever the server sends.  Event streams are long-lived and
  unbounded by design; the SDK bounds each event (the connection passes the same limit).
  Compressed bodies count after decompression (a small gzip body can expand to
  gigabytes), so identity encoding is requested and gzip/deflate are decoded here,
  bounded.
* **Ends.**  An event-stream body that breaks or ends is reported (:class:`BodyEnd`):
  the standalone GET stream of streamable HTTP ending is the fastest sign of a dead
  server (the SDK only retries it, silently), and a POST's event stream ending tells
  the connection that an error "connection closed" was the transport's, not the server's.

The limit error is raised where the SDK reads the body (failing that request and, for
streamable HTTP, the transport) and reported through ``on_too_large`` at once, so the
connection fails with a message that names the limit.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import cast

import attrs
import httpx2

from vmcp_actors.backend.failures import ResponseTooLargeError

__all__ = ["ACCEPT_ENCODING", "BodyEnd", "BodyWatch"]

ACCEPT_ENCODING = "identity"
"""Sent with every request: the size limit is about what lands in memory."""

_EVENT_STREAM = "text/event-stream"
_DECODE_STEP = 1 << 20
"""Largest piece decompressed at once: a small compressed chunk may expand enormously."""


@attrs.frozen
class BodyEnd:
    """An event-stream response body ended: ``broken`` if it failed rather than finished."""

    method: str
    status: int
    broken: bool
    session_id_sent: bool


class BodyWatch:
    """An httpx response hook that bounds response bodies and reports event streams that end.

    It swaps the response's body stream for a counting one before anyone reads it (and
    decodes gzip/deflate itself, so that what is counted is what lands in memory).
    """

    def __init__(
        self,
        limit: int,
        *,
        on_too_large: Callable[[ResponseTooLargeError], None],
        on_end: Callable[[BodyEnd], None],
    ) -> None:
        self._limit = limit
        self._on_too_large = on_too_large
        self._on_end = on_end

    async def on_response(self, response: httpx2.Response) -> None:
        """The response hook: refuse an announced oversize body, watch every other one."""
        request = response.request
        headers = response.headers
        event_stream = headers.get("content-type", "").lower().startswith(_EVENT_STREAM)
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if not event_stream and encoding == "identity" and _announced_length(headers) > self._limit:
            raise self._too_large(request)  # httpx closes the response
        decoder = None if encoding == "identity" else _BoundedDecoder(encoding)
        if decoder is not None:
            del headers["content-encoding"]
            if "content-length" in headers:
                del headers["content-length"]
        response.stream = _WatchedBody(
            cast(httpx2.AsyncByteStream, response.stream),
            limit=None if event_stream else self._limit,
            decoder=decoder,
            too_large=lambda: self._too_large(request),
            on_end=self._ended(request, response.status_code) if event_stream else None,
        )

    def _too_large(self, request: httpx2.Request) -> ResponseTooLargeError:
        error = ResponseTooLargeError(self._limit, f"an HTTP response to {request.method}")
        self._on_too_large(error)
        return error

    def _ended(self, request: httpx2.Request, status: int) -> Callable[[bool], None]:
        def report(broken: bool) -> None:
            self._on_end(BodyEnd(request.method, status, broken, "mcp-session-id" in request.headers))

        return report


def _announced_length(headers: httpx2.Headers) -> int:
    try:
        return int(headers.get("content-length", "0"))
    except ValueError:
        return 0


class _BoundedDecoder:
    """gzip/deflate decoding that never produces more than it is asked for."""

    def __init__(self, encoding: str) -> None:
        if encoding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._inflate = zlib.decompressobj()
        else:
            raise httpx2.DecodingError(f"unsupported Content-Encoding {encoding!r} (identity was requested)")

    def decode(self, data: bytes, step: Callable[[], int]) -> Iterator[bytes]:
        """Decode ``data`` in pieces of at most ``step()`` bytes, asked before each piece."""
        pending = data
        while pending:
            try:
                piece = self._inflate.decompress(pending, step())
            except zlib.error as exc:
                raise httpx2.DecodingError(f"invalid compressed body: {exc}") from exc
            pending = self._inflate.unconsumed_tail
            if piece:
                yield piece


class _WatchedBody(httpx2.AsyncByteStream):
    """The response body: counted against the limit, decoded if needed, its end reported.

    An end is reported only when the body finished or failed on its own; a consumer
    that stops early (closing it, or being cancelled) ended nothing on the server's side.
    """

    def __init__(
        self,
        raw: httpx2.AsyncByteStream,
        *,
        limit: int | None,
        decoder: _BoundedDecoder | None,
        too_large: Callable[[], ResponseTooLargeError],
        on_end: Callable[[bool], None] | None,
    ) -> None:
        self._raw = raw
        self._limit = limit
        self._decoder = decoder
        self._too_large = too_large
        self._on_end = on_end
        self._seen = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._raw:
                for part in (chunk,) if self._decoder is None else self._decoder.decode(chunk, self._step):
                    self._seen += len(part)
                    if self._limit is not None and self._seen > self._limit:
                        raise self._too_large()
                    yield part
        except Exception:
            self._report(broken=True)
            raise
        self._report(broken=False)

    async def aclose(self) -> None:
        """Release the connection; a body closed by its consumer has no end to report."""
        self._on_end = None
        await self._raw.aclose()

    def _report(self, *, broken: bool) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end(broken)

    def _step(self) -> int:
        """How much to decode next: one byte past the limit is enough to know it is exceeded."""
        if self._limit is None:
            return _DECODE_STEP
        return min(self._limit - self._seen + 1, _DECODE_STEP)
