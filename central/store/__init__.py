"""The central's SQLite store (sqlite-utils): devices, events, evidence, work orders, outbox, quarantine.

The schema is brought up to date by numbered migrations (central.store.migrations) at open.
"""

from central.store.database import ensure_schema, open_database
from central.store.devices import camera_health, record_stats, record_status, sync_devices
from central.store.evidence import evidence_file, record_evidence_file
from central.store.migrations import MIGRATIONS, migrate, schema_version
from central.store.order_changes import Change, apply_transition
from central.store.outbox import (
    channel_id,
    claim_notification,
    delivery_log,
    due_notifications,
    enqueue_notification,
    record_attempt,
    release_claims,
)
from central.store.quarantine import list_quarantine, record_quarantine
from central.store.transactions import immediate
from central.store.work_orders import (
    OPEN,
    Filing,
    file_event,
    filed_message,
    hotspots,
    list_work_orders,
    message_id,
    messages_of_event,
    new_work_order_id,
    order_evidence,
    order_history,
    work_order,
)

__all__ = [
    "MIGRATIONS",
    "OPEN",
    "Change",
    "Filing",
    "apply_transition",
    "camera_health",
    "channel_id",
    "claim_notification",
    "delivery_log",
    "due_notifications",
    "enqueue_notification",
    "ensure_schema",
    "evidence_file",
    "file_event",
    "filed_message",
    "hotspots",
    "immediate",
    "list_quarantine",
    "list_work_orders",
    "message_id",
    "messages_of_event",
    "migrate",
    "new_work_order_id",
    "open_database",
    "order_evidence",
    "order_history",
    "record_attempt",
    "record_evidence_file",
    "record_quarantine",
    "record_stats",
    "record_status",
    "release_claims",
    "schema_version",
    "sync_devices",
    "work_order",
]
