"""Device enrolment: the Ed25519 keys the central trusts, their sites, and their revocation."""

from central.devices.registry import (
    CONFIG_REMOVED,
    RESERVED_DEVICE_IDS,
    DeviceRegistry,
    DeviceTrust,
    EnrolledKey,
    EnrolmentError,
    KeySource,
)

__all__ = [
    "CONFIG_REMOVED",
    "RESERVED_DEVICE_IDS",
    "DeviceRegistry",
    "DeviceTrust",
    "EnrolledKey",
    "EnrolmentError",
    "KeySource",
]
