"""The HTTP API (Litestar): ``create_app(gateway)`` builds it."""
