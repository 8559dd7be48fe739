"""The status in Kubernetes: pure mapping, server-side apply to /status, the update fallback, the rate limit."""
