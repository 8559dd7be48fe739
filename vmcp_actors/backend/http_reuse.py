"""Keep-alive for streamable HTTP: one TCP connection serves many requests.

The SDK's streamable HTTP client reads a request's SSE response until the JSON-RPC
response arrives and then closes it, without reading the few bytes that end the HTTP body
(the chunked terminator, sent right after).  An HTTP/1.1 connection whose response was not
read to the end cannot be reused, so httpcore drops it, and every request opens a new TCP
connection to the backend (toolhive's vMCP does the same, measured).

:class:`DrainingTransport` wraps the HTTP transport so that closing a POST response first
reads what is left of its body, for at most :data:`DRAIN_SECONDS`: the rest is normally
already in the socket buffer, so this costs nothing, and the connection goes back to the
pool for the next request.  A body that does not end quickly is closed as before.

One caveat, measured: a backend whose sockets lack ``TCP_NODELAY`` sends that terminator
~40 ms late (Nagle waiting for a delayed ACK), which only a reader that waits for it sees.
Servers set it as a rule (Go, Node, uvicorn binding a host and port); a Python server handed
a listening socket created without ``IPPROTO_TCP`` does not.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Final

import anyio
import httpx2

__all__ = ["DRAIN_SECONDS", "KEEPALIVE_EXPIRY", "DrainingTransport", "env_proxy_configured"]

DRAIN_SECONDS: Final = 0.25
"""How long closing a response may wait for the end of its body before giving up on reuse."""

KEEPALIVE_EXPIRY: Final = 2.0
"""Idle connections are dropped after this many seconds: before the server's own keep-alive
timeout (uvicorn's and Node's are 5 s), so a request never races the server closing the idle
connection it was about to reuse -- a read error there would end the whole MCP session."""

_PROXY_VARIABLES: Final = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def env_proxy_configured() -> bool:
    """Whether the environment names an HTTP proxy (httpx applies it only with its default transport)."""
    return any(os.environ.get(name) for name in _PROXY_VARIABLES)


class _DrainingStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream) -> None:
        self._inner = inner
        self._finished = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk
        self._finished = True

    async def aclose(self) -> None:
        try:
            if not self._finished:
                with anyio.move_on_after(DRAIN_SECONDS):
                    async for _ in self._inner:
                        pass
        except httpx2.HTTPError:
            pass  # the connection broke meanwhile: nothing to reuse
        finally:
            with anyio.CancelScope(shield=True):
                await self._inner.aclose()


class DrainingTransport(httpx2.AsyncBaseTransport):
    """An ``AsyncHTTPTransport`` whose POST responses leave their connection reusable."""

    def __init__(self, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx2.AsyncHTTPTransport(limits=httpx2.Limits(keepalive_expiry=KEEPALIVE_EXPIRY))

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send ``request``; a POST's response stream drains itself when closed."""
        response = await self._inner.handle_async_request(request)
        if request.method != "POST" or not isinstance(response.stream, httpx2.AsyncByteStream):
            return response
        return httpx2.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_DrainingStream(response.stream),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        """Close the pool."""
        await self._inner.aclose()
