"""The runtime: supervision of the actors and the embedding API that starts, changes and stops them."""
