"""The web app for people: dashboard, customers and the customer-360 page, settings."""

from __future__ import annotations

from opencx.web.app import error_page, install

__all__ = ["error_page", "install"]
