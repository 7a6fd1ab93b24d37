"""Sending one message to one channel through Apprise."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from central.store.outbox import channel_id

__all__ = ["AppriseSender", "DeliveryError", "Sender"]


class DeliveryError(Exception):
    """A channel did not take the message. `retry` is False when trying again cannot help."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class Sender(Protocol):
    def send(self, channel: str, title: str, body: str, attachments: Sequence[Path] = ()) -> None:
        """Deliver (with the files attached) or raise DeliveryError."""


class AppriseSender:
    """Channels are the configured Apprise URLs (NotifyConfig.all_urls()), named by `channel_id(url)`."""

    def __init__(self, urls: Iterable[str]) -> None:
        import apprise

        self._apprise = apprise
        self._targets: dict[str, apprise.Apprise] = {}
        for url in urls:
            target = apprise.Apprise()
            if target.add(url):
                self._targets[channel_id(url)] = target

    def send(self, channel: str, title: str, body: str, attachments: Sequence[Path] = ()) -> None:
        target = self._targets.get(channel)
        if target is None:
            raise DeliveryError(f"channel {channel} is no longer configured", retry=False)
        attach = [str(p) for p in attachments] or None
        with self._apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
            ok = target.notify(body=body, title=title, attach=attach)
        if not ok:
            text = " ".join(line.split(" - ", 2)[-1] for line in captured.getvalue().splitlines())
            raise DeliveryError(text.strip() or "Apprise reported a failure")
