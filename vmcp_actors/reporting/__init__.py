"""Status sinks: the ``Reporter`` protocol and its implementations."""

from vmcp_actors.reporting.base import FileReporter, LoggingReporter, NoOpReporter, OnceShutdown, Reporter, Shutdown

__all__ = ["FileReporter", "LoggingReporter", "NoOpReporter", "OnceShutdown", "Reporter", "Shutdown"]
