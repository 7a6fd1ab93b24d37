"""Durable store-and-forward of evidence bundles until the central acks them."""

from edge.spool.durable import fsync_dir, write_durably
from edge.spool.records import BundleState, FileState, PendingBundle, SpoolFile, SpoolStats
from edge.spool.store import Spool

__all__ = [
    "BundleState",
    "FileState",
    "PendingBundle",
    "Spool",
    "SpoolFile",
    "SpoolStats",
    "fsync_dir",
    "write_durably",
]
