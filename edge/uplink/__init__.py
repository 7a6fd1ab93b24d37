"""MQTT v5 uplink: spooled evidence to the central, in segments, with application acks."""

from edge.uplink.mqtt import Uplink
from edge.uplink.tracker import BundleKey, DeliveryTracker

__all__ = ["BundleKey", "DeliveryTracker", "Uplink"]
