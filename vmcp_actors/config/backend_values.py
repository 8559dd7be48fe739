"""What a backend entry's fields may hold: transports, defaults, bounds, frozen storage.

These are the values :class:`~vmcp_actors.config.backend_spec.BackendSpec` is made of and
checked against, kept apart from the spec itself so that its module is about the spec's
rules (validation, change detection, presentation, parsing).  The converters store
collections as sorted tuples because muster's ``ConfigurationChanged`` treats a missing
and an empty ``env`` or ``headers`` as the same: frozen, they compare equal.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from vmcp_actors.config.fields import show
from vmcp_actors.errors import ValidationError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_REMOTE_TIMEOUT",
    "DEFAULT_STDIO_START_TIMEOUT",
    "MAX_RESPONSE_BYTES",
    "MAX_TIMEOUT",
    "MIN_RESPONSE_BYTES",
    "NAME_PATTERN",
    "NAME_RULE",
    "TransportType",
    "frozen_args",
    "frozen_pairs",
    "transport_type",
]

#: The connect (handshake) timeout of a backend that sets no ``timeout``, whatever its
#: transport: muster's ``DefaultRemoteTimeout`` and the CRD default of ``spec.timeout``.
#: muster gives stdio a fixed 10 s instead, but a stdio server's handshake includes its
#: interpreter start, and ``import fastmcp`` alone took 8-11 s on a loaded 2-core
#: machine: 10 s failed such servers over and over.  A server that never answers still
#: fails within this bound.
DEFAULT_CONNECT_TIMEOUT: Final = 30.0
#: The default for remote backends (kept under muster's name).
DEFAULT_REMOTE_TIMEOUT: Final = DEFAULT_CONNECT_TIMEOUT
#: The default for stdio backends: the same, see ``DEFAULT_CONNECT_TIMEOUT``.
DEFAULT_STDIO_START_TIMEOUT: Final = DEFAULT_CONNECT_TIMEOUT
#: No sane MCP connect takes longer; a larger value is almost always a unit mistake (ms).
MAX_TIMEOUT: Final = 3600.0
#: Bounds of ``maxResponseBytes`` (the largest message a backend may send; unset means
#: the backend stage's default, 16 MiB): below 1 KiB no ``initialize`` answer fits, above
#: 1 GiB the limit no longer protects the host.
MIN_RESPONSE_BYTES: Final = 1 << 10
MAX_RESPONSE_BYTES: Final = 1 << 30
#: A backend or vMCP name: what Kubernetes accepts as a resource name, and safe in a path.
NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$")
NAME_RULE: Final = "must be 1-253 letters, digits, '.', '_' or '-', starting and ending with a letter or digit"


class TransportType(enum.StrEnum):
    """How the runtime talks to a backend: a child process's stdio, or HTTP."""

    STDIO = "stdio"
    STREAMABLE_HTTP = "streamable-http"
    SSE = "sse"

    @property
    def remote(self) -> bool:
        """Muster's ``IsRemote``: everything but stdio."""
        return self is not TransportType.STDIO


def transport_type(value: object) -> TransportType:
    """The transport ``value`` names; a ``ValidationError`` on the ``type`` field otherwise."""
    # Only a string is converted: str() of an alias-bomb list would be gigabytes long.
    if isinstance(value, TransportType):
        return value
    if isinstance(value, str) and value in TransportType.__members__.values():
        return TransportType(value)
    raise ValidationError(
        "type", f"unsupported MCP server type: {show(value)} (expected stdio, streamable-http or sse)", value
    )


def frozen_pairs(value: object) -> tuple[tuple[str, str], ...]:
    """Freeze a mapping into sorted pairs, so missing and empty compare equal (muster)."""
    if value is None:
        return ()
    items: Iterable[Any]
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    return tuple(sorted((str(k), str(v)) for k, v in items))


def frozen_args(value: object) -> tuple[str, ...]:
    """A list of strings as a tuple; a lone string is refused rather than split into characters."""
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"expected a list of strings, got {type(value).__name__}")
    return tuple(str(v) for v in value)
