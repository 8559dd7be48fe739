"""Writing the status to Kubernetes: the VirtualMCPServer/status sink and its client-side rate limit."""
