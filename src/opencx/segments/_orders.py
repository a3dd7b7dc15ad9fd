"""Completed orders from the log: who, when, and for how much."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from opencx.warehouse import Warehouse

ORDER_EVENT = "Order Completed"


def order_revenue(warehouse: Warehouse, properties: ir.StringValue) -> ir.FloatingValue:
    """`properties.revenue`, else `properties.total` (Segment's spec names both), as a
    number; NULL when neither is one."""
    return ibis.coalesce(
        warehouse.json_text(properties, "revenue").try_cast("float64"),
        warehouse.json_text(properties, "total").try_cast("float64"),
    )


def orders(warehouse: Warehouse) -> ir.Table:
    """Every `Order Completed` event as person_id, seq, channel, at and revenue."""
    events = warehouse.events()
    rows = events.filter(events.event == ORDER_EVENT)
    revenue = order_revenue(warehouse, rows.properties)
    return rows.select("person_id", "seq", "channel", at=rows.timestamp, revenue=revenue)


def day_number(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Days since 1970-01-01 of a UTC timestamp: whole calendar days, on every engine."""
    return ts.date().epoch_days()
