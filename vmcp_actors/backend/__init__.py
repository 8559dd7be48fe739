"""One MCP backend: its pure lifecycle, failure classification, MCP session and the actor that drives them."""
