"""The central's SQLite store (sqlite-utils): devices, events, evidence, work orders, outbox, quarantine."""

from central.store.database import ensure_schema, open_database
from central.store.devices import record_stats, record_status, sync_devices
from central.store.evidence import evidence_file, record_evidence_file
from central.store.outbox import channel_id, due_notifications, enqueue_notification, record_attempt
from central.store.quarantine import list_quarantine, record_quarantine
from central.store.work_orders import (
    Filing,
    file_event,
    filed_message,
    list_work_orders,
    message_id,
    messages_of_event,
    new_work_order_id,
)

__all__ = [
    "Filing",
    "channel_id",
    "due_notifications",
    "enqueue_notification",
    "ensure_schema",
    "evidence_file",
    "file_event",
    "filed_message",
    "list_quarantine",
    "list_work_orders",
    "message_id",
    "messages_of_event",
    "new_work_order_id",
    "open_database",
    "record_attempt",
    "record_evidence_file",
    "record_quarantine",
    "record_stats",
    "record_status",
    "sync_devices",
]
