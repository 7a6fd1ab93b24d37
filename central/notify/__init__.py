"""Notifications through Apprise: who hears what, grouped per recipient and site, sent from the outbox."""

from central.notify.grouping import REPEAT_LIMITED, GroupingPolicy, Notice, compose, enqueue_notices
from central.notify.messages import (
    camera_offline_message,
    order_closed_message,
    order_link,
    order_message,
    order_opened_message,
)
from central.notify.recipients import ASSIGNEE, FEED, Recipients, Target
from central.notify.sender import AppriseSender, DeliveryError, Sender
from central.notify.worker import NotificationWorker, retry_delay

__all__ = [
    "ASSIGNEE",
    "FEED",
    "REPEAT_LIMITED",
    "AppriseSender",
    "DeliveryError",
    "GroupingPolicy",
    "Notice",
    "NotificationWorker",
    "Recipients",
    "Sender",
    "Target",
    "camera_offline_message",
    "compose",
    "enqueue_notices",
    "order_closed_message",
    "order_link",
    "order_message",
    "order_opened_message",
    "retry_delay",
]
