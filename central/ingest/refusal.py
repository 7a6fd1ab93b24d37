"""Refusal: bad input, with what was wrong and whom (if anyone) to tell."""

from __future__ import annotations

from typing import Literal

from wire.messages import EventKind

__all__ = ["AckRef", "NotYet", "Refusal"]

AckRef = tuple[Literal["file", "event"], str]


class Refusal(Exception):
    """Input the central will not accept.

    reason: a short stable code (it names a counter and the quarantine row);
    detail: one human sentence saying what was wrong;
    ack: the file or event to answer 'rejected' for, when the device is known and the ref is valid;
    kind: which message of the event is rejected (confirmed, update, cleared), when known;
    saved_sha256: set when the refused content is already kept in the quarantine store.
    """

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        ack: AckRef | None = None,
        kind: EventKind | None = None,
        saved_sha256: str | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.ack = ack
        self.kind = kind
        self.saved_sha256 = saved_sha256


class NotYet(Exception):
    """Several central instances: what this message needs may still be in another instance's batch.

    Raised only where waiting can help (an init, segments or files another instance is about to
    commit). The consumer keeps the message, unacked, and tries it again shortly; once its grace
    period is over the handler answers `fallback` instead: a FileResult to send, or a Refusal to raise.
    """

    def __init__(self, detail: str, fallback: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fallback = fallback
