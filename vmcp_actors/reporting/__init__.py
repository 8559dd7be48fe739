"""Status sinks: the ``Reporter`` protocol, the sinks, the pure coalescing rules and the actor reporter."""
