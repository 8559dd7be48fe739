"""Status sinks: the ``Reporter`` protocol, its sinks and the coalescing actor reporter."""
