"""The audit part of `garbagewatch verify`: the bundle's audit rows against the central's signed checkpoint.

Separate from garbagewatch.verify because it is a chain check of its own: each row must hash to
its recorded sha256 and link to its predecessor, the last row must be the head the checkpoint
signs, and the checkpoint's key is trusted only when --central-key pins it. `check_audit`
returns the rows the signed checkpoint vouches for (the walk back from the signed head), the
only rows that may excuse anything (a purged file).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import TYPE_CHECKING, Any

import wire

if TYPE_CHECKING:
    from garbagewatch.verify import Verdict

__all__ = ["check_audit"]


def _audit_rows(members: dict[str, bytes], verdict: Verdict) -> tuple[list[dict[str, Any]], set[int]] | None:
    """The rows, and the positions (in that list) of those whose hash does not match their content."""
    rows_raw = members.get("audit/rows.jsonl")
    if rows_raw is None:
        verdict.fail("audit/rows.jsonl is missing")
        return None
    rows: list[dict[str, Any]] = []
    unhashed: set[int] = set()
    bad = 0
    for n, line in enumerate(rows_raw.decode("utf-8", "replace").splitlines(), 1):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not an object")
            body = {k: v for k, v in row.items() if k != "sha256"}
            recomputed = hashlib.sha256(wire.canonical_json(body)).hexdigest()
        except (ValueError, wire.WireError):
            verdict.fail(f"audit/rows.jsonl line {n}: not a JSON object")
            bad += 1
            continue
        if row.get("sha256") != recomputed:
            verdict.fail(f"audit/rows.jsonl line {n} (seq {row.get('seq')}): its hash does not match its content")
            unhashed.add(len(rows))
            bad += 1
        rows.append(row)
    if rows and not bad:
        verdict.ok(f"audit rows: {len(rows)} rows each hash to their recorded sha256")
    for before, row in itertools.pairwise(rows):
        if not isinstance(row.get("seq"), int) or not isinstance(before.get("seq"), int):
            verdict.fail(f"audit/rows.jsonl: a row without an integer seq after seq {before.get('seq')}")
        elif row["seq"] != before["seq"] + 1:
            verdict.fail(
                f"audit/rows.jsonl: seq {before['seq']} is followed by seq {row['seq']}: rows between them were removed"
            )
        elif row.get("prev_sha256") != before.get("sha256"):
            verdict.fail(
                f"audit/rows.jsonl: seq {row['seq']} does not link to seq {before['seq']} "
                "(its prev_sha256 differs): a row was replaced"
            )
    return rows, unhashed


def _signed_chain(rows: list[dict[str, Any]], unhashed: set[int], checkpoint: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows the signed checkpoint vouches for: the head it signs, then back from it row by row
    while each hashes to its sha256 and is exactly the seq and the hash its successor names.
    The walk stops at the first break, so a row before a gap, an edited row (its hash or its
    successor's link fails) and a row after the signed head never count."""
    last = len(rows) - 1
    if last < 0 or last in unhashed:
        return []
    head = rows[last]
    if head.get("seq") != checkpoint["count"] or head.get("sha256") != checkpoint["head_sha256"]:
        return []
    first = last
    while first > 0:
        before, row = rows[first - 1], rows[first]
        linked = (
            isinstance(before.get("seq"), int)
            and isinstance(row.get("seq"), int)
            and before["seq"] == row["seq"] - 1
            and row.get("prev_sha256") == before.get("sha256")
        )
        if first - 1 in unhashed or not linked:
            break
        first -= 1
    return rows[first:]


def _checkpoint(members: dict[str, bytes], central_key: str | None, verdict: Verdict) -> dict[str, Any] | None:
    """The signed checkpoint body (the central's own format: {"checkpoint": {...}, "signature": ...})."""
    cp_raw, pem = members.get("audit/checkpoint.json"), members.get("audit/central_public_key.pem")
    if cp_raw is None or pem is None:
        verdict.fail("audit checkpoint or the central's public key is missing")
        return None
    try:
        doc = json.loads(cp_raw)
        body, signature = doc["checkpoint"], doc["signature"]
        if set(body) != {"seq", "count", "head_sha256", "at", "key_id"} or not isinstance(signature, str):
            raise ValueError("fields are not checkpoint {seq, count, head_sha256, at, key_id} and signature")
        key = wire.public_key_from_pem(pem)
        good = wire.verify_manifest(key, body, signature)
    except (ValueError, KeyError, TypeError, wire.WireError) as exc:
        verdict.fail(f"audit/checkpoint.json: unreadable: {exc}")
        return None
    if not good:
        verdict.fail("audit/checkpoint.json: the central's signature does not verify")
        return None
    if body["key_id"] != wire.fingerprint(key):
        verdict.fail(
            f"audit/checkpoint.json: names key {body['key_id']} but the bundle's central key is {wire.fingerprint(key)}"
        )
        return None
    if central_key and wire.fingerprint(key) != central_key:
        verdict.fail(f"audit checkpoint signed by {wire.fingerprint(key)}, not the central key {central_key}")
        return None
    trust = "matches --central-key" if central_key else "key taken from the bundle (give --central-key to pin it)"
    verdict.ok(f"audit checkpoint #{body['seq']} of {body['at']} signed by the central ({trust})")
    return dict(body)


def check_audit(
    members: dict[str, bytes], index: dict[str, Any], central_key: str | None, verdict: Verdict
) -> list[dict[str, Any]]:
    """Check the audit rows against the signed checkpoint; return the rows it vouches for."""
    read = _audit_rows(members, verdict)
    rows, unhashed = read if read is not None else ([], set())
    checkpoint = _checkpoint(members, central_key, verdict)
    if read is not None and not rows:
        verdict.fail("audit/rows.jsonl holds no row")
    if not rows or checkpoint is None:
        return []
    last = rows[-1]
    if last.get("seq") != checkpoint["count"]:
        verdict.fail(
            f"audit rows end at seq {last.get('seq')} but the checkpoint signs the chain up to seq "
            f"{checkpoint['count']}: rows are missing or were added"
        )
    elif last.get("sha256") != checkpoint["head_sha256"]:
        verdict.fail(f"audit row seq {last.get('seq')} is not the head the checkpoint signed: the rows were rewritten")
    else:
        verdict.ok(f"audit rows {rows[0].get('seq')}..{last.get('seq')} link up to the signed head")
    wanted = (index.get("audit") or {}).get("order_rows") or []
    have = {r.get("seq") for r in rows}
    lacking = [s for s in wanted if s not in have]
    if lacking:
        verdict.fail(f"bundle.json names the order's audit rows {lacking[:10]} but audit/rows.jsonl lacks them")
    elif wanted:
        verdict.ok(f"the order's {len(wanted)} audit rows are in the signed chain")
    return _signed_chain(rows, unhashed, checkpoint)
