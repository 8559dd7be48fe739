"""Where the health actor leaves the latest status for readers on any thread.

``Runtime.status()``, the CLI's table and the metrics all want the current status at any
moment; asking the health actor would make them wait behind its mailbox (and fail once it
has stopped).  The actor instead stores each status it builds -- an immutable value -- in
a :class:`StatusCell`, which anyone reads without waiting.
"""

from __future__ import annotations

from vmcp_actors.model.status import Status

__all__ = ["StatusCell"]


class StatusCell:
    """The latest status built, readable from any thread without waiting."""

    __slots__ = ("value",)

    def __init__(self, value: Status | None = None) -> None:
        self.value = value
