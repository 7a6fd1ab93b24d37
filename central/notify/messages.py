"""The text people receive: work order id, place, due time and a link to the console."""

from __future__ import annotations

from typing import Any

__all__ = ["order_closed_message", "order_link", "order_opened_message"]


def order_link(console_url: str, order_id: str) -> str:
    return f"{console_url.rstrip('/')}/orders/{order_id}"


def _place(order: dict[str, Any]) -> str:
    return f"site {order['site']}, camera {order['camera']}, zone {order['zone']}"


def order_opened_message(order: dict[str, Any], console_url: str) -> tuple[str, str]:
    title = f"[{order['event_code']}] Exposed garbage: work order {order['id']}"
    body = "\n".join(
        [
            f"Work order {order['id']} (event code {order['event_code']})",
            f"Where: {_place(order)}",
            f"Opened: {order['opened_at']} (UTC)",
            f"Due: {order['due_at']} (UTC)",
            f"Evidence: {order_link(console_url, order['id'])}",
        ]
    )
    return title, body


def order_closed_message(order: dict[str, Any], console_url: str) -> tuple[str, str]:
    title = f"[{order['event_code']}] Cleaned up: work order {order['id']} closed"
    body = "\n".join(
        [
            f"Work order {order['id']} is closed: the camera sees the place clean again.",
            f"Where: {_place(order)}",
            f"Closed: {order['closed_at']} (UTC), due was {order['due_at']} (UTC)",
            f"Evidence: {order_link(console_url, order['id'])}",
        ]
    )
    return title, body
