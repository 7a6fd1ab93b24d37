"""Who hears what the case flow does, and how: notice kinds, routes, people and their channels."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from central.config.base import Strict
from wire.ids import check_id

__all__ = [
    "DEFAULT_ROUTES",
    "NOTICE_KINDS",
    "ChannelConfig",
    "NotifyConfig",
    "PersonConfig",
]


def _check_apprise_url(url: str) -> str:
    import apprise  # imported here: it is slow to import and only this check and the sender need it

    if not apprise.Apprise().add(url):
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        raise ValueError(f"Apprise does not understand this {scheme}:// URL")
    return url


# What the case flow tells people about. 'overdue' and 'still_overdue' go up the escalation
# ladder instead of through routes.
NOTICE_KINDS = (
    "opened",
    "dispatched",
    "resolved",
    "reopened",
    "closed",
    "rejected",
    "reminder",
    "overdue",
    "still_overdue",
    "camera_offline",
    "extension_requested",
    "extension_decided",
)

# Who hears what: notice kind -> roles. A role is looked up in the order's site first, then in
# notify.roles; 'assignee' is the order's assignee.
DEFAULT_ROUTES: dict[str, list[str]] = {
    "opened": ["responsible"],
    "dispatched": ["assignee"],
    "resolved": [],
    "reopened": ["responsible", "assignee", "supervisor"],
    "closed": ["responsible", "assignee"],
    "rejected": ["responsible"],
    "reminder": ["responsible", "assignee"],
    "camera_offline": ["responsible"],
    "extension_requested": ["supervisor"],
    "extension_decided": ["assignee", "responsible"],
}


class ChannelConfig(Strict):
    """One way to reach a person: an Apprise URL, and whether the snapshot may go along."""

    url: str
    # Photos of streets show people: attach them only where the channel is private enough.
    attach_snapshot: bool = False

    _url = field_validator("url")(_check_apprise_url)


class PersonConfig(Strict):
    id: str
    name: str = ""
    channels: list[ChannelConfig] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id(v, "person id")


class NotifyConfig(Strict):
    # Apprise URLs (mailto://, dingtalk://, wecombot://, feishu://, ntfy://, json://, ...) that
    # hear every notice (a control room's feed). They often hold tokens, so the database refers
    # to them by a hash, never by the URL.
    urls: list[str] = Field(default_factory=list)
    people: list[PersonConfig] = Field(default_factory=list)
    roles: dict[str, list[str]] = Field(default_factory=dict)  # role -> person ids, for every site
    routes: dict[str, list[str]] = Field(default_factory=dict)  # kind -> roles, over DEFAULT_ROUTES
    console_url: str = "http://127.0.0.1:8000"
    first_retry_s: float = Field(default=5.0, gt=0)
    max_retry_s: float = Field(default=600.0, gt=0)
    # An outage must lose nothing: at the max_retry_s cap, 1000 attempts keep trying for about a week.
    max_attempts: int = Field(default=1000, ge=1)
    poll_s: float = Field(default=1.0, gt=0)
    # One message per recipient and site at most every group_s: what comes in between is
    # gathered into the next one (0: every notice is its own message).
    group_s: float = Field(default=300.0, ge=0)
    # The same kind of notice about the same order reaches a recipient at most once per repeat_s.
    repeat_s: float = Field(default=3600.0, ge=0)
    max_items: int = Field(default=20, ge=1)  # orders spelled out in one message; the rest are counted
    # Deliver from a child process of the service (central.notify.process), so that Apprise's
    # Python never holds up ingest; false: a thread of the service's own process.
    process: bool = True
    # How much lower the notifier process's CPU priority is than the service's (os.nice; 0: the
    # same). When the CPUs are busy, ingest goes first: its acks hold up the edges, a notice can
    # wait milliseconds (docs/benchmarks.md measures it).
    process_nice: int = Field(default=10, ge=0, le=19)
    # A message claimed for sending longer ago than this is taken to be a dead instance's and is
    # sent again (several instances share the outbox); far above any send's time.
    claim_lease_s: float = Field(default=600.0, gt=0)

    @field_validator("urls")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        for i, url in enumerate(v):
            try:
                _check_apprise_url(url)
            except ValueError as exc:
                raise ValueError(f"item {i}: {exc}") from None
        return v

    @field_validator("routes")
    @classmethod
    def _routes(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(v) - set(DEFAULT_ROUTES))
        if unknown:
            raise ValueError(f"unknown notice kind(s) {', '.join(unknown)}; known: {', '.join(DEFAULT_ROUTES)}")
        return v

    @model_validator(mode="after")
    def _people(self) -> NotifyConfig:
        ids = [p.id for p in self.people]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"person {twice[0]!r} is listed twice")
        for role, members in self.roles.items():
            for m in members:
                if m not in ids:
                    raise ValueError(f"roles.{role}: {m!r} is not in notify.people")
        return self

    def route(self, kind: str) -> list[str]:
        return self.routes.get(kind, DEFAULT_ROUTES.get(kind, []))

    def person(self, person_id: str) -> PersonConfig | None:
        return next((p for p in self.people if p.id == person_id), None)

    def all_urls(self) -> list[str]:
        """Every Apprise URL the sender must know: the feeds and every person's channels."""
        urls = list(self.urls)
        for p in self.people:
            urls.extend(c.url for c in p.channels if c.url not in urls)
        return urls
