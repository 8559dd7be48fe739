"""The package version, defined once: setup.cfg reads it, the MCP client reports it."""

__version__ = "0.1.0"
