"""The vMCP data plane: aggregation of the backends' capabilities and routing of requests to them."""
