"""The text people receive: what happened, the order, the place, the due time, and a link to it.

Every message links to the order in the console (`console_url/orders/<id>`; the console asks
for a login, the message says so): the message itself carries no more than a person needs to
decide to open it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "camera_offline_message",
    "order_closed_message",
    "order_link",
    "order_message",
    "order_opened_message",
]


def order_link(console_url: str, order_id: str) -> str:
    return f"{console_url.rstrip('/')}/orders/{order_id}"


def _place(order: dict[str, Any]) -> str:
    where = f"site {order['site']}, camera {order['camera']}, zone {order['zone']}"
    address = order.get("address") or ""
    lat, lon = order.get("lat"), order.get("lon")
    if address:
        where += f", {address}"
    if lat is not None and lon is not None:
        where += f" ({float(lat):.5f}, {float(lon):.5f})"
    return where


def _link_line(order: dict[str, Any], console_url: str) -> str:
    return f"Evidence and actions: {order_link(console_url, order['id'])} (login required)"


def order_opened_message(order: dict[str, Any], console_url: str) -> tuple[str, str]:
    title = f"[{order['event_code']}] Exposed garbage: work order {order['id']}"
    lines = [
        f"Work order {order['id']} (event code {order['event_code']})",
        f"Where: {_place(order)}",
        f"Opened: {order['opened_at']} (UTC)",
        f"Due: {order['due_at']} (UTC)",
    ]
    if int(order.get("recurrence") or 0) > 0:
        lines.append(f"Garbage came back here: recurrence {order['recurrence']} at this spot")
    lines.append(_link_line(order, console_url))
    return title, "\n".join(lines)


def order_closed_message(order: dict[str, Any], console_url: str) -> tuple[str, str]:
    title = f"[{order['event_code']}] Cleaned up: work order {order['id']} closed"
    body = "\n".join(
        [
            f"Work order {order['id']} is closed: the camera sees the place clean again.",
            f"Where: {_place(order)}",
            f"Closed: {order['closed_at']} (UTC), due was {order['due_at']} (UTC)",
            _link_line(order, console_url),
        ]
    )
    return title, body


_HEADLINES = {
    "dispatched": "dispatched to {assignee}",
    "resolved": "resolved by hand; waiting for the camera to confirm",
    "reopened": "reopened",
    "rejected": "rejected",
    "closed": "closed",
    "reminder": "due soon",
    "overdue": "overdue (escalation level {level})",
    "still_overdue": "still overdue",
    "extension_requested": "extension requested",
    "extension_decided": "extension {decision}",
}


def order_message(
    kind: str,
    order: dict[str, Any],
    console_url: str,
    *,
    reason: str = "",
    actor: str = "",
    level: int = 0,
    decision: str = "",
) -> tuple[str, str]:
    """Title and body for any notice about an order (opened has its own, fuller text)."""
    if kind == "opened":
        return order_opened_message(order, console_url)
    headline = _HEADLINES.get(kind, kind.replace("_", " ")).format(
        assignee=order.get("assignee") or "?", level=level, decision=decision
    )
    title = f"[{order['event_code']}] Work order {order['id']} {headline}"
    lines = [f"Work order {order['id']} (event code {order['event_code']}) is {headline}."]
    if reason:
        lines.append(f"Why: {reason}")
    if actor:
        lines.append(f"By: {actor}")
    lines += [
        f"Where: {_place(order)}",
        f"Status: {order['status']}, due {order['due_at']} (UTC)",
    ]
    if order.get("assignee"):
        lines.append(f"Assignee: {order['assignee']}")
    lines.append(_link_line(order, console_url))
    return title, "\n".join(lines)


def camera_offline_message(
    *, device_id: str, camera: str, site: str, since: str, minutes: float, console_url: str
) -> tuple[str, str]:
    title = f"[garbagewatch] Camera {camera} at site {site or '?'} offline for {minutes:.0f} min"
    body = "\n".join(
        [
            f"Camera {camera} of edge box {device_id} (site {site or 'unknown'}) has been offline since"
            f" {since} (UTC): exposed garbage there is not being watched.",
            f"Devices: {console_url.rstrip('/')}/devices/{device_id} (login required)",
        ]
    )
    return title, body
