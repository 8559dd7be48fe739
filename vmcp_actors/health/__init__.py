"""Health: pure per-backend rules, circuit breaker and status builder (toolhive's), and the actor that probes."""
