"""pykka actors: thin shells that feed the pure core messages and perform its effects."""
