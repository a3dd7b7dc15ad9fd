"""HTTP layer: thin routers over the library; `create_app` builds the server."""

from __future__ import annotations

from opencx.api.app import create_app

__all__ = ["create_app"]
