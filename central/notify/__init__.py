"""Notifications through Apprise, sent from the outbox by a worker thread."""

from central.notify.messages import order_closed_message, order_link, order_opened_message
from central.notify.sender import AppriseSender, DeliveryError, Sender
from central.notify.worker import NotificationWorker, retry_delay

__all__ = [
    "AppriseSender",
    "DeliveryError",
    "NotificationWorker",
    "Sender",
    "order_closed_message",
    "order_link",
    "order_opened_message",
    "retry_delay",
]
