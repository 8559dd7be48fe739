"""The actor shell's toolkit: the guarded pykka actor base, timers and clocks, the asyncio loop thread, backoff."""
