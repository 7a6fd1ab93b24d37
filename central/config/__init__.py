"""The central's configuration: one YAML file, strictly validated (unknown keys are refused).

Relative paths in the file (data_dir, key files, TLS files) are relative to the file itself.
Tests and the demo build a `CentralConfig` in code instead.

One module per concept; import every name from here (`from central.config import CentralConfig`):
- base: ConfigError, the strict model every section is, file-relative paths;
- transport: the MQTT broker, the devices the central trusts, size limits;
- notify: notice kinds, their default routes, people and their channels;
- deadlines: cities, the calendar, the escalation ladder, work orders' defaults;
- sites: sites and their cameras' places;
- retention: how long evidence files are kept;
- root: CentralConfig (the sections checked against each other) and load_config.
"""

from central.config.base import ConfigError
from central.config.deadlines import (
    CalendarConfig,
    CityConfig,
    EscalationConfig,
    LadderStepConfig,
    WorkOrderConfig,
)
from central.config.notify import DEFAULT_ROUTES, NOTICE_KINDS, ChannelConfig, NotifyConfig, PersonConfig
from central.config.retention import RetentionConfig
from central.config.root import CentralConfig, load_config
from central.config.sites import CameraPlaceConfig, SiteConfig
from central.config.transport import BrokerConfig, DeviceConfig, LimitsConfig, TlsConfig

__all__ = [
    "DEFAULT_ROUTES",
    "NOTICE_KINDS",
    "BrokerConfig",
    "CalendarConfig",
    "CameraPlaceConfig",
    "CentralConfig",
    "ChannelConfig",
    "CityConfig",
    "ConfigError",
    "DeviceConfig",
    "EscalationConfig",
    "LadderStepConfig",
    "LimitsConfig",
    "NotifyConfig",
    "PersonConfig",
    "RetentionConfig",
    "SiteConfig",
    "TlsConfig",
    "WorkOrderConfig",
    "load_config",
]
