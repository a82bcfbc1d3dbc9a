"""MQTT request payloads as typed values (spec/mqtt.md): pure, no broker, no I/O.

``parse_sync_request`` and ``parse_cancel`` take the payload bytes exactly as
they came off the wire and give either a request or a ``BadRequest`` whose
message says what is wrong; they never raise. Unknown keys are ignored, missing
optional keys take their defaults, ``null`` counts as missing.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_ID_LEN",
    "MODES",
    "BadRequest",
    "CancelRequest",
    "SyncRequest",
    "new_request_id",
    "parse_cancel",
    "parse_sync_request",
]

MODES = ("auto", "slow", "refresh-from-card", "refresh-from-pda")
MAX_ID_LEN = 64
# A payload this long cannot be a request; refusing it early keeps a flood cheap.
MAX_PAYLOAD = 4096


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """``ROOT/sync/request``: sync ``pda`` (None: the only one configured) in ``mode``."""

    id: str
    pda: str | None
    mode: str = "auto"


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """``ROOT/sync/cancel``: end the queued or running sync of request ``id``."""

    id: str


@dataclass(frozen=True, slots=True)
class BadRequest:
    """A payload that is not a valid request; ``id`` is None when none could be read."""

    id: str | None
    message: str


def new_request_id() -> str:
    """An id for a request that came without one (12 hex digits)."""
    return secrets.token_hex(6)


def _object(payload: bytes) -> dict[str, Any] | BadRequest:
    if len(payload) > MAX_PAYLOAD:
        return BadRequest(None, f"payload of {len(payload)} bytes; at most {MAX_PAYLOAD}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadRequest(None, f"payload is not UTF-8 (byte {exc.start})")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return BadRequest(None, f"payload is not JSON: {exc.msg} at character {exc.pos}")
    except RecursionError:
        return BadRequest(None, "payload is not JSON: nested too deeply")
    if not isinstance(value, dict):
        return BadRequest(None, f"payload must be a JSON object, not {_kind(value)}")
    return value


def _kind(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
    return "an object"


def _id(obj: dict[str, Any], *, required: bool) -> str | BadRequest | None:
    rid = obj.get("id")
    if rid is None:
        return BadRequest(None, '"id" is missing') if required else None
    if not isinstance(rid, str):
        return BadRequest(None, f'"id" must be a string, not {_kind(rid)}')
    if not 1 <= len(rid) <= MAX_ID_LEN:
        return BadRequest(None, f'"id" must be 1-{MAX_ID_LEN} characters, not {len(rid)}')
    return rid


def parse_sync_request(payload: bytes) -> SyncRequest | BadRequest:
    """A ``ROOT/sync/request`` payload; a request without ``id`` gets a fresh one."""
    obj = _object(payload)
    if isinstance(obj, BadRequest):
        return obj
    rid = _id(obj, required=False)
    if isinstance(rid, BadRequest):
        return rid
    rid = rid or new_request_id()
    pda = obj.get("pda")
    if pda is not None and (not isinstance(pda, str) or not pda):
        return BadRequest(rid, f'"pda" must be a PDA name (a string), not {_kind(pda)}')
    mode = obj.get("mode")
    if mode is None:
        mode = "auto"
    if mode not in MODES:
        shown = repr(mode) if isinstance(mode, str) else _kind(mode)
        return BadRequest(rid, f'"mode" must be one of {", ".join(MODES)}, not {shown}')
    return SyncRequest(rid, pda, mode)


def parse_cancel(payload: bytes) -> CancelRequest | BadRequest:
    """A ``ROOT/sync/cancel`` payload: ``{"id": str}``."""
    obj = _object(payload)
    if isinstance(obj, BadRequest):
        return obj
    rid = _id(obj, required=True)
    if isinstance(rid, BadRequest):
        return rid
    assert rid is not None
    return CancelRequest(rid)
