"""Who hears a notice: the roles it is routed to, resolved per site into people and their channels.

A role is looked up in the site's roles first, then in notify.roles (CaseRules.roles has both,
merged); the role 'assignee' is the order's assignee. Each person has one or more channels
(Apprise URLs); the feeds in notify.urls hear every notice. A channel may carry the snapshot
only if its config says `attach_snapshot: true`; feeds never do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from central.config import NotifyConfig
from central.store.outbox import channel_id

__all__ = ["ASSIGNEE", "FEED", "Recipients", "Target"]

log = logging.getLogger("central.notify")

ASSIGNEE = "assignee"
FEED = ""  # the recipient name of a feed (notify.urls)


@dataclass(frozen=True)
class Target:
    recipient: str  # person id; FEED for notify.urls
    channel: str  # channel_id(url)
    attach: bool  # may carry the snapshot


class Recipients:
    def __init__(self, notify: NotifyConfig) -> None:
        self.feeds = tuple(Target(FEED, channel_id(u), False) for u in notify.urls)
        self._channels: dict[str, tuple[Target, ...]] = {
            p.id: tuple(Target(p.id, channel_id(c.url), c.attach_snapshot) for c in p.channels) for p in notify.people
        }

    def people(
        self, roles: Iterable[str], site_roles: Mapping[str, tuple[str, ...]], assignee: str | None
    ) -> list[str]:
        """The people holding `roles` at a site, each once, in the order of the roles."""
        out: list[str] = []
        for role in roles:
            members = ((assignee,) if assignee else ()) if role == ASSIGNEE else site_roles.get(role, ())
            for person in members:
                if person not in out:
                    out.append(person)
        return out

    def targets(
        self, roles: Iterable[str], site_roles: Mapping[str, tuple[str, ...]], assignee: str | None = None
    ) -> list[Target]:
        """Every channel that hears a notice routed to `roles`: the people's, then the feeds."""
        out: list[Target] = []
        for person in self.people(roles, site_roles, assignee):
            channels = self._channels.get(person)
            if channels is None:
                # An assignee who is a console user without notification channels, say.
                log.debug("no channels configured for %r", person)
                continue
            out.extend(channels)
        out.extend(self.feeds)
        return out
