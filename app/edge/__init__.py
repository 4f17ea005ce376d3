"""The HTTP edge: the contract, ASGI middleware, rate limits, responses (public Starlette API)."""
