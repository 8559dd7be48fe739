"""A logging filter that scrubs secrets from every record, whoever logged it.

At DEBUG the MCP SDK and its HTTP stack (``mcp``, ``httpx2``, ``httpcore2``) log full
URLs and raw response headers -- including a 401 challenge that echoes the bearer
token.  Their messages are not ours to format, so the scrubbing happens where every
record passes: a :class:`RedactionFilter` on the handlers that write records out.  It
renders the record's message with its arguments, its exception and its stack, scrubs
the text with a :class:`~vmcp_actors.config.secret_values.SecretRedactor`, and leaves
the record holding only the scrubbed text (no arguments, no live exception), so no
formatter further down can render the original.

``vmcp-actors run`` installs one on its handlers.  A host embedding the runtime
installs one on its own::

    redactor = SecretRedactor.from_config(config)
    install_log_redaction(logging.getLogger(), redactor)  # every handler of the root logger
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from vmcp_actors.config.secret_values import SecretRedactor

__all__ = ["RedactionFilter", "install_log_redaction"]

#: Logged instead of a record that could not be scrubbed: dropping its text leaks nothing.
UNREDACTABLE = "<log record withheld: it could not be checked for secrets>"

_FORMATTER = logging.Formatter()


class RedactionFilter(logging.Filter):
    """Scrubs the message, arguments, exception and stack text of every record it sees.

    Never drops a record and never raises: a record that cannot be rendered or scrubbed
    is replaced by a fixed text, because raising inside logging would print the raw
    arguments through ``Handler.handleError``.
    """

    def __init__(self, redactor: SecretRedactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub ``record`` in place; always keep it."""
        try:
            self._scrub(record)
        except Exception:  # noqa: BLE001 - logging must go on; the record's text is withheld instead
            record.msg, record.args = UNREDACTABLE, None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True

    def _scrub(self, record: logging.LogRecord) -> None:
        scrub = self.redactor.scrub
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - arguments that do not fit the format: keep the format only
            message = f"{record.msg} (its arguments did not fit the message)"
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        # Formatters render exc_text when it is set; without exc_info none can re-render the original.
        record.exc_info = None
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)


def install_log_redaction(
    target: logging.Logger | logging.Handler | Iterable[logging.Handler], redactor: SecretRedactor
) -> RedactionFilter:
    """Add one :class:`RedactionFilter` to a handler, to handlers, or to every handler of a logger.

    Filters on a *handler* see every record the handler writes, whichever logger it came
    from; a filter on a logger would miss records propagated from its children.
    Handlers added to a logger later need their own call.  Returns the filter, so it can
    be removed again.
    """
    redaction = RedactionFilter(redactor)
    if isinstance(target, logging.Logger):
        handlers: Iterable[logging.Handler] = list(target.handlers)
    elif isinstance(target, logging.Handler):
        handlers = [target]
    else:
        handlers = list(target)
    for handler in handlers:
        handler.addFilter(redaction)
    return redaction
