"""The sample brand, Northwind Mobile, and loading it through the normal ingestion path."""

from __future__ import annotations

from opencx.demo.brand import BROKEN_RELEASE, DEFAULT_END, SOURCES, BrandSource, generate_brand
from opencx.demo.load import DemoReport, load_demo

__all__ = [
    "BROKEN_RELEASE",
    "DEFAULT_END",
    "SOURCES",
    "BrandSource",
    "DemoReport",
    "generate_brand",
    "load_demo",
]
