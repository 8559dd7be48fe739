"""Which sink a reporter writes to, as a bounded ``sink`` label, and its request hook.

A label is a word per sink *type* (``kubernetes``, ``file``, ``log``, ``noop``; a tee
joins its sinks' words with ``+``), never a path, a URL or an object name, so it cannot
grow with configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from vmcp_actors.reporting.actor_reporter import ActorReporter
from vmcp_actors.reporting.kubernetes.reporter import K8sReporter
from vmcp_actors.reporting.sinks import FileReporter, LoggingReporter, NoOpReporter, TeeReporter

__all__ = ["attach_request_observer", "sink_label"]

_WORDS: Final[dict[type, str]] = {
    K8sReporter: "kubernetes",
    FileReporter: "file",
    LoggingReporter: "log",
    NoOpReporter: "noop",
}


def sink_label(sink: object) -> str:
    """The ``sink`` label of a reporter: its type's word (a tee joins its sinks' words)."""
    if isinstance(sink, ActorReporter):
        return sink_label(sink.sink)
    if isinstance(sink, TeeReporter):
        return "+".join(sink_label(inner) for inner in sink.sinks) or "tee"
    word = _WORDS.get(type(sink))
    if word is not None:
        return word
    return type(sink).__name__.lower().removesuffix("reporter") or "sink"


def attach_request_observer(sink: object, observer: Callable[[str, int | None], None]) -> int:
    """Give every :class:`K8sReporter` inside ``sink`` the request ``observer``; return how many."""
    if isinstance(sink, ActorReporter):
        return attach_request_observer(sink.sink, observer)
    if isinstance(sink, TeeReporter):
        return sum(attach_request_observer(inner, observer) for inner in sink.sinks)
    if isinstance(sink, K8sReporter):
        sink.request_observer = observer
        return 1
    return 0
