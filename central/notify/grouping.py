"""Queueing notices: one message per recipient and site at a time, nothing twice, repeats spaced.

A notice (an order opened, overdue, a camera offline, ...) goes to each of its targets'
channels. Per (channel, recipient, site):
- while a message is pending (waiting for its slot, or retrying through an outage), new notices
  join it: it is rewritten to list them (the first `max_items` in full, the rest counted);
- otherwise a new message is scheduled `group_s` after the previous one, or now if that is
  longer ago: a busy street sends one message every `group_s`, not one per order;
- a notice whose key already went to that channel is dropped (`notification_items.dedupe_key`
  is unique), and the same kind about the same subject reaches a recipient at most once per
  `repeat_s` (kinds in REPEAT_LIMITED: a spot that keeps flipping sends one 'reopened' an hour).
The notifier claims a message (status 'sending') before sending it, so a notice never joins a
message whose text has already gone out. Call inside the transaction of the change it reports.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlite_utils import Database

from central.config import NotifyConfig
from central.notify.recipients import Target
from central.store.transactions import immediate
from central.timefmt import utc_iso

__all__ = ["REPEAT_LIMITED", "GroupingPolicy", "Notice", "compose", "enqueue_notices"]

# Kinds a recipient hears at most once per repeat_s about one subject. Escalation steps are
# spaced by the ladder itself, and a dispatch or an extension is always worth hearing.
_REPEAT_LIMITED_KINDS = ("opened", "reopened", "resolved", "closed", "rejected", "camera_offline")
REPEAT_LIMITED = frozenset(_REPEAT_LIMITED_KINDS)
# The WHERE term of the partial index notification_items_recent (migration 7), word for word:
# SQLite looks a partial index up only for a query that carries its WHERE term.
_IN_RECENT_INDEX = "kind IN (" + ", ".join(f"'{kind}'" for kind in _REPEAT_LIMITED_KINDS) + ")"
MAX_ATTACHMENTS = 3


# Not frozen: a frozen dataclass costs three times as much to make, and the sweep makes one per
# overdue order (thousands at 15:00). Nothing changes a Notice once made.
@dataclass(slots=True)
class Notice:
    kind: str
    key: str  # names this occurrence: queued once per channel, ever
    site: str
    subject: str  # the work order id, or camera:<device>/<camera>
    order_id: str  # '' when the subject is a camera
    title: str
    body: str
    snapshot: str | None = None  # sha256 of the photo a channel may attach


@dataclass(frozen=True)
class GroupingPolicy:
    group_s: float = 300.0
    repeat_s: float = 3600.0
    max_items: int = 20
    console_url: str = "http://127.0.0.1:8000"

    @classmethod
    def from_config(cls, notify: NotifyConfig) -> GroupingPolicy:
        return cls(notify.group_s, notify.repeat_s, notify.max_items, notify.console_url)


def compose(
    site: str, items: Sequence[tuple[str, str, str]], total: int, kinds: dict[str, int], policy: GroupingPolicy
) -> tuple[str, str]:
    """Title and body of a message listing `items` (kind, title, body), `total` notices in all."""
    if total == 1 and items:
        return items[0][1], items[0][2]
    summary = ", ".join(
        f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    where = f"site {site}" if site else "garbagewatch"
    title = f"[garbagewatch] {where}: {total} notices ({summary})"
    parts = [body for _, _, body in items]
    if total > len(items):
        more = f"{policy.console_url.rstrip('/')}/orders?site={site}" if site else policy.console_url
        parts.append(f"... and {total - len(items)} more: {more} (login required)")
    return title, "\n\n-----\n\n".join(parts)


def _dedupe_key(target: Target, notice: Notice) -> str:
    return f"{target.recipient}|{target.channel}|{notice.key}"


def _known_keys(db: Database, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        marks = ", ".join("?" * len(chunk))
        found.update(
            r[0] for r in db.execute(f"SELECT dedupe_key FROM notification_items WHERE dedupe_key IN ({marks})", chunk)
        )
    return found


_HEARD_LATELY = (
    "SELECT 1 FROM notification_items WHERE channel = ? AND recipient = ? AND subject = ? AND kind = ?"
    f" AND created_ts > ? AND {_IN_RECENT_INDEX} LIMIT 1"
)


def _heard_lately(db: Database, target: Target, notice: Notice, since: float) -> bool:
    """Asked only about a kind in REPEAT_LIMITED (the index holds no other)."""
    row = db.execute(_HEARD_LATELY, [target.channel, target.recipient, notice.subject, notice.kind, since]).fetchone()
    return row is not None


def enqueue_notices(
    db: Database, deliveries: Iterable[tuple[Notice, Target]], *, now: float, policy: GroupingPolicy
) -> int:
    """Queue each (notice, target); return how many notices were queued (not dropped)."""
    with immediate(db):
        return _enqueue(db, list(deliveries), now, policy)


def _enqueue(db: Database, todo: list[tuple[Notice, Target]], now: float, policy: GroupingPolicy) -> int:
    keys = [_dedupe_key(t, n) for n, t in todo]
    known = _known_keys(db, keys)
    groups: dict[tuple[str, str, str], list[tuple[Notice, Target, str]]] = {}
    for (notice, target), key in zip(todo, keys, strict=True):
        if key in known:
            continue
        if (
            policy.repeat_s > 0
            and notice.kind in REPEAT_LIMITED
            and _heard_lately(db, target, notice, now - policy.repeat_s)
        ):
            continue
        known.add(key)
        group = notice.site if policy.group_s > 0 else key  # no grouping: every notice alone
        groups.setdefault((target.channel, target.recipient, group), []).append((notice, target, key))
    # Grouped first, then written: one message per (channel, recipient, group) however many
    # notices a call brings (the sweep brings thousands), and all their items in one statement.
    messages = [
        (_message_for(db, channel, recipient, group, items[0][0], now, policy), items)
        for (channel, recipient, group), items in groups.items()
    ]
    db.conn.executemany(
        "INSERT INTO notification_items (notification_id, dedupe_key, channel, recipient, subject, kind, title,"
        " body, created_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (message.id, key, t.channel, t.recipient, n.subject, n.kind, n.title, n.body, now)
            for message, items in messages
            for n, t, key in items
        ],
    )
    db.conn.executemany(
        "UPDATE notifications SET title = ?, body = ?, items = ?, kinds = ?, attachments = ? WHERE id = ?",
        [_composed(db, message, items, policy) for message, items in messages],
    )
    return sum(len(v) for v in groups.values())


@dataclass(frozen=True)
class _Message:
    id: int
    site: str
    held: int  # notices it held before this call (0: made by this call)
    tally: Counter[str] | None  # those notices per kind, when its `kinds` column tells (None: count them)
    attachments: list[str]


def _message_for(
    db: Database, channel: str, recipient: str, group: str, first: Notice, now: float, policy: GroupingPolicy
) -> _Message:
    """The group's pending message, or a new one `group_s` after the group's last."""
    latest = db.execute(
        "SELECT id, status, scheduled_at, attachments, items, kinds FROM notifications WHERE channel = ?"
        " AND recipient = ? AND group_key = ? ORDER BY scheduled_at DESC, id DESC LIMIT 1",
        [channel, recipient, group],
    ).fetchone()
    if latest is not None and latest[1] == "pending":
        held = int(latest[4])
        return _Message(int(latest[0]), first.site, held, _tally(latest[5], held), json.loads(latest[3]))
    at = now if latest is None else max(now, float(latest[2]) + policy.group_s)
    cursor = db.execute(
        "INSERT INTO notifications (work_order_id, kind, channel, recipient, group_key, title, body, items,"
        " kinds, attachments, status, attempts, scheduled_at, next_attempt_at, created_at)"
        " VALUES (?, ?, ?, ?, ?, '', '', 0, '{}', '[]', 'pending', 0, ?, ?, ?)",
        [first.order_id, first.kind, channel, recipient, group, at, at, utc_iso(now)],
    )
    return _Message(int(cursor.lastrowid or 0), first.site, 0, Counter(), [])


def _tally(kinds: str | None, held: int) -> Counter[str] | None:
    """The notices per kind the message holds, as its `kinds` column keeps them.

    Saves reading every item each time notices join (a sweep of 100,000 orders adds to the same
    messages again and again). None when the column is empty (a message queued before it
    existed) or does not add up to `held`: then the items are counted.
    """
    if kinds is None:
        return None
    try:
        tally = Counter({str(k): int(n) for k, n in json.loads(kinds).items()})
    except (ValueError, TypeError, AttributeError):  # edited by hand: count instead
        return None
    return tally if sum(tally.values()) == held else None


def _composed(
    db: Database, message: _Message, items: list[tuple[Notice, Target, str]], policy: GroupingPolicy
) -> tuple[str, str, int, str, str, int]:
    """(title, body, items, kinds, attachments, id) of the message once `items` joined it (already inserted)."""
    attachments = message.attachments
    for notice, target, _ in items:
        if (
            target.attach
            and notice.snapshot
            and notice.snapshot not in attachments
            and len(attachments) < MAX_ATTACHMENTS
        ):
            attachments.append(notice.snapshot)
    if message.held == 0:  # a new message holds just these: nothing to read back
        shown = [(n.kind, n.title, n.body) for n, _, _ in items[: policy.max_items]]
    else:
        shown = [
            (str(k), str(t), str(b))
            for k, t, b in db.execute(
                "SELECT kind, title, body FROM notification_items WHERE notification_id = ? ORDER BY id LIMIT ?",
                [message.id, policy.max_items],
            )
        ]
    if message.tally is not None:
        total = message.held + len(items)
        kinds = message.tally + Counter(n.kind for n, _, _ in items)
    else:
        rows = db.execute(
            "SELECT kind, count(*) FROM notification_items WHERE notification_id = ? GROUP BY kind", [message.id]
        ).fetchall()
        kinds = Counter({str(k): int(n) for k, n in rows})
        total = sum(kinds.values())
    title, body = compose(message.site, shown, total, dict(kinds), policy)
    return title, body, total, json.dumps(dict(sorted(kinds.items()))), json.dumps(attachments), message.id
