"""The router: same API as a model server, forwards to the primary with per-request fallback."""
