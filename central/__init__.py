"""The central service: receives evidence over MQTT, verifies it, files work orders, notifies people.

from central import CentralConfig, CentralService, load_config
"""

from central.config import (
    BrokerConfig,
    CentralConfig,
    ConfigError,
    DeviceConfig,
    LimitsConfig,
    NotifyConfig,
    TlsConfig,
    WorkOrderConfig,
    load_config,
)
from central.counters import Counters
from central.evidence_store import ContentStore
from central.service import CentralService

__all__ = [
    "BrokerConfig",
    "CentralConfig",
    "CentralService",
    "ConfigError",
    "ContentStore",
    "Counters",
    "DeviceConfig",
    "LimitsConfig",
    "NotifyConfig",
    "TlsConfig",
    "WorkOrderConfig",
    "load_config",
]
