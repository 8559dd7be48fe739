"""Status sinks: the ``Reporter`` protocol and its implementations."""

from vmcp_actors.reporting.base import FileReporter, LoggingReporter, NoOpReporter, OnceShutdown, Reporter, Shutdown
from vmcp_actors.reporting.factory import new_reporter
from vmcp_actors.reporting.kubernetes import K8sReporter

__all__ = [
    "FileReporter",
    "K8sReporter",
    "LoggingReporter",
    "NoOpReporter",
    "OnceShutdown",
    "Reporter",
    "Shutdown",
    "new_reporter",
]
