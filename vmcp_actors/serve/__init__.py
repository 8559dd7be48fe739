"""``vmcp-actors serve``: an MCP server (streamable HTTP) in front of the runtime's data plane."""
