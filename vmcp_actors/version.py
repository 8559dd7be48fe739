"""The package version, defined once: setup.cfg reads it, and the MCP client announces it to every backend."""

__version__ = "0.1.0"
