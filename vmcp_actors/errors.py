"""The project's own error types.

Every error a caller can act on is one of these, so an embedding process can catch
``VmcpError`` without also swallowing programming errors from elsewhere, and so a
message always names the field or resource that is wrong.
"""

from __future__ import annotations


class VmcpError(Exception):
    """Base class of every error vmcp-actors raises on purpose."""


class ValidationError(VmcpError, ValueError):
    """A value failed validation; ``field`` is the dotted path of the offending field.

    Subclassing ``ValueError`` keeps the error catchable by code that only knows the
    standard library, while ``field`` lets tools and tests point at the exact key.
    """

    def __init__(self, field: str, message: str, value: object = None) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field}: {message}")


class ReporterClosedError(VmcpError, RuntimeError):
    """``report_status`` was called after the reporter's shutdown began.

    Raised rather than silently dropped: a status sent after shutdown would never reach
    the sink, and the caller should know its update was lost.
    """


class ReporterNotStartedError(VmcpError, RuntimeError):
    """``report_status`` was called on a reporter whose ``start()`` has not run."""


class ShutdownTimeoutError(VmcpError, TimeoutError):
    """A reporter could not flush its pending status within the shutdown timeout."""

    def __init__(self, message: str, pending: object = None) -> None:
        self.pending = pending
        super().__init__(message)
