"""The sample brand, Northwind Mobile, and loading it through the normal ingestion path."""

from __future__ import annotations

from opencx.demo._northwind import BROKEN_RELEASE, SOURCES, BrandSource, generate_brand
from opencx.demo.load import DemoReport, load_demo

__all__ = ["BROKEN_RELEASE", "SOURCES", "BrandSource", "DemoReport", "generate_brand", "load_demo"]
