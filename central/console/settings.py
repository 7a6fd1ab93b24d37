"""Settings of the web console (sign-in, sessions, uploads, pages).

They belong in the central's YAML as a `console:` section. CentralConfig is strict, so the key
must be declared there (these fields, in central/config.py); until it is, `console_settings_of`
gives the defaults, and tests pass a ConsoleSettings to `create_app` directly.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from central.config import CentralConfig

__all__ = ["PAGE_SIZE", "ConsoleSettings", "console_settings_of"]

# Fixed by the page contract (GET /orders?page=N shows 50 orders a page).
PAGE_SIZE = 50


class ConsoleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # 'auto': Secure cookies when the request came over https (directly, or from a proxy uvicorn
    # trusts with --forwarded-allow-ips); 'always' behind a TLS proxy uvicorn does not trust;
    # 'never' only for plain-http tests and demos on 127.0.0.1.
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    # A session ends after this long without a request, and in any case after session_max_s.
    session_idle_s: float = Field(default=8 * 3600.0, gt=0)
    session_max_s: float = Field(default=24 * 3600.0, gt=0)
    # Sign-in throttling: this many failures per username and address in the window, then 429
    # until the oldest failure leaves the window; per address over all usernames, a larger cap.
    login_max_failures: int = Field(default=5, ge=1)
    login_window_s: float = Field(default=15 * 60.0, gt=0)
    login_max_failures_per_ip: int = Field(default=50, ge=1)
    # A resolve photo: phones send 2-6 MB JPEGs; larger is refused (413) while it streams in.
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_form_bytes: int = Field(default=64 * 1024, ge=1024)  # every other form
    # An open order whose deadline is this close counts as "due soon" on the dashboard.
    due_soon_s: float = Field(default=2 * 3600.0, gt=0)
    default_language: Literal["zh", "en"] = "zh"
    # The whole audit chain is re-verified at most this often for the status shown on pages
    # (an order's own rows are checked at every view). 0: at every view (tests).
    audit_status_ttl_s: float = Field(default=300.0, ge=0)
    # H.265 clips play through an H.264 preview of at most this width (made once, cached).
    preview_max_width: int = Field(default=1280, ge=160, le=7680)
    # Times on pages and the date filter use this zone; None: the first configured city's.
    timezone: str | None = None
    # Refuse a POST whose Origin header names another host (on top of the CSRF token).
    check_origin: bool = True


def console_settings_of(config: CentralConfig) -> ConsoleSettings:
    """config.console as ConsoleSettings (whichever model class config.py declares it with); defaults if absent."""
    value = getattr(config, "console", None)
    return ConsoleSettings.model_validate(value.model_dump()) if isinstance(value, BaseModel) else ConsoleSettings()
